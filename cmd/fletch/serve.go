package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/planner"
)

// repoEnv is a loaded repository with its configuration opened.
type repoEnv struct {
	cfg    *config.Config
	env    *config.Env
	engine *planner.Engine
}

// Close closes the configuration; the offline log writes what it holds
// first.
func (r *repoEnv) Close() error { return r.env.Close() }

// openRepo loads the repository in dir and opens its configuration
// (explicit file, dir/fletch.yaml, or the embedded default whose database is
// embeddedDB, default dir/.fletch/fletch.duckdb).
func openRepo(dir, configPath, embeddedDB string) (*repoEnv, error) {
	g, err := features.Load(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Find(dir, configPath)
	if err != nil {
		return nil, err
	}
	if cfg.Embedded && cfg.EmbeddedPath == "" {
		if embeddedDB == "" {
			embeddedDB = filepath.Join(dir, ".fletch", "fletch.duckdb")
			if err := os.MkdirAll(filepath.Dir(embeddedDB), 0o755); err != nil {
				return nil, err
			}
		}
		cfg.EmbeddedPath = embeddedDB
	}
	env, err := config.Open(cfg)
	if err != nil {
		return nil, err
	}
	opts := []planner.EngineOption{planner.WithOnlineStore(env.OnlineStore()),
		planner.WithPlanCache(cfg.Server.PlanCacheEntries, cfg.Server.PlanCacheBytes)}
	if log := env.OfflineLog(); log != nil {
		opts = append(opts, planner.WithOfflineLog(log))
	}
	return &repoEnv{cfg: cfg, env: env, engine: planner.NewEngine(g, env, nil, opts...)}, nil
}

// prepare plans the request without running it.
func (r *request) prepare(e *planner.Engine) (*planner.Plan, error) {
	inputs := r.inputRecord(memory.DefaultAllocator)
	defer inputs.Release()
	st, err := r.statement(e.Graph(), inputs.Schema())
	if err != nil {
		return nil, err
	}
	return e.Prepare(st)
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", ".", "feature repository")
	cfgPath := fs.String("config", "", "fletch.yaml (default: the repository's, else the embedded default)")
	listen := fs.String("listen", "", "address to serve Flight SQL on (default: fletch.yaml's, else "+defaultListen+")")
	debug := fs.String("debug-listen", "", "address to serve Go's /debug/pprof/ on (off by default; bind it to localhost)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *debug != "" {
		if err := serveDebug(*debug, stderr); err != nil {
			return err
		}
	}
	env, err := openRepo(*repo, *cfgPath, "")
	if err != nil {
		return err
	}
	defer env.Close()
	return serve(ctx, env, *listen, stdout)
}

func serve(ctx context.Context, env *repoEnv, listen string, stdout io.Writer) error {
	tuneGC()
	if listen == "" {
		listen = env.cfg.Server.Listen
	}
	if listen == "" {
		listen = defaultListen
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	opts, err := serverSecurity(env, stdout)
	if err != nil {
		lis.Close()
		return err
	}
	opts.Version = version
	opts.Expressions = pythonExprs(env.engine.Graph())
	// The front ends' caches take at most half the plan cache's bounds
	// again (docs/CONFIG.md).
	opts.CacheEntries = env.cfg.Server.PlanCacheEntries
	opts.CacheBytes = env.cfg.Server.PlanCacheBytes / 2
	srv := flight.NewServer(env.engine, opts)
	g := env.engine.Graph()
	fmt.Fprintf(stdout, "fletch: serving %d feature classes (%s) over Flight SQL on %s\n", len(g.Classes), strings.Join(g.ClassNames(), ", "), lis.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		fmt.Fprintln(stdout, "fletch: stopping")
		srv.GracefulStop()
		return nil
	}
}

// serveDebug serves net/http/pprof's handlers on addr, apart from the Flight
// port so that profiles never go through auth or compete with queries for a
// listener; profiling a loaded server is how the figures of
// docs/BENCHMARKS.md were explained.
func serveDebug(addr string, stderr io.Writer) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--debug-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	fmt.Fprintf(stderr, "fletch: profiles on http://%s/debug/pprof/\n", lis.Addr())
	go func() { _ = http.Serve(lis, mux) }()
	return nil
}

// serverGCPercent is the collector's goal for a server whose operator set
// no GOGC. A server's live heap is small next to what its answers
// allocate (a 100-entity Redis read is half a megabyte of replies), so
// Go's default of 100 ran the collector several times a second: a quarter
// of the CPU of a 100 × 50 query at 200 req/s. 400 lets the heap grow to
// five times what is live between collections; GOGC (and GOMEMLIMIT)
// still decide when set.
const serverGCPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}

// version is reported by the server; set at build time with -ldflags.
var version = "dev"

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultListen, "address to serve Flight SQL on")
	dir := fs.String("dir", "", "folder for the demo repository and database (default: the user cache folder)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		*dir = filepath.Join(cache, "fletch", "demo")
	}
	repo := filepath.Join(*dir, "marketplace")
	if err := writeExample(repo); err != nil {
		return err
	}
	db := filepath.Join(*dir, "marketplace.duckdb")
	for _, p := range []string{db, db + ".wal"} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	env, err := openRepo(repo, "", db)
	if err != nil {
		return err
	}
	defer env.Close()
	src, err := env.env.DuckDB("marketplace")
	if err != nil {
		return err
	}
	// The data's "now" is the start of today (UTC): deterministic for the
	// day, and recent enough that the 7-day windows hold events.
	anchor := time.Now().UTC().Truncate(24 * time.Hour)
	start := time.Now()
	if err := marketplace.Generate(ctx, src.DB(), marketplace.Options{Anchor: anchor}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "fletch demo: generated the marketplace example (1,000 users, 500 items; events up to %s) in %s\n", anchor.Format("2006-01-02"), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "fletch demo: repository %s\n", repo)
	fmt.Fprintf(stdout, "try, in another shell:\n  ./fletch query --in user.id=50 --out user.full_name\n  ./fletch query --in user_item.user_id=50 --in user_item.item_id=200\n")
	return serve(ctx, env, *listen, stdout)
}

// writeExample writes the embedded marketplace repository to dir.
func writeExample(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fs.WalkDir(marketplace.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := marketplace.Files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), data, 0o644)
	})
}
