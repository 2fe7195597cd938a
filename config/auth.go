package config

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/fletch-engine/fletch/auth"
)

// AuthConfig is `auth:`. Without the section every caller is served; with
// it, every call needs one of its tokens (docs/AUTH.md).
type AuthConfig struct {
	Tokens []auth.Token
	// Verifier checks presented tokens against Tokens.
	Verifier *auth.Verifier
}

// TLSConfig is `server: tls:`: PEM files, relative to the configuration
// file's folder.
type TLSConfig struct {
	Cert, Key string
	Line      int
}

// Load reads the certificate and key.
func (t *TLSConfig) Load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("server.tls (line %d): loading the certificate %s and key %s: %w", t.Line, t.Cert, t.Key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// auth decodes `auth:`, checking every token as the server will.
func (p *parser) auth(n *yaml.Node, cfg *Config) error {
	ac := &AuthConfig{}
	if err := p.mapping(n, "auth", map[string]func(*yaml.Node) error{
		"tokens": func(n *yaml.Node) error { return p.tokens(n, ac) },
	}); err != nil {
		return err
	}
	if len(ac.Tokens) == 0 {
		return p.errorf(n, "auth has no tokens: list them under auth.tokens (make one with `fletch token new`), or remove auth to serve everyone")
	}
	// Token errors carry each entry's position (Token.Where).
	v, err := auth.NewVerifier(ac.Tokens)
	if err != nil {
		return err
	}
	ac.Verifier = v
	cfg.Auth = ac
	return nil
}

func (p *parser) tokens(n *yaml.Node, ac *AuthConfig) error {
	if n.Kind != yaml.SequenceNode {
		return p.errorf(n, "auth.tokens must be a list of tokens, each with a name, a hash and scopes")
	}
	for _, item := range n.Content {
		t := auth.Token{Where: fmt.Sprintf("%s:%d:%d", p.path, item.Line, item.Column)}
		if err := p.mapping(item, "auth.tokens entry", map[string]func(*yaml.Node) error{
			"name":   p.str(&t.Name),
			"hash":   p.str(&t.Hash),
			"scopes": p.strs(&t.Scopes),
		}); err != nil {
			return err
		}
		ac.Tokens = append(ac.Tokens, t)
	}
	return nil
}

// strs decodes a list of values, or one value as a list of one.
func (p *parser) strs(dst *[]string) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		items := []*yaml.Node{n}
		if n.Kind == yaml.SequenceNode {
			items = n.Content
		}
		for _, item := range items {
			v, err := p.scalar(item)
			if err != nil {
				return err
			}
			*dst = append(*dst, v)
		}
		return nil
	}
}

func (p *parser) tls(dst **TLSConfig) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		t := &TLSConfig{Line: n.Line}
		if err := p.mapping(n, "server.tls", map[string]func(*yaml.Node) error{
			"cert": p.str(&t.Cert),
			"key":  p.str(&t.Key),
		}); err != nil {
			return err
		}
		if t.Cert == "" || t.Key == "" {
			return p.errorf(n, "server.tls needs both cert and key (PEM files)")
		}
		for _, f := range []*string{&t.Cert, &t.Key} {
			if !filepath.IsAbs(*f) {
				*f = filepath.Join(filepath.Dir(p.path), *f)
			}
		}
		*dst = t
		return nil
	}
}
