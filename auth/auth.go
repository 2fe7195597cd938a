// Package auth is fletch's access control: bearer tokens configured in
// fletch.yaml (stored only as hashes), the scopes each token grants (which
// feature classes it may read, and admin for operations), and the reading of
// credentials from an `authorization` header (Bearer, or Basic with the token
// as the password).
//
// It knows tokens, scopes and class names as strings; it knows nothing of
// gRPC, Flight, the planner or the feature graph, so every front end applies
// the same rules.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/fletch-engine/fletch/internal/suggest"
)

// HashPrefix starts every stored token hash.
const HashPrefix = "sha256:"

// TokenPrefix starts the tokens NewToken makes, so that a leaked one is
// recognisable (secret scanners, logs).
const TokenPrefix = "fletch_"

// Scopes a token may hold: ScopeRead followed by a class's table name or by
// "*", and ScopeAdmin.
const (
	ScopeRead  = "read:"
	ScopeAdmin = "admin"
)

// NewToken returns a fresh token: 256 random bits, so that a plain SHA-256
// of it is as good at rest as a slow password hash (there is nothing to
// guess).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: reading random bytes: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash is the form of token stored in fletch.yaml: "sha256:<hex>".
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return HashPrefix + hex.EncodeToString(sum[:])
}

// Token is one configured token.
type Token struct {
	Name   string
	Hash   string   // "sha256:<64 hex digits>"
	Scopes []string // "read:<class>", "read:*", "admin"
	// Where locates the entry (file:line:col) in error messages; may be "".
	Where string
}

// Verifier checks presented tokens against the configured ones. It is safe
// for concurrent use.
type Verifier struct {
	tokens []verifierToken
}

type verifierToken struct {
	digest    [sha256.Size]byte
	principal *Principal
	where     string
}

var className = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewVerifier validates tokens (hash format, scope syntax, unique names and
// hashes) and returns their verifier.
func NewVerifier(tokens []Token) (*Verifier, error) {
	if len(tokens) == 0 {
		return nil, errors.New("auth: no tokens: with auth on, at least one token must be configured")
	}
	v := &Verifier{}
	names := map[string]string{}
	for _, t := range tokens {
		at := locate(t.Where)
		if t.Name == "" {
			return nil, fmt.Errorf("%sa token has no name", at)
		}
		if prev, dup := names[t.Name]; dup {
			return nil, fmt.Errorf("%stoken %q is defined twice (first at %s)", at, t.Name, prev)
		}
		names[t.Name] = t.Where
		digest, err := parseHash(t.Hash)
		if err != nil {
			return nil, fmt.Errorf("%stoken %q: %v", at, t.Name, err)
		}
		for _, o := range v.tokens {
			if o.digest == digest {
				return nil, fmt.Errorf("%stoken %q has the same hash as token %q: make each token with `fletch token new`", at, t.Name, o.principal.Name)
			}
		}
		p, err := newPrincipal(t.Name, t.Scopes)
		if err != nil {
			return nil, fmt.Errorf("%stoken %q: %v", at, t.Name, err)
		}
		v.tokens = append(v.tokens, verifierToken{digest: digest, principal: p, where: t.Where})
	}
	return v, nil
}

func locate(where string) string {
	if where == "" {
		return "auth: "
	}
	return where + ": "
}

func parseHash(h string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(h, HashPrefix)
	if !ok {
		return d, fmt.Errorf("hash must start with %q (make one with `fletch token hash`)", HashPrefix)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return d, fmt.Errorf("hash must be %s followed by %d hex digits", HashPrefix, 2*sha256.Size)
	}
	copy(d[:], b)
	return d, nil
}

// CheckClasses reports scopes naming a class that is not among classes (the
// graph's table names), with the nearest one: a typo in a scope would
// otherwise silently grant nothing.
func (v *Verifier) CheckClasses(classes []string) error {
	known := map[string]bool{}
	for _, c := range classes {
		known[strings.ToLower(c)] = true
	}
	for _, t := range v.tokens {
		for _, c := range t.principal.sortedClasses() {
			if !known[c] {
				return fmt.Errorf("%stoken %q: scope %s%s names no feature class%s (classes: %s)",
					locate(t.where), t.principal.Name, ScopeRead, c, suggest.DidYouMean(c, classes), strings.Join(classes, ", "))
			}
		}
	}
	return nil
}

// Verify returns the principal of token. Every configured hash is compared,
// in constant time, whatever matches: the time taken says nothing about
// which token (if any) was close.
func (v *Verifier) Verify(token string) (*Principal, error) {
	if token == "" {
		return nil, &Error{Reason: Malformed, Msg: "empty token"}
	}
	sum := sha256.Sum256([]byte(token))
	var found *Principal
	for _, t := range v.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.digest[:]) == 1 {
			found = t.principal
		}
	}
	if found == nil {
		return nil, &Error{Reason: Unknown, Msg: "unknown token: it matches none of the server's configured tokens"}
	}
	return found, nil
}

// Authenticate reads the token from the values of an `authorization`
// header and verifies it.
func (v *Verifier) Authenticate(authorization []string) (*Principal, error) {
	token, err := TokenOf(authorization)
	if err != nil {
		return nil, err
	}
	return v.Verify(token)
}

// TokenOf reads the token from the values of an `authorization` header:
// "Bearer <token>", or "Basic <base64 of user:password>" whose password is
// the token (the user name is free: tools that only have user and password
// fields can carry a token). Error messages never include the credentials.
func TokenOf(authorization []string) (string, error) {
	switch len(authorization) {
	case 0:
		return "", &Error{Reason: Missing, Msg: `no credentials: send the header "authorization: Bearer <token>" (or Basic with the token as the password)`}
	case 1:
	default:
		return "", &Error{Reason: Malformed, Msg: fmt.Sprintf("malformed credentials: %d authorization headers, want one", len(authorization))}
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(authorization[0]), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if cred == "" {
			return "", &Error{Reason: Malformed, Msg: "malformed credentials: Bearer without a token"}
		}
		return cred, nil
	case strings.EqualFold(scheme, "Basic"):
		// Clients differ on padding: arrow-go sends none, browsers and JDBC do.
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(cred)
		}
		if err != nil {
			return "", &Error{Reason: Malformed, Msg: "malformed credentials: Basic credentials are not base64 of user:password"}
		}
		_, password, ok := strings.Cut(string(raw), ":")
		if !ok || password == "" {
			return "", &Error{Reason: Malformed, Msg: "malformed credentials: Basic credentials carry no password: put the token in the password"}
		}
		return password, nil
	}
	return "", &Error{Reason: Malformed, Msg: "malformed credentials: the authorization scheme must be Bearer or Basic"}
}

// Reason says why credentials were refused.
type Reason int

const (
	// Missing: no authorization header.
	Missing Reason = iota
	// Malformed: a header that is not Bearer or Basic user:password.
	Malformed
	// Unknown: a well-formed token that matches no configured token.
	Unknown
)

// Error is a refused authentication. Its message never contains the
// presented credentials.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Principal is an authenticated token: its name and what it may do.
type Principal struct {
	Name    string
	scopes  []string
	admin   bool
	all     bool
	classes map[string]bool // lower-case table names
}

func newPrincipal(name string, scopes []string) (*Principal, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("no scopes: give %s<class>, %s* or %s", ScopeRead, ScopeRead, ScopeAdmin)
	}
	p := &Principal{Name: name, scopes: append([]string(nil), scopes...), classes: map[string]bool{}}
	for _, s := range scopes {
		class, isRead := strings.CutPrefix(s, ScopeRead)
		switch {
		case s == ScopeAdmin:
			p.admin = true
		case isRead && class == "*":
			p.all = true
		case isRead && className.MatchString(class):
			p.classes[strings.ToLower(class)] = true
		default:
			return nil, fmt.Errorf("unknown scope %q%s: scopes are %s<class> (a feature class's table name), %s* and %s",
				s, suggest.DidYouMean(s, []string{ScopeRead + "*", ScopeAdmin}), ScopeRead, ScopeRead, ScopeAdmin)
		}
	}
	return p, nil
}

// CanRead says whether p may read features of class (a table name). Admin
// and read:* read every class.
func (p *Principal) CanRead(class string) bool {
	return p.admin || p.all || p.classes[strings.ToLower(class)]
}

// Admin says whether p may run operations.
func (p *Principal) Admin() bool { return p.admin }

// Scopes are p's scopes as configured.
func (p *Principal) Scopes() []string { return append([]string(nil), p.scopes...) }

func (p *Principal) sortedClasses() []string {
	cs := make([]string, 0, len(p.classes))
	for c := range p.classes {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// Deny returns the error refusing p the classes it may not read among
// classes, or nil when it may read them all. The message names the classes
// and p's scopes, which p knows anyway.
func (p *Principal) Deny(classes ...string) error {
	var denied []string
	seen := map[string]bool{}
	for _, c := range classes {
		if !p.CanRead(c) && !seen[c] {
			seen[c] = true
			denied = append(denied, c)
		}
	}
	if len(denied) == 0 {
		return nil
	}
	sort.Strings(denied)
	return &DeniedError{Principal: p.Name, Classes: denied, Scopes: p.Scopes()}
}

// DeniedError refuses a principal classes outside its scopes.
type DeniedError struct {
	Principal string
	Classes   []string
	Scopes    []string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("token %q may not read %s (its scopes: %s)", e.Principal, strings.Join(e.Classes, ", "), strings.Join(e.Scopes, " "))
}
