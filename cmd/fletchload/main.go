// Command fletchload is an open-loop load generator for fletch's two query
// protocols, so both are measured by the same client in the same session:
// the native feature query (one DoExchange, docs/NATIVE.md) and Flight SQL
// statements (GetFlightInfo + DoGet, or prepared: DoPut + GetFlightInfo +
// DoGet). It speaks to any Flight SQL server in `sql` mode, which is how it
// is checked against other load tools on the same server.
//
// Open loop: slot i is due at start + i/rate whatever the workers are doing,
// and latency counts from that time, so queueing behind a slow answer is
// measured rather than hidden (no coordinated omission).
//
// It knows the wire protocols and the native command's JSON, nothing of how
// a server plans or computes features.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/native"
)

const usage = `fletchload — open-loop load for fletch's native query and Flight SQL

Usage:
  fletchload native --addr ADDR --class CLASS --out FEATURE ... [flags]
        one DoExchange per request carrying --keys ids in the --key column
  fletchload sql    --addr ADDR --sql 'SELECT ... WHERE id = {id}' [--prepared] [flags]
        one Flight SQL statement per request; {id} is a random id, {ids} --keys
        of them joined by commas; --prepared binds --keys ids to the one ? instead
  fletchload noop   [flags]
        requests that do nothing: the generator's own scheduling floor
  fletchload distinct --addr ADDR --pid PID [--n 200000] [--every 10000]
        statements that each need a plan of their own, sampling the server's
        resident memory (the plan cache's bound), every answer checked
  fletchload fault --fletch BIN [--rate 250] [--duration 10m] [flags]
        a load-and-fault test: private PostgreSQL and Redis, fletch serve over
        them, mixed load with Redis killed, Postgres restarted, a table locked
        and a burst of cancelled calls (fletchload fault -h)

Each run prints a human line on stderr and one JSON line on stdout.
Ids are random in 1..--entities (decimal text, or integers for integer columns).

Example (fletch demo on 127.0.0.1:8815, items' genre cached in the online store):
  fletchload sql    --entities 500 --prewarm --sql "SELECT genre_from_llm FROM item WHERE id = '{id}'"
  fletchload native --entities 500 --prewarm --class item --out genre_from_llm

Flags:
`

func main() {
	ctx := context.Background()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "fletchload:", err)
		}
		if errors.Is(err, errFailed) {
			os.Exit(1) // the run completed; its checks failed
		}
		os.Exit(2)
	}
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// pidFlag is a comma-separated list of process ids.
type pidFlag []int

func (p *pidFlag) String() string { return fmt.Sprint([]int(*p)) }
func (p *pidFlag) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || pid <= 0 {
			return fmt.Errorf("bad pid %q", f)
		}
		*p = append(*p, pid)
	}
	return nil
}

// config is every flag.
type config struct {
	mode                    string
	addr, label             string
	rate                    float64
	duration, warmup, drain time.Duration
	timeout, slack          time.Duration
	workers, conns, keys    int
	entities                int
	seed                    uint64
	prewarm, checkRows      bool
	headers                 listFlag
	token                   string
	cpuPids                 pidFlag
	quiet                   float64
	quietWait               time.Duration
	retries                 int
	class, key, keyType     string
	outs                    listFlag
	meta                    bool
	sql                     string
	prepared                bool
}

func flags(mode string, stderr io.Writer) (*flag.FlagSet, *config) {
	c := &config{mode: mode}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8815", "the server, host:port (plain gRPC)")
	fs.StringVar(&c.label, "label", "", "free text copied into the JSON line (the system under test)")
	fs.Float64Var(&c.rate, "rate", 250, "target request rate, requests per second")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured run at the same rate before the measured one (connections, plans, caches)")
	fs.DurationVar(&c.drain, "drain", 5*time.Second, "after the schedule ends, how long queued requests may still start; later ones count as dropped")
	fs.DurationVar(&c.timeout, "timeout", 0, "per-request deadline (0: none, a per-request context costs ~20µs; the run as a whole is cut 10s after the drain)")
	fs.DurationVar(&c.slack, "spin", 200*time.Microsecond, "at most this long (and a tenth of the interval) spent spinning before a slot instead of trusting the timer")
	fs.IntVar(&c.workers, "workers", 16, "concurrent workers: the most requests in flight at once")
	fs.IntVar(&c.conns, "conns", 1, "gRPC connections, shared round-robin by the workers")
	fs.IntVar(&c.keys, "keys", 1, "ids per request (native: input rows; sql: {ids} or prepared parameter rows)")
	fs.IntVar(&c.entities, "entities", 1000, "ids are drawn from 1..entities")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the random ids")
	fs.BoolVar(&c.prewarm, "prewarm", false, "before the warm-up, ask every id in 1..entities once (fills the server's online store)")
	fs.BoolVar(&c.checkRows, "check-rows", true, "an answer without exactly one row per id asked is an error")
	fs.Var(&c.headers, "header", `gRPC metadata "name: value" sent with every call (repeatable)`)
	fs.StringVar(&c.token, "token", "", "access token, sent as authorization: Bearer TOKEN")
	fs.Var(&c.cpuPids, "cpu-pids", "comma-separated pids (the server, its stores) whose CPU use is reported apart from the rest of the machine")
	fs.Float64Var(&c.quiet, "quiet", 0, "shared machine: before the run, wait (up to --quiet-wait) for a second in which other processes use fewer cores than this, and repeat a run they disturbed more (up to --retries times, keeping the least disturbed); 0: off")
	fs.DurationVar(&c.quietWait, "quiet-wait", 2*time.Minute, "the longest wait for a quiet machine before running anyway")
	fs.IntVar(&c.retries, "retries", 2, "with --quiet, how many times a disturbed run is repeated")
	fs.StringVar(&c.class, "class", "", "native: the feature class (default: the --key column's qualifier)")
	fs.StringVar(&c.key, "key", "", "native: the input column the ids go in (default: CLASS.id)")
	fs.StringVar(&c.keyType, "key-type", "string", "native: the input column's type, string or int64")
	fs.Var(&c.outs, "out", "native: an output (a feature path or expression; repeatable; none: every scalar feature)")
	fs.BoolVar(&c.meta, "meta", false, "native: ask for the cache-hit columns too")
	fs.StringVar(&c.sql, "sql", "", "sql: the query text, with {id} or {ids} (statement) or one ? (--prepared)")
	fs.BoolVar(&c.prepared, "prepared", false, "sql: prepare once per worker and bind the ids per request")
	return fs, c
}

func (c *config) check() error {
	switch {
	case c.rate <= 0:
		return errors.New("--rate must be > 0")
	case c.duration <= 0:
		return errors.New("--duration must be > 0")
	case c.workers < 1 || c.conns < 1 || c.keys < 1 || c.entities < 1:
		return errors.New("--workers, --conns, --keys and --entities must be >= 1")
	case c.mode == "sql" && c.sql == "":
		return errors.New("sql: --sql is required")
	case c.mode == "sql" && !c.prepared && c.keys > 1 && !strings.Contains(c.sql, "{ids}"):
		return fmt.Errorf("sql: --keys %d needs {ids} in --sql (or --prepared)", c.keys)
	case c.mode == "native" && c.class == "" && c.key == "":
		return errors.New("native: --class or --key is required")
	case c.mode == "native" && c.keyType != "string" && c.keyType != "int64":
		return fmt.Errorf("native: --key-type %q: string or int64", c.keyType)
	}
	if c.mode == "native" && c.key == "" {
		c.key = c.class + ".id"
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "distinct" {
		return distinct(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "fault" {
		return fault(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "native" && args[0] != "sql" && args[0] != "noop") {
		fs, _ := flags("fletchload", stderr)
		fs.Usage()
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("unknown mode %q: native, sql or noop", args[0])
		}
		return flag.ErrHelp
	}
	fs, c := flags(args[0], stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if err := c.check(); err != nil {
		return err
	}
	if c.token != "" {
		c.headers = append(c.headers, "authorization: Bearer "+c.token)
	}
	ctx, err := withHeaders(ctx, c.headers)
	if err != nil {
		return err
	}
	reqs, closeAll, err := c.requests(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	if c.prewarm {
		if err := c.warmAll(ctx, reqs[0]); err != nil {
			return err
		}
	}
	if c.warmup > 0 {
		c.phase(ctx, reqs, c.warmup, c.seed+1)
	}
	var r report
	tries := 0
	for {
		tries++
		if c.quiet > 0 {
			c.waitQuiet(stderr)
		}
		before := sampleCPU(c.cpuPids)
		o := c.phase(ctx, reqs, c.duration, c.seed)
		got := c.report(o, before, sampleCPU(c.cpuPids))
		if tries == 1 || got.CPUOther < r.CPUOther {
			r = got
		}
		if c.quiet <= 0 || got.CPUOther <= c.quiet || tries > c.retries {
			break
		}
		fmt.Fprintf(stderr, "fletchload: other processes used %.2f cores during the run (over --quiet %g): again\n", got.CPUOther, c.quiet)
	}
	r.Tries = tries
	fmt.Fprintln(stderr, r.human())
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(line))
	return err
}

// waitQuiet waits for a second in which the rest of the machine used fewer
// than --quiet cores, or --quiet-wait.
func (c *config) waitQuiet(stderr io.Writer) {
	began := time.Now()
	for time.Since(began) < c.quietWait {
		a := sampleCPU(c.cpuPids)
		time.Sleep(time.Second)
		if _, _, other := a.cores(sampleCPU(c.cpuPids), time.Second); other < c.quiet {
			return
		}
	}
	fmt.Fprintf(stderr, "fletchload: the machine was not quiet within %s; running anyway\n", c.quietWait)
}

// requests makes one request per worker over --conns connections, and the
// function that closes them all.
func (c *config) requests(ctx context.Context) ([]request, func(), error) {
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	reqs := make([]request, c.workers)
	if c.mode == "noop" {
		for w := range reqs {
			reqs[w] = func(context.Context, []string) (int64, error) { return 0, nil }
		}
		return reqs, closeAll, nil
	}
	mem := memory.NewGoAllocator()
	conns := make([]*flightsql.Client, min(c.conns, c.workers))
	for i := range conns {
		cl, err := dial(c.addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %w", c.addr, err)
		}
		conns[i] = cl
		closers = append(closers, func() { cl.Close() })
	}
	for w := range reqs {
		cl := conns[w%len(conns)]
		var err error
		switch {
		case c.mode == "native":
			key := arrow.Field{Name: c.key, Type: arrow.BinaryTypes.String}
			if c.keyType == "int64" {
				key.Type = arrow.PrimitiveTypes.Int64
			}
			reqs[w], err = nativeRequest(cl, mem, native.Query{Class: c.class, Outputs: c.outs, Meta: c.meta}, key, c.checkRows)
		case c.prepared:
			var done func()
			reqs[w], done, err = preparedRequest(ctx, cl, mem, c.sql, c.checkRows)
			if err == nil {
				closers = append(closers, done)
			}
		default:
			reqs[w] = statementRequest(cl, c.sql, c.checkRows)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s: %w", c.addr, err)
		}
		if c.timeout > 0 {
			reqs[w] = withTimeout(reqs[w], c.timeout)
		}
	}
	return reqs, closeAll, nil
}

func withTimeout(r request, d time.Duration) request {
	return func(ctx context.Context, ids []string) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return r(ctx, ids)
	}
}

// hardStop is how long after the drain the requests still in flight are
// cancelled: a hung server ends the run rather than the tool waiting for it.
const hardStop = 10 * time.Second

// phase runs the schedule for d at --rate with random ids.
func (c *config) phase(ctx context.Context, reqs []request, d time.Duration, seed uint64) outcome {
	ctx, cancel := context.WithTimeout(ctx, d+c.drain+hardStop)
	defer cancel()
	rngs := make([]*rand.Rand, len(reqs))
	bufs := make([][]string, len(reqs))
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(seed, uint64(w)))
		bufs[w] = make([]string, c.keys)
	}
	ids := func(w int) []string {
		for i := range bufs[w] {
			bufs[w][i] = strconv.Itoa(1 + rngs[w].IntN(c.entities))
		}
		return bufs[w]
	}
	p := plan{rate: c.rate, duration: d, drain: c.drain, slack: c.slack}
	return execute(ctx, p, reqs, ids)
}

// warmAll asks every id once, --keys at a time, so that what the server
// caches is cached before the measured run.
func (c *config) warmAll(ctx context.Context, req request) error {
	for lo := 1; lo <= c.entities; lo += c.keys {
		var ids []string
		for id := lo; id < lo+c.keys && id <= c.entities; id++ {
			ids = append(ids, strconv.Itoa(id))
		}
		if _, err := req(ctx, ids); err != nil {
			return fmt.Errorf("--prewarm, ids %s..%s: %w", ids[0], ids[len(ids)-1], err)
		}
	}
	return nil
}
