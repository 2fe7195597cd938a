package auth

import (
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// python runs a CPython expression: the reference for hashing and base64.
func python(t *testing.T, expr string) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import base64, hashlib\nprint("+expr+")").Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestHashMatchesPython(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+43 {
		t.Fatalf("token %q: want %s + 43 base64url characters", tok, TokenPrefix)
	}
	for _, s := range []string{tok, "", "é ü"} {
		want := "sha256:" + python(t, "hashlib.sha256("+pyStr(s)+".encode()).hexdigest()")
		if got := Hash(s); got != want {
			t.Errorf("Hash(%q) = %s, python says %s", s, got, want)
		}
	}
	if other, _ := NewToken(); other == tok {
		t.Fatal("two NewToken calls returned the same token")
	}
}

func pyStr(s string) string {
	return "bytes.fromhex('" + hex.EncodeToString([]byte(s)) + "').decode()"
}

func testVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := NewVerifier([]Token{
		{Name: "analyst", Hash: Hash("tok-analyst"), Scopes: []string{"read:user", "read:Review"}},
		{Name: "ops", Hash: Hash("tok-ops"), Scopes: []string{"admin"}},
		{Name: "reader", Hash: Hash("tok-reader"), Scopes: []string{"read:*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAuthenticate(t *testing.T) {
	v := testVerifier(t)
	basic := func(userPass string, padded bool) string {
		enc := "base64.b64encode(" + pyStr(userPass) + ".encode()).decode()"
		if !padded {
			enc += ".rstrip('=')"
		}
		return "Basic " + python(t, enc)
	}
	for _, tc := range []struct {
		name    string
		header  []string
		want    string // principal name
		reason  Reason
		wantErr string
	}{
		{name: "bearer", header: []string{"Bearer tok-analyst"}, want: "analyst"},
		{name: "bearer lower case scheme", header: []string{"bearer tok-ops"}, want: "ops"},
		{name: "basic token as password", header: []string{basic("anyone:tok-ops", true)}, want: "ops"},
		{name: "basic unpadded (arrow-go)", header: []string{basic("analyst:tok-analyst", false)}, want: "analyst"},
		{name: "basic password with colon", header: []string{basic("u:tok-reader", true)}, want: "reader"},
		{name: "missing", header: nil, reason: Missing, wantErr: "no credentials"},
		{name: "two headers", header: []string{"Bearer tok-ops", "Bearer tok-ops"}, reason: Malformed, wantErr: "2 authorization headers"},
		{name: "bearer without token", header: []string{"Bearer "}, reason: Malformed, wantErr: "without a token"},
		{name: "other scheme", header: []string{"Token tok-ops"}, reason: Malformed, wantErr: "must be Bearer or Basic"},
		{name: "basic not base64", header: []string{"Basic tok-ops!"}, reason: Malformed, wantErr: "not base64"},
		{name: "basic without password", header: []string{basic("tok-ops", true)}, reason: Malformed, wantErr: "no password"},
		{name: "unknown", header: []string{"Bearer tok-analysT"}, reason: Unknown, wantErr: "unknown token"},
		{name: "unknown basic", header: []string{basic("analyst:nope", true)}, reason: Unknown, wantErr: "unknown token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Authenticate(tc.header)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Name != tc.want {
					t.Fatalf("principal %q, want %q", p.Name, tc.want)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != tc.reason || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want reason %d containing %q", err, tc.reason, tc.wantErr)
			}
			for _, secret := range []string{"tok-", "nope"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q echoes the credentials", err)
				}
			}
		})
	}
}

func TestScopes(t *testing.T) {
	v := testVerifier(t)
	who := func(tok string) *Principal {
		p, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	analyst, ops, reader := who("tok-analyst"), who("tok-ops"), who("tok-reader")
	for _, tc := range []struct {
		p     *Principal
		class string
		want  bool
	}{
		{analyst, "user", true},
		{analyst, "review", true}, // scopes are case insensitive
		{analyst, "item", false},
		{analyst, "user_item", false},
		{ops, "item", true},
		{reader, "item", true},
	} {
		if got := tc.p.CanRead(tc.class); got != tc.want {
			t.Errorf("%s.CanRead(%s) = %v, want %v", tc.p.Name, tc.class, got, tc.want)
		}
	}
	if analyst.Admin() || reader.Admin() || !ops.Admin() {
		t.Error("only ops is admin")
	}
	if err := analyst.Deny("user", "review"); err != nil {
		t.Errorf("Deny(user, review) = %v", err)
	}
	err := analyst.Deny("user", "seller", "item", "item")
	var de *DeniedError
	if !errors.As(err, &de) || strings.Join(de.Classes, ",") != "item,seller" {
		t.Fatalf("Deny = %v, want item and seller denied", err)
	}
	if want := `token "analyst" may not read item, seller (its scopes: read:user read:Review)`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	good := Hash("x")
	for _, tc := range []struct {
		name   string
		tokens []Token
		want   string
	}{
		{"none", nil, "no tokens"},
		{"no name", []Token{{Hash: good, Scopes: []string{"admin"}}}, "has no name"},
		{"plain token", []Token{{Name: "a", Hash: "fletch_abc", Scopes: []string{"admin"}, Where: "fletch.yaml:3:5"}}, `fletch.yaml:3:5: token "a": hash must start with "sha256:"`},
		{"short hash", []Token{{Name: "a", Hash: "sha256:abcd", Scopes: []string{"admin"}}}, "64 hex digits"},
		{"duplicate name", []Token{{Name: "a", Hash: good, Scopes: []string{"admin"}}, {Name: "a", Hash: Hash("y"), Scopes: []string{"admin"}}}, `token "a" is defined twice`},
		{"same hash", []Token{{Name: "a", Hash: good, Scopes: []string{"admin"}}, {Name: "b", Hash: good, Scopes: []string{"admin"}}}, `same hash as token "a"`},
		{"no scopes", []Token{{Name: "a", Hash: good}}, "no scopes"},
		{"typo", []Token{{Name: "a", Hash: good, Scopes: []string{"admn"}}}, `unknown scope "admn" (did you mean "admin"?)`},
		{"bad class", []Token{{Name: "a", Hash: good, Scopes: []string{"read:us-er"}}}, `unknown scope "read:us-er"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(tc.tokens)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckClasses(t *testing.T) {
	v, err := NewVerifier([]Token{{Name: "a", Hash: Hash("x"), Scopes: []string{"read:usr"}, Where: "fletch.yaml:4:7"}})
	if err != nil {
		t.Fatal(err)
	}
	err = v.CheckClasses([]string{"item", "user"})
	want := `fletch.yaml:4:7: token "a": scope read:usr names no feature class (did you mean "user"?) (classes: item, user)`
	if err == nil || err.Error() != want {
		t.Fatalf("CheckClasses = %v, want %s", err, want)
	}
	if err := testVerifier(t).CheckClasses([]string{"item", "review", "user"}); err != nil {
		t.Fatal(err)
	}
}
