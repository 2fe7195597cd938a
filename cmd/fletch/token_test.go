package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/fletch-engine/fletch/config"
)

func TestTokenNewAndHash(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"token", "new", "--name", "analyst", "--scope", "read:user", "--scope", "admin"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	lines := strings.Split(out.String(), "\n")
	tok := lines[1]
	if !strings.HasPrefix(tok, "fletch_") {
		t.Fatalf("second line %q is not a token:\n%s", tok, out.String())
	}
	// The printed entry is a valid fletch.yaml that accepts the token.
	yaml := out.String()[strings.Index(out.String(), "auth:"):]
	cfg, err := config.Parse("fletch.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	p, err := cfg.Auth.Verifier.Verify(tok)
	if err != nil || p.Name != "analyst" || !p.Admin() || !p.CanRead("user") {
		t.Fatalf("the entry does not accept its token: %v %v", p, err)
	}
	// `token hash` agrees with CPython's sha256, from an argument and from stdin.
	py, err := exec.Command("python3", "-c", "import hashlib, sys; print('sha256:' + hashlib.sha256(sys.argv[1].encode()).hexdigest())", tok).Output()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := cmdTokenHash([]string{tok}, nil, &out); err != nil || out.String() != string(py) {
		t.Fatalf("token hash %s = %q, %v; python says %q", tok, out.String(), err, py)
	}
	out.Reset()
	if err := cmdTokenHash(nil, strings.NewReader(tok+"\n"), &out); err != nil || out.String() != string(py) {
		t.Fatalf("token hash from stdin = %q, %v; python says %q", out.String(), err, py)
	}
}

func TestTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "nwe"}, `unknown token command "nwe" (did you mean "new"?)`},
		{[]string{"token", "new", "--name", "a"}, "needs --name and at least one --scope"},
		{[]string{"token", "new", "--name", "a", "--scope", "read:us er"}, `unknown scope "read:us er"`},
		{[]string{"token", "hash", "a", "b"}, "takes one token"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
