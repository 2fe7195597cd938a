package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fletch-engine/fletch/auth"
)

func TestParseAuth(t *testing.T) {
	t.Setenv("FLETCH_TEST_OPS_HASH", auth.Hash("tok-ops"))
	cfg, err := Parse("/repo/fletch.yaml", []byte(`
auth:
  tokens:
    - name: analyst
      hash: `+auth.Hash("tok-analyst")+`
      scopes: [read:user, read:review]
    - name: ops
      hash: ${FLETCH_TEST_OPS_HASH}
      scopes: admin
server:
  listen: 127.0.0.1:0
  tls:
    cert: certs/server.crt
    key: /etc/fletch/server.key
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth == nil || len(cfg.Auth.Tokens) != 2 {
		t.Fatalf("auth: %+v", cfg.Auth)
	}
	if got := cfg.Auth.Tokens[0]; got.Name != "analyst" || strings.Join(got.Scopes, " ") != "read:user read:review" || got.Where != "/repo/fletch.yaml:4:7" {
		t.Errorf("first token %+v", got)
	}
	for tok, want := range map[string]string{"tok-analyst": "analyst", "tok-ops": "ops"} {
		p, err := cfg.Auth.Verifier.Verify(tok)
		if err != nil || p.Name != want {
			t.Errorf("Verify(%s) = %v, %v; want %s", tok, p, err, want)
		}
	}
	if tls := cfg.Server.TLS; tls == nil || tls.Cert != "/repo/certs/server.crt" || tls.Key != "/etc/fletch/server.key" {
		t.Errorf("tls %+v", cfg.Server.TLS)
	}
	// No section, no auth.
	cfg, err = Parse("/repo/fletch.yaml", []byte("server:\n  listen: 127.0.0.1:0\n"))
	if err != nil || cfg.Auth != nil || cfg.Server.TLS != nil {
		t.Errorf("without auth: %+v %v", cfg, err)
	}
}

func TestParseAuthErrors(t *testing.T) {
	good := auth.Hash("x")
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "auth:\n  tokens: []\n", "f.yaml:2:3: auth has no tokens"},
		{"not a list", "auth:\n  tokens: abc\n", "f.yaml:2:11: auth.tokens must be a list"},
		{"typo'd key", "auth:\n  tokens:\n    - name: a\n      hash: " + good + "\n      scope: [admin]\n", `f.yaml:5:7: unknown key "scope" in auth.tokens entry (did you mean "scopes"?)`},
		{"plain token", "auth:\n  tokens:\n    - name: a\n      hash: fletch_abc\n      scopes: [admin]\n", `f.yaml:3:7: token "a": hash must start with "sha256:"`},
		{"bad scope", "auth:\n  tokens:\n    - name: a\n      hash: " + good + "\n      scopes: [raed:user]\n", `f.yaml:3:7: token "a": unknown scope "raed:user"`},
		{"tls without key", "server:\n  tls:\n    cert: a.pem\n", "f.yaml:3:5: server.tls needs both cert and key"},
		{"tls typo", "server:\n  tls:\n    cert: a.pem\n    keys: b.pem\n", `unknown key "keys" in server.tls (did you mean "key"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTLSLoad(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := auth.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"c.pem": certPEM, "k.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Parse(filepath.Join(dir, "fletch.yaml"), []byte("server:\n  tls:\n    cert: c.pem\n    key: k.pem\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tc, err := cfg.Server.TLS.Load(); err != nil || len(tc.Certificates) != 1 {
		t.Fatalf("Load: %v", err)
	}
	cfg.Server.TLS.Key = filepath.Join(dir, "missing.pem")
	if _, err := cfg.Server.TLS.Load(); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("Load of a missing key: %v", err)
	}
}
