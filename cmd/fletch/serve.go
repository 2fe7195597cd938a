package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/config"
	"github.com/fletch-engine/fletch/console"
	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/observe"
	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/guard"
	"github.com/fletch-engine/fletch/tiles"
)

// repoEnv is a loaded repository with its configuration opened.
type repoEnv struct {
	cfg    *config.Config
	env    *config.Env
	engine *planner.Engine
	tiles  *tiles.Store // nil: the repository materializes no feature
	// jobs keep online tiles current while the environment serves.
	jobs *tileJobs
	// metrics, when the server has an operators' port, are fed by the
	// engine and the server.
	metrics *observe.Metrics
	// tracing, when the server exports traces (server.tracing), traces
	// the engine's runs; the same for every reload.
	tracing oteltrace.TracerProvider
	// keepEnv: a reload handed env on to the next repoEnv; Close leaves
	// it open.
	keepEnv bool
	// httpAnyPort: when server.http.listen is taken, serve the operators'
	// port on any free one (the demo's, whose address is logged).
	httpAnyPort bool
	once        sync.Once
	// live is the environment the metrics' gauges read (nil without
	// metrics): this one, until a reload stores the next.
	live *atomic.Pointer[repoEnv]
}

// Close ends the engine (its queued write-backs reach the online store)
// before closing the configuration that the engine writes to: the offline
// log (which writes what it holds), then the stores and sources. A second
// Close does nothing.
func (r *repoEnv) Close() error {
	var err error
	r.once.Do(func() {
		r.jobs.stop()
		r.engine.Close()
		if !r.keepEnv {
			if r.tiles != nil {
				r.tiles.Close() // its resident tiles
			}
			err = r.env.Close()
		}
	})
	return err
}

// openRepo loads the repository in dir and opens its configuration
// (explicit file, dir/fletch.yaml, or the embedded default whose database is
// embeddedDB, default dir/.fletch/fletch.duckdb).
func openRepo(dir, configPath, embeddedDB string) (*repoEnv, error) {
	cfg, err := findConfig(dir, configPath, embeddedDB)
	if err != nil {
		return nil, err
	}
	return openRepoWith(dir, cfg, nil, nil)
}

// findConfig finds the configuration of the repository in dir (see
// openRepo).
func findConfig(dir, configPath, embeddedDB string) (*config.Config, error) {
	cfg, err := config.Find(dir, configPath)
	if err != nil {
		return nil, err
	}
	if cfg.Embedded && cfg.EmbeddedPath == "" {
		if embeddedDB == "" {
			embeddedDB = embeddedPath(dir)
			if err := os.MkdirAll(filepath.Dir(embeddedDB), 0o755); err != nil {
				return nil, err
			}
		}
		cfg.EmbeddedPath = embeddedDB
	}
	return cfg, nil
}

// embeddedPath is the database of a repository without sources, which
// serve makes.
func embeddedPath(dir string) string { return filepath.Join(dir, ".fletch", "fletch.duckdb") }

// openRepoWith loads the repository in dir and opens cfg; metrics, when
// not nil, are fed by the engine, and tracing traces its runs.
func openRepoWith(dir string, cfg *config.Config, metrics *observe.Metrics, tracing oteltrace.TracerProvider) (*repoEnv, error) {
	return openRepoOn(dir, cfg, nil, metrics, tracing, true)
}

// openRepoOn is openRepoWith over the stores, sources and tile store of
// prev, already open (nil: open cfg); the engine's gauges are registered
// only when register is set (a reload's engine is read through the first
// one's live).
func openRepoOn(dir string, cfg *config.Config, prev *repoEnv, metrics *observe.Metrics, tracing oteltrace.TracerProvider, register bool) (*repoEnv, error) {
	g, err := features.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := checkSchedules(g, cfg); err != nil {
		return nil, err
	}
	var env *config.Env
	var tileSt *tiles.Store
	if prev != nil {
		env, tileSt = prev.env, prev.tiles
	} else if env, err = config.Open(cfg); err != nil {
		return nil, err
	}
	planBytes, _ := cacheBudget(cfg.Server.PlanCacheBytes)
	opts := []planner.EngineOption{planner.WithOnlineStore(env.OnlineStore()),
		planner.WithPlanCache(cfg.Server.PlanCacheEntries, planBytes), planner.WithPython(pythonConfig(cfg)),
		planner.WithMaxHasManyRows(cfg.Server.Limits.MaxHasManyRows), planner.WithMaxQueryMemory(cfg.Server.Limits.MaxQueryMemory)}
	log := env.OfflineLog()
	if log != nil {
		opts = append(opts, planner.WithOfflineLog(log))
	}
	if len(tiles.Materialized(g)) > 0 {
		// Materialized offline queries read tiles where a backfill wrote
		// them; without a tile store they compute every bucket at the source.
		if tileSt == nil {
			if tileSt, err = tileStore(env, cfg, dir); err != nil {
				fmt.Fprintf(os.Stderr, "fletch: warning: aggregation tiles unavailable (materialized queries compute from the sources): %v\n", err)
			}
		}
		if tileSt != nil {
			opts = append(opts, planner.WithTiles(tileSt))
		}
	}
	if metrics != nil {
		opts = append(opts, planner.WithObserver(metrics))
	}
	if tracing != nil {
		opts = append(opts, planner.WithTracerProvider(tracing))
	}
	engine := planner.NewEngine(g, env, nil, opts...)
	r := &repoEnv{cfg: cfg, env: env, engine: engine, metrics: metrics, tracing: tracing, tiles: tileSt}
	if metrics != nil && register {
		// The gauges read the environment serving now: a reload stores
		// its own in live (reloader.reload).
		r.live = new(atomic.Pointer[repoEnv])
		r.live.Store(r)
		cur := func() *planner.Engine { return r.live.Load().engine }
		metrics.PlanCache(func() lru.Stats { return cur().PlanCacheStats() })
		metrics.WriteBacks(func() (int64, int64) {
			st := cur().CacheStats()
			return st.Dropped, st.Failed
		})
		if log != nil {
			metrics.OfflineLog(func() stores.OfflineStats {
				if l := r.live.Load().env.OfflineLog(); l != nil {
					return l.Stats()
				}
				return stores.OfflineStats{}
			})
		}
		metrics.Guards(func() []*guard.Guard { return r.live.Load().env.Guards() })
		metrics.Violations(func() []observe.Violation {
			counts := cur().Validations()
			out := make([]observe.Violation, len(counts))
			for i, c := range counts {
				out[i] = observe.Violation{Feature: c.Feature, Bounds: c.Bounds, Strict: c.Strict, Count: c.Violations}
			}
			return out
		})
	}
	return r, nil
}

// pythonConfig is fletch.yaml's `python:` for the engine's worker pool.
func pythonConfig(cfg *config.Config) pyworker.Config {
	pc := cfg.Python
	return pyworker.Config{Python: pc.Executable, Workers: pc.Workers, Timeout: pc.Timeout, Queue: pc.Queue}
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
	grace := fs.Duration("grace", defaultGrace, "on SIGTERM or SIGINT, how long the calls in flight may run before they are cut off")
	watch := fs.Bool("watch", false, "reload the repository and fletch.yaml when their files change (SIGHUP always reloads)")
	httpListen := fs.String("http-listen", "", "address of the operators' port: the web console, /metrics, /healthz, /readyz (default: fletch.yaml's server.http.listen; none when neither)")
	logFormat := fs.String("log-format", "", "log format, text or json (default: fletch.yaml's server.log.format, else text)")
	logLevel := fs.String("log-level", "", "lowest level logged: debug (a line per query), info, warn or error (default: fletch.yaml's server.log.level, else info)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *debug != "" {
		if err := serveDebug(*debug, stderr); err != nil {
			return err
		}
	}
	tuneGC() // before the caches are sized: see cacheBudget
	cfg, err := findConfig(*repo, *cfgPath, "")
	if err != nil {
		return err
	}
	if err := setLogger(stdout, cmp.Or(*logFormat, cfg.Server.LogFormat), cmp.Or(*logLevel, cfg.Server.LogLevel)); err != nil {
		return err
	}
	cfg.Server.HTTPListen = cmp.Or(*httpListen, cfg.Server.HTTPListen)
	var metrics *observe.Metrics
	if cfg.Server.HTTPListen != "" {
		metrics = observe.NewMetrics()
	}
	tracing, err := startTracing(ctx, cfg)
	if err != nil {
		return err
	}
	if tracing != nil {
		defer stopTracing(tracing)
	}
	env, err := openRepoWith(*repo, cfg, metrics, traceProvider(tracing))
	if err != nil {
		return inUse(err, *repo, "stop that process first")
	}
	defer env.Close()
	return serve(ctx, env, *listen, *grace, stdout, &reloadFrom{dir: *repo, configPath: *cfgPath, watch: *watch})
}

// startTracing starts exporting traces when fletch.yaml has a
// server.tracing section (nil otherwise).
func startTracing(ctx context.Context, cfg *config.Config) (*sdktrace.TracerProvider, error) {
	t := cfg.Server.Tracing
	if t.Endpoint == "" {
		return nil, nil
	}
	ratio := 1.0
	if t.SampleRatio != nil {
		ratio = *t.SampleRatio
	}
	tp, err := observe.NewTracerProvider(ctx, observe.Tracing{Endpoint: t.Endpoint, Protocol: t.Protocol, SampleRatio: ratio, ServiceName: t.ServiceName, Version: version})
	if err != nil {
		return nil, err
	}
	slog.Info(fmt.Sprintf("exporting traces to %s (OTLP/%s), sampling %g of the queries that come without a sampling decision", t.Endpoint, cmp.Or(t.Protocol, "grpc"), ratio))
	return tp, nil
}

// stopTracing sends the spans still held, waiting a few seconds at most
// for a receiver that does not answer.
func stopTracing(tp *sdktrace.TracerProvider) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		slog.Warn("stopping: the last spans were not exported", "err", err)
	}
}

// traceProvider is tp as the interface (nil stays nil: no tracing).
func traceProvider(tp *sdktrace.TracerProvider) oteltrace.TracerProvider {
	if tp == nil {
		return nil
	}
	return tp
}

// reloadFrom is where a server reloads its repository from.
type reloadFrom struct {
	dir, configPath string
	watch           bool
}

// setLogger makes the process's default logger (log/slog's, which the
// packages log to) write to w in format from level on, with the trace id
// of the query a line belongs to.
func setLogger(w io.Writer, format, level string) error {
	logger, err := observe.NewLogger(w, format, level)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	return nil
}

// defaultGrace is how long a stopping server lets its calls in flight
// finish: longer than any query should take, shorter than the 60s a
// process manager usually waits before SIGKILL.
const defaultGrace = 30 * time.Second

// serve serves env until ctx ends (SIGTERM, SIGINT), then stops in order:
// no new calls; the calls in flight finish, for up to grace (then they are
// cut off); the engine's queued write-backs reach the online store; the
// offline log writes what it holds; the stores and sources close.
// With from, SIGHUP (and a change of the files, from.watch) reloads the
// repository (reload.go).
func serve(ctx context.Context, env *repoEnv, listen string, grace time.Duration, stdout io.Writer, from *reloadFrom) error {
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
	opts.CacheEntries = env.cfg.Server.PlanCacheEntries
	_, opts.CacheBytes = cacheBudget(env.cfg.Server.PlanCacheBytes)
	var slowest *console.Slowest
	if env.metrics != nil {
		opts.Observer = env.metrics
		slowest = console.NewSlowest()
		opts.Recorder = slowRecorder{slowest}
	}
	opts.TracerProvider = env.tracing
	l := env.cfg.Server.Limits
	opts.Limits = flight.Limits{MaxSQLBytes: int(l.MaxSQLBytes), MaxIdentifierBytes: int(l.MaxIdentifierBytes), MaxInputRows: int64(l.MaxInputRows),
		MaxAnswerBytes: l.MaxAnswerBytes, MaxQueries: l.MaxQueries, MaxQueriesPerToken: l.MaxQueriesPerToken,
		MaxExpressionDepth: l.MaxExpressionDepth, MaxExpressionNodes: l.MaxExpressionNodes}
	opts.SpineChunkRows, opts.SpineEndpointRows = env.cfg.Server.SpineChunkRows, env.cfg.Server.SpineEndpointRows
	srv := flight.NewServer(env.engine, opts)
	env.jobs = startTileJobs(env)
	g := env.engine.Graph()
	for _, w := range g.Warnings {
		slog.Warn(fmt.Sprint(w))
	}
	var stopping atomic.Bool // /readyz says no once stopping
	if addr := env.cfg.Server.HTTPListen; addr != "" {
		hlis, err := net.Listen("tcp", addr)
		if err != nil && env.httpAnyPort {
			hlis, err = net.Listen("tcp", "127.0.0.1:0")
		}
		if err != nil {
			lis.Close()
			return fmt.Errorf("server.http.listen: %w", err)
		}
		hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		defer stop() // after the last call: metrics are scraped while calls drain
		ready := func(ctx context.Context) map[string]error {
			if stopping.Load() {
				return map[string]error{"server": errors.New("stopping")}
			}
			return env.env.Ready(ctx)
		}
		mux := http.NewServeMux()
		mux.Handle("/", observe.NewHTTPHandler(env.metrics, ready))
		live := env.live
		mux.Handle(console.Prefix, console.Handler(console.Config{
			Current:  func() (*planner.Engine, *auth.Verifier) { return live.Load().current() },
			Exprs:    pythonExprs,
			Gatherer: env.metrics.Registry(),
			Slowest:  slowest,
			Mode:     "server",
		}))
		mux.Handle("/console", http.RedirectHandler(console.Prefix, http.StatusFound))
		go func() {
			if err := observe.Serve(hctx, hlis, mux); err != nil {
				slog.Error("the operators' port failed", "err", err)
			}
		}()
		slog.Info(fmt.Sprintf("operators' port on http://%s: /metrics, /healthz, /readyz", hlis.Addr()))
		slog.Info(fmt.Sprintf("console on http://%s%s (docs/CONSOLE.md)", hlis.Addr(), console.Prefix))
	}
	// The Python workers start now, not at the first query; without a
	// usable Python only the features of those resolvers are unavailable.
	for _, w := range env.engine.CheckPython() {
		slog.Warn(fmt.Sprint(w))
	}
	// Reloads are on before "serving" is logged: a change made after
	// that line is seen.
	var reloads *reloader
	if from != nil {
		reloads = newReloader(from.dir, from.configPath, env, srv)
		if err := reloads.start(ctx, from.watch); err != nil {
			srv.Stop()
			lis.Close()
			return err
		}
	}
	slog.Info(fmt.Sprintf("serving %d feature classes (%s) over Flight SQL on %s", len(g.Classes), strings.Join(g.ClassNames(), ", "), lis.Addr()))
	errc := make(chan error, 1)
	// Serve's context never ends: Serve would stop gracefully without a
	// bound, and the grace period is decided here.
	go func() { errc <- srv.Serve(context.WithoutCancel(ctx), lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// A second signal cuts the calls in flight off at once.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	stopping.Store(true)
	slog.Info(fmt.Sprintf("stopping: accepting no new calls, waiting up to %s for the calls in flight", grace))
	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
		slog.Info(fmt.Sprintf("stopping: the calls in flight finished in %s", time.Since(start).Round(time.Millisecond)))
	case <-timer.C:
		slog.Warn(fmt.Sprintf("stopping: calls still running after %s are cut off", grace))
		srv.Stop()
	case <-again:
		slog.Warn("stopping: a second signal: the calls in flight are cut off")
		srv.Stop()
	}
	<-stopped
	if err := <-errc; err != nil {
		return err
	}
	if reloads != nil {
		reloads.mu.Lock() // no reload from now on
		env = reloads.cur
		reloads.closing.Wait()
	}
	env.engine.Close()
	st := env.engine.CacheStats()
	slog.Info("stopping: online store write-back flushed; closing the offline log, stores and sources", "writes_dropped", st.Dropped, "writes_failed", st.Failed)
	return env.Close()
}

// current is the engine r serves and the verifier of its tokens (nil:
// auth off).
func (r *repoEnv) current() (*planner.Engine, *auth.Verifier) { return r.engine, authOf(r) }

// slowRecorder records the server's queries in the console's ring of the
// slowest: what it ran is rendered only if the query enters the ring.
type slowRecorder struct{ s *console.Slowest }

func (r slowRecorder) QueryRecorded(rec flight.Record) {
	r.s.Record(rec.End, rec.Took, func() console.SlowQuery {
		q := console.SlowQuery{Path: rec.Path, Code: rec.Code.String(), Trace: rec.Trace}
		if rec.Plan != nil {
			q.Plan, q.Classes = rec.Plan.Explain, rec.Plan.Classes()
		}
		return q
	})
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

// defaultCacheBytes is server.plan_cache.max_bytes when fletch.yaml sets
// none.
const defaultCacheBytes = 256 << 20

// cacheBudget splits server.plan_cache.max_bytes, the resident memory the
// query caches may cost, into what the plan cache and the front ends'
// caches may keep live. Between two collections Go lets garbage grow to
// GOGC percent of what is live (400 % in a server: tuneGC), so a cache
// holding b live bytes costs up to b × (1 + GOGC/100) of resident memory:
// the caches keep that fraction of the budget, two thirds of it plans
// (docs/CONFIG.md, docs/BENCHMARKS.md "The plan cache's bound").
func cacheBudget(maxBytes int64) (plans, frontEnds int64) {
	if maxBytes <= 0 {
		maxBytes = defaultCacheBytes
	}
	live := maxBytes * 100 / (100 + gcPercent())
	return live * 2 / 3, live / 3
}

// gcPercent is the collector's GOGC now (0 when the collector is off: no
// factor can bound garbage that is never collected).
func gcPercent() int64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	return int64(s[0].Value.Uint64())
}

// version is reported by the server; set at build time with -ldflags.
var version = "dev"

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultListen, "address to serve Flight SQL on")
	dir := fs.String("dir", "", "folder for the demo repository and database (default: the user cache folder)")
	httpListen := fs.String("http-listen", "", "address of the operators' port: the console, /metrics, /healthz, /readyz (default "+defaultConsoleListen+", else any free port)")
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
	tuneGC() // before the caches are sized: see cacheBudget
	if err := setLogger(stdout, observe.FormatText, "info"); err != nil {
		return err
	}
	cfg, err := findConfig(repo, "", db)
	if err != nil {
		return err
	}
	// The demo always has its console: on the usual port, or any free
	// one when another process holds it (the address is logged).
	cfg.Server.HTTPListen = cmp.Or(*httpListen, defaultConsoleListen)
	metrics := observe.NewMetrics()
	env, err := openRepoWith(repo, cfg, metrics, nil)
	if err != nil {
		return err
	}
	env.httpAnyPort = *httpListen == ""
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
	return serve(ctx, env, *listen, defaultGrace, stdout, nil)
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
