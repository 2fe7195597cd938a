package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fletch-engine/fletch/examples/marketplace"
)

// The fault mode (`fletchload fault`) is a load-and-fault test of a whole
// deployment: it starts a private PostgreSQL and Redis (scripts/services
// with a folder and ports of their own, so that the shared test servers are
// never touched), copies the marketplace example's data into Postgres,
// serves the example with `fletch serve` (Postgres source, Redis online
// store, two tokens), drives it over Flight SQL at a fixed rate with a mix
// of lookups, bulk, point-in-time and bad requests, injects faults (Redis
// killed, Postgres restarted, a table locked, a burst of cancelled calls)
// and reports what the callers saw, checking answers against Postgres. The
// servers it started are stopped at the end, whatever happened.

const faultUsage = `fletchload fault — a load-and-fault test of fletch serve over Postgres + Redis

Usage:
  fletchload fault --fletch BIN [--rate 250] [--duration 10m] [--warmup 1m] [flags]

Starts a private PostgreSQL and Redis (scripts/services, free ports, a scratch
folder), the marketplace example's data in Postgres, and BIN serve over them;
then --warmup of load, then --duration of load with --faults injected at even
intervals. Prints a human report on stderr and one JSON line on stdout; exits
1 when a check fails (unexpected errors, wrong answers, slow recovery, leaked
goroutines, memory growth).

Flags:
`

type faultConfig struct {
	fletch, services, dir string
	records, planCache    string
	rate                  float64
	duration, warmup      time.Duration
	timeout, settle       time.Duration
	outage, lock          time.Duration
	sample                time.Duration
	workers, conns        int
	cancels               int
	faults                string
	seed                  uint64
	keep                  bool
	maxSlope, maxGrowth   float64
	goroutineSlack        int
}

func faultFlags(stderr io.Writer) (*flag.FlagSet, *faultConfig) {
	c := &faultConfig{}
	fs := flag.NewFlagSet("fault", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, faultUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.fletch, "fletch", "fletch", "the fletch binary to serve with")
	fs.StringVar(&c.services, "services", "scripts/services", "the repository's scripts/services (starts the private PostgreSQL and Redis)")
	fs.StringVar(&c.dir, "dir", "", "scratch folder (default: a new one in the temporary folder, removed at the end)")
	fs.Float64Var(&c.rate, "rate", 250, "request rate, requests per second (open loop)")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "measured duration, the faults inside it")
	fs.DurationVar(&c.warmup, "warmup", time.Minute, "load before the measured run (caches, pools, the heap's steady state); its goroutine count is the baseline")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request deadline")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "a fault's window ends this long after it was repaired: errors later than that are unexpected")
	fs.DurationVar(&c.outage, "outage", 5*time.Second, "how long Redis and Postgres stay down")
	fs.DurationVar(&c.lock, "lock", 5*time.Second, "how long the locked table stays locked")
	fs.DurationVar(&c.sample, "sample", 5*time.Second, "how often the server's /metrics is scraped (memory, goroutines)")
	fs.IntVar(&c.workers, "workers", 128, "concurrent workers: the most requests in flight at once (more than a locked resolver holds, running and queued: 40, so that the other requests are not held back by this client)")
	fs.IntVar(&c.conns, "conns", 4, "gRPC connections of the load")
	fs.IntVar(&c.cancels, "cancels", 200, "calls of the mass cancellation, each cancelled 0-20 ms after it began")
	fs.StringVar(&c.faults, "faults", "redis,postgres,lock,cancel", "the faults, in order, at even intervals of --duration (none: \"\")")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the request mix")
	fs.StringVar(&c.planCache, "plan-cache", "32MiB", "the server's server.plan_cache.max_bytes: the resident memory its query caches may take (fletch's default is 256MiB). Distinct statement texts (every IN list is one) fill them up to it; a small bound is reached in the warm-up, so that the memory slope after it shows leaks, not caches filling")
	fs.StringVar(&c.records, "records", "", "write every measured request to this file (CSV: due_ms, end_ms, kind, code, error)")
	fs.BoolVar(&c.keep, "keep", false, "keep the scratch folder (server log, services' logs)")
	fs.Float64Var(&c.maxSlope, "max-slope", 0, "fail when resident memory grows faster than this, MB/min over the measured run (0: report only)")
	fs.Float64Var(&c.maxGrowth, "max-growth", 0, "fail when resident memory at the end exceeds its value at the measured run's start by more than this, MB (0: report only)")
	fs.IntVar(&c.goroutineSlack, "goroutine-slack", 10, "fail when the server's goroutines, once idle after the run, exceed the baseline by more than this")
	return fs, c
}

func fault(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := faultFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	faults, err := parseFaults(c.faults)
	if err != nil {
		return err
	}
	if c.rate <= 0 || c.duration <= 0 || c.workers < 1 || c.conns < 1 {
		return errors.New("--rate, --duration, --workers and --conns must be > 0")
	}
	// Interrupted, the servers it started are still stopped.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "fletchload fault: "+format+"\n", a...)
	}
	d, err := newDeployment(ctx, c, logf)
	if d != nil {
		defer d.close()
	}
	if err != nil {
		return err
	}
	r, err := d.run(ctx, faults)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, r.human())
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, string(line)); err != nil {
		return err
	}
	if len(r.Failures) > 0 {
		return errFailed
	}
	return nil
}

// errFailed makes the exit status 1: the run completed and a check failed.
var errFailed = errors.New("checks failed")

// deployment is what the fault mode started: the private servers, the data,
// fletch serve, and the tokens to call it with.
type deployment struct {
	c                  *faultConfig
	logf               func(string, ...any)
	dir, svcDir        string
	removeDir          bool
	svcEnv             []string
	pgDSN              string
	redisPidfile       string
	addr, httpAddr     string
	token, scopedToken string
	anchor             time.Time
	ref                *reference
	serve              *exec.Cmd
	logPath            string
	serveExited        chan struct{}
	servicesUp         bool
}

func newDeployment(ctx context.Context, c *faultConfig, logf func(string, ...any)) (*deployment, error) {
	d := &deployment{c: c, logf: logf, dir: c.dir}
	if d.dir == "" {
		dir, err := os.MkdirTemp("", "fletchload-fault-")
		if err != nil {
			return nil, err
		}
		d.dir, d.removeDir = dir, !c.keep
	}
	// scripts/services runs PostgreSQL as the postgres user when root: it
	// must be able to enter the folder.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return d, err
	}
	d.svcDir = filepath.Join(d.dir, "services")
	pgPort, err := freeTCPPort()
	if err != nil {
		return d, err
	}
	redisPort, err := freeTCPPort()
	if err != nil {
		return d, err
	}
	d.svcEnv = []string{"FLETCH_SERVICES_DIR=" + d.svcDir, "FLETCH_PG_PORT=" + pgPort, "FLETCH_REDIS_PORT=" + redisPort}
	d.pgDSN = "postgres://postgres@127.0.0.1:" + pgPort + "/fletch?sslmode=disable"
	d.redisPidfile = filepath.Join(d.svcDir, "redis.pid")
	began := time.Now()
	d.servicesUp = true
	if err := d.services(ctx, "start", "postgres", "redis"); err != nil {
		return d, err
	}
	logf("private PostgreSQL on :%s and Redis on :%s started in %s (data in %s)", pgPort, redisPort, time.Since(began).Round(time.Millisecond), d.svcDir)

	began = time.Now()
	d.anchor = time.Now().UTC().Truncate(24 * time.Hour)
	if err := d.loadData(ctx); err != nil {
		return d, err
	}
	if d.ref, err = loadReference(ctx, d.pgDSN, d.anchor); err != nil {
		return d, err
	}
	logf("marketplace data (anchor %s) copied to Postgres and read back as the reference in %s", d.anchor.Format("2006-01-02"), time.Since(began).Round(time.Millisecond))

	if err := d.startServe(ctx, redisPort); err != nil {
		return d, err
	}
	return d, nil
}

// services runs scripts/services with the private set's environment.
func (d *deployment) services(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, d.c.services, args...)
	cmd.Env = append(os.Environ(), d.svcEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", d.c.services, strings.Join(args, " "), err, out)
	}
	return nil
}

func (d *deployment) loadData(ctx context.Context) error {
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		return err
	}
	defer duck.Close()
	duck.SetMaxOpenConns(1)
	if err := marketplace.Generate(ctx, duck, marketplace.Options{Anchor: d.anchor}); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, d.pgDSN)
	if err != nil {
		return err
	}
	defer pool.Close()
	return marketplace.CopyToPostgres(ctx, duck, pool)
}

// newToken is a token in fletch's format and its hash for fletch.yaml.
func newToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = "fletch_" + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// faultYAML is the deployment's fletch.yaml: the marketplace source with
// bulkheads (a locked table takes at most half the pool; room for the
// bursts of a shared 2-core machine at a few hundred requests a second,
// where a stall of the scheduler piles up dozens of queries), the Redis online
// store, a token reading everything and one reading users only, the query
// caches' bound.
const faultYAML = `sources:
  marketplace:
    kind: postgres
    dsn: %s
    max_conns: 16
    max_per_resolver: 8
    max_queued: 32
    statement_timeout: 5s
online_store:
  kind: redis
  addr: 127.0.0.1:%s
  prefix: "fault:"
auth:
  tokens:
    - name: load
      hash: %s
      scopes: ["read:*"]
    - name: users-only
      hash: %s
      scopes: [read:user]
server:
  plan_cache:
    max_bytes: %s
`

func (d *deployment) startServe(ctx context.Context, redisPort string) error {
	repo := filepath.Join(d.dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	err := fs.WalkDir(marketplace.Files, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := marketplace.Files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(repo, path), data, 0o644)
	})
	if err != nil {
		return err
	}
	var hash, scopedHash string
	if d.token, hash, err = newToken(); err != nil {
		return err
	}
	if d.scopedToken, scopedHash, err = newToken(); err != nil {
		return err
	}
	yaml := fmt.Sprintf(faultYAML, d.pgDSN, redisPort, hash, scopedHash, d.c.planCache)
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		return err
	}
	port, err := freeTCPPort()
	if err != nil {
		return err
	}
	httpPort, err := freeTCPPort()
	if err != nil {
		return err
	}
	d.addr, d.httpAddr = "127.0.0.1:"+port, "127.0.0.1:"+httpPort
	logPath := filepath.Join(d.dir, "serve.log")
	d.logPath = logPath
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	d.serve = exec.Command(d.c.fletch, "serve", "--repo", repo, "--listen", d.addr, "--http-listen", d.httpAddr)
	d.serve.Stderr = logFile
	stdout, err := d.serve.StdoutPipe()
	if err != nil {
		return err
	}
	if err := d.serve.Start(); err != nil {
		return fmt.Errorf("fletch serve: %w", err)
	}
	d.serveExited = make(chan struct{})
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		said := false
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if !said && strings.Contains(sc.Text(), "serving") {
				said = true
				close(serving)
			}
		}
		d.serve.Wait()
		logFile.Close()
		close(d.serveExited)
	}()
	select {
	case <-serving:
	case <-d.serveExited:
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("fletch serve exited before serving:\n%s", log)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("fletch serve did not say \"serving\" within 60s (log: %s)", logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + d.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 100 {
			return fmt.Errorf("fletch serve: /readyz did not answer 200 within 10s (log: %s)", logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.logf("fletch serve (pid %d) on %s, operators' port %s, log %s", d.serve.Process.Pid, d.addr, d.httpAddr, logPath)
	return nil
}

// close stops fletch serve and the private servers and removes the scratch
// folder (unless --keep or --dir).
func (d *deployment) close() {
	if d.serve != nil && d.serve.Process != nil {
		d.serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.serveExited:
		case <-time.After(10 * time.Second):
			d.serve.Process.Kill()
			<-d.serveExited
		}
	}
	if d.servicesUp {
		if err := d.services(context.Background(), "stop", "postgres", "redis"); err != nil {
			d.logf("stopping the private servers: %v", err)
		}
	}
	if d.removeDir {
		// scripts/services puts PostgreSQL's data in /tmp when the folder
		// is closed to the postgres user: that folder goes too.
		if b, err := os.ReadFile(filepath.Join(d.svcDir, "postgres.dir")); err == nil {
			os.RemoveAll(strings.TrimSpace(string(b)))
		}
		os.RemoveAll(d.dir)
	} else {
		d.logf("kept %s", d.dir)
	}
}

// freeTCPPort is a loopback port nothing listens on right now.
func freeTCPPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// redisPid is the private Redis's process id, from its pidfile.
func (d *deployment) redisPid() (int, error) {
	b, err := os.ReadFile(d.redisPidfile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// serverLog counts the server's log lines by level (slog's text format),
// and returns the lines that are neither slog's nor the CLI's own
// "fletch: …" notices at startup: a library writing to stderr on its own.
func (d *deployment) serverLog() (levels map[string]int, other []string, err error) {
	f, err := os.Open(d.logPath)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	levels = map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "time="):
			if _, rest, ok := strings.Cut(line, " level="); ok {
				lvl, _, _ := strings.Cut(rest, " ")
				levels[lvl]++
			}
		case strings.HasPrefix(line, "fletch: ") || strings.TrimSpace(line) == "":
		default:
			other = append(other, line)
		}
	}
	return levels, other, sc.Err()
}
