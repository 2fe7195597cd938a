package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/console"
	"github.com/fletch-engine/fletch/planner"
)

// defaultConsoleListen is where `fletch console` serves, and `fletch demo`
// its operators' port (with the console) when that port is free.
const defaultConsoleListen = "127.0.0.1:8816"

// cmdConsole serves the web console of a repository on disk, without a
// Flight SQL server: the catalogue, the lineage and queries run in this
// process against its sources (the embedded default without fletch.yaml).
func cmdConsole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	cfgPath := fs.String("config", "", "fletch.yaml (default: the repository's, else the embedded default)")
	listen := fs.String("listen", defaultConsoleListen, "address to serve the console on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := openRepo(*repo, *cfgPath, "")
	if err != nil {
		return inUse(err, *repo, "stop that process first, or open the console of the server (its --http-listen port)")
	}
	defer env.Close()
	if err := checkAuth(env); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	h := console.Handler(console.Config{
		Current: func() (*planner.Engine, *auth.Verifier) { return env.current() },
		Exprs:   pythonExprs,
		Mode:    "repository",
	})
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, h)
	mux.Handle("/", http.RedirectHandler(console.Prefix, http.StatusFound))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	g := env.engine.Graph()
	fmt.Fprintf(stdout, "fletch console: %d feature classes of %s on http://%s%s (Ctrl-C stops it)\n", len(g.Classes), *repo, lis.Addr(), console.Prefix)
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
