package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/internal/suggest"
)

const tokenUsage = `Usage:
  fletch token new  --name NAME --scope SCOPE [--scope SCOPE ...]
        make a token; prints it once, and the fletch.yaml entry holding its hash
  fletch token hash [TOKEN]
        print the hash of TOKEN (read from standard input when not given)

Scopes: read:<class> (a feature class's table name), read:* and admin.
`

func cmdToken(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "new":
		return cmdTokenNew(args[1:], stdout, stderr)
	case "hash":
		return cmdTokenHash(args[1:], stdin, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, tokenUsage)
		return nil
	}
	return fmt.Errorf("unknown token command %q%s\n\n%s", args[0], suggest.DidYouMean(args[0], []string{"new", "hash"}), tokenUsage)
}

func cmdTokenNew(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the token's name (shown in refusals and logs)")
	var scopes multi
	fs.Var(&scopes, "scope", "a scope: read:<class>, read:* or admin (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || len(scopes) == 0 {
		return fmt.Errorf("token new needs --name and at least one --scope\n\n%s", tokenUsage)
	}
	tok, err := auth.NewToken()
	if err != nil {
		return err
	}
	// The same checks the server makes when it reads fletch.yaml.
	if _, err := auth.NewVerifier([]auth.Token{{Name: *name, Hash: auth.Hash(tok), Scopes: scopes}}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# the token: give it to the client; it is shown only now (fletch.yaml keeps its hash)\n%s\n", tok)
	fmt.Fprintf(stdout, "# for fletch.yaml:\nauth:\n  tokens:\n    - name: %s\n      hash: %s\n      scopes: [%s]\n", *name, auth.Hash(tok), strings.Join(scopes, ", "))
	return nil
}

func cmdTokenHash(args []string, stdin io.Reader, stdout io.Writer) error {
	var tok string
	switch len(args) {
	case 0:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return err
		}
		tok = strings.TrimSpace(line)
	case 1:
		tok = args[0]
	default:
		return fmt.Errorf("token hash takes one token\n\n%s", tokenUsage)
	}
	if tok == "" {
		return fmt.Errorf("token hash: no token given")
	}
	fmt.Fprintln(stdout, auth.Hash(tok))
	return nil
}

// serverSecurity is the auth and TLS of fletch.yaml as server options, and
// says on stdout what they are: an open server should be a choice seen.
// checkAuth refuses token scopes naming no class of the repository: they
// would grant nothing, silently.
func checkAuth(env *repoEnv) error {
	if a := env.cfg.Auth; a != nil {
		return a.Verifier.CheckClasses(env.engine.Graph().ClassNames())
	}
	return nil
}

// authOf is the token verifier of env's fletch.yaml, nil when auth is off.
func authOf(env *repoEnv) *auth.Verifier {
	if a := env.cfg.Auth; a != nil {
		return a.Verifier
	}
	return nil
}

func serverSecurity(env *repoEnv, stdout io.Writer) (flight.Options, error) {
	var opts flight.Options
	if err := checkAuth(env); err != nil {
		return opts, err
	}
	if a := env.cfg.Auth; a != nil {
		opts.Auth = a.Verifier
		fmt.Fprintf(stdout, "fletch: auth on: %d token(s); every call needs one\n", len(a.Tokens))
	} else {
		fmt.Fprintln(stdout, "fletch: auth off (no auth: section in fletch.yaml): every caller reads every feature")
	}
	if t := env.cfg.Server.TLS; t != nil {
		tc, err := t.Load()
		if err != nil {
			return opts, err
		}
		opts.TLS = tc
		fmt.Fprintf(stdout, "fletch: TLS on (%s)\n", t.Cert)
	} else if opts.Auth != nil {
		fmt.Fprintln(stdout, "fletch: warning: auth without TLS (server.tls in fletch.yaml): tokens cross the network in the clear")
	}
	return opts, nil
}
