package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// record is one request of the measured run: offsets from its start.
type record struct {
	due, end time.Duration
	began    time.Duration // due → began is this generator's lag (a stalled machine shows here too)
	kind     kind
	code     codes.Code
	wrong    bool
	msg      string // the error, for the report's first unexpected ones
}

// faultNames are the faults the mode knows, and what each may cost the
// callers while it lasts (docs/CONFIG.md, docs/STORES.md): Redis down is
// read as empty (features computed, no error); Postgres down fails the
// queries that need it with Unavailable; a locked table holds its
// resolver's queries (at most max_per_resolver of the pool) until the lock
// goes, refuses those beyond max_queued (Unavailable) and lets the caller's
// deadline pass (DeadlineExceeded); a burst of cancelled calls costs the
// others nothing but a full bulkhead's refusal (Unavailable, "… is busy")
// while the burst fills it.
var faultNames = map[string][]codes.Code{
	"redis":    nil,
	"postgres": {codes.Unavailable, codes.DeadlineExceeded},
	"lock":     {codes.Unavailable, codes.DeadlineExceeded},
	"cancel":   {codes.Unavailable},
}

// allows reports whether fault name may cost a call the error code with
// message msg.
func allows(name string, c codes.Code, msg string) bool {
	if name == "cancel" && !strings.Contains(msg, "is busy") {
		return false
	}
	return slices.Contains(faultNames[name], c)
}

// serverCounters are the server's counters a fault should move (what shows
// it was real): their increase over each fault's window is reported.
var serverCounters = map[string]string{
	"online_store_errors": "fletch_online_store_errors_total",
	"source_errors":       "fletch_source_errors_total",
	"bulkhead_refused":    "fletch_guard_refused_total",
}

func parseFaults(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, ok := faultNames[f]; !ok {
			return nil, fmt.Errorf("--faults: unknown fault %q: redis, postgres, lock or cancel", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// event is one fault as injected.
type event struct {
	name          string
	at, repaired  time.Duration // offsets from the measured run's start
	err           error
	server        map[string]int     // serverCounters' increase from the fault to the end of its window
	ready         []readySample      // /readyz from the fault to the end of its window
	cancelOutcome map[codes.Code]int // the calls' codes (Unknown: a code the burst may not cost)
	cancelFirst   string             // the first of those
}

// metricSample is one scrape of the server's /metrics.
type metricSample struct {
	at                   time.Time
	rss, goroutines, ifl float64
	heap, planEntries    float64
	// cores used since the previous sample: this generator, the server,
	// and the rest of the machine (Postgres, Redis, other engineers' work)
	cpuSelf, cpuServer, cpuOther float64
}

// sampler scrapes /metrics every interval until stopped.
type sampler struct {
	url     string
	mu      sync.Mutex
	samples []metricSample
	stop    chan struct{}
	done    chan struct{}
}

func startSampler(url string, every time.Duration, serverPid int) *sampler {
	s := &sampler{url: url, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		lastCPU, lastAt := sampleCPU([]int{serverPid}), time.Now()
		for {
			if m, err := scrape(s.url); err == nil {
				now, cpu := time.Now(), sampleCPU([]int{serverPid})
				self, server, other := lastCPU.cores(cpu, now.Sub(lastAt))
				lastCPU, lastAt = cpu, now
				s.mu.Lock()
				s.samples = append(s.samples, metricSample{now, m["process_resident_memory_bytes"], m["go_goroutines"], m["fletch_queries_in_flight"],
					m["go_memstats_heap_inuse_bytes"], m["fletch_plan_cache_entries"], self, server, other})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) close() []metricSample {
	close(s.stop)
	<-s.done
	return s.samples
}

// scrape reads /metrics: each family's value summed over its series
// (counters and gauges; a histogram's count) under its name, and summed by
// each label's value under "name/label=value".
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(fams))
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				v = float64(m.GetHistogram().GetSampleCount())
			default:
				v = m.GetUntyped().GetValue()
			}
			out[name] += v
			for _, l := range m.GetLabel() {
				out[name+"/"+l.GetName()+"="+l.GetValue()] += v
			}
		}
	}
	return out, nil
}

// run drives the load, injects the faults and makes the report.
func (d *deployment) run(ctx context.Context, faults []string) (*faultReport, error) {
	c := d.c
	auth, err := withHeaders(ctx, []string{"authorization: Bearer " + d.token})
	if err != nil {
		return nil, err
	}
	scoped, err := withHeaders(ctx, []string{"authorization: Bearer " + d.scopedToken})
	if err != nil {
		return nil, err
	}
	conns := make([]*flightsql.Client, c.conns)
	for i := range conns {
		if conns[i], err = dial(d.addr); err != nil {
			return nil, err
		}
		defer conns[i].Close()
	}
	mem := memory.NewGoAllocator()
	workers := make([]*worker, c.workers)
	reqs := make([]request, c.workers)
	for i := range workers {
		w := &worker{cl: conns[i%len(conns)], rng: rand.New(rand.NewPCG(c.seed, uint64(i))), mem: mem, ref: d.ref, scoped: scoped}
		defer w.close()
		if err := w.prepare(auth); err != nil {
			return nil, err
		}
		workers[i], reqs[i] = w, withTimeout(w.request, c.timeout)
	}
	metricsURL := "http://" + d.httpAddr + "/metrics"
	smp := startSampler(metricsURL, c.sample, d.serve.Process.Pid)
	loadAvg := [2]string{readLoadAvg(), ""}

	if c.warmup > 0 {
		d.logf("warm-up: %s at %g req/s", c.warmup, c.rate)
		execute(auth, plan{rate: c.rate, duration: c.warmup, drain: c.timeout, slack: 200 * time.Microsecond}, reqs, noIDs)
	}
	if err := waitIdle(metricsURL, 30*time.Second); err != nil {
		return nil, err
	}
	baseline, err := idleGoroutines(metricsURL)
	if err != nil {
		return nil, err
	}
	d.logf("idle after the warm-up: %d goroutines (the baseline); measured run: %s at %g req/s, faults %v", int(baseline), c.duration, c.rate, faults)

	serverBefore, err := scrape(metricsURL)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	events := make(chan []event, 1)
	injectCtx, stopInjecting := context.WithCancel(ctx)
	defer stopInjecting()
	go func() { events <- d.inject(injectCtx, auth, start, faults) }()
	// observe runs in each worker's goroutine and appends to that worker's
	// records only.
	o := execute(auth, plan{rate: c.rate, duration: c.duration, drain: c.timeout, slack: 200 * time.Microsecond,
		observe: func(i int, due, began, end time.Duration, err error) {
			w := workers[i]
			r := record{due: due, began: began, end: end, kind: w.cur, code: code(err)}
			if err != nil {
				if _, ok := err.(*wrongAnswer); ok {
					r.wrong = true
				}
				r.msg = truncate(err.Error(), 300)
			}
			w.records = append(w.records, r)
		}}, reqs, noIDs)
	evs := <-events
	var recs []record
	for _, w := range workers {
		recs = append(recs, w.records...)
	}
	if c.records != "" {
		if err := writeRecords(c.records, recs); err != nil {
			return nil, err
		}
	}

	if err := waitIdle(metricsURL, 30*time.Second); err != nil {
		return nil, err
	}
	end, settled := baseline, time.Duration(0)
	for t0 := time.Now(); ; time.Sleep(500 * time.Millisecond) {
		m, err := scrape(metricsURL)
		if err != nil {
			return nil, err
		}
		end, settled = m["go_goroutines"], time.Since(t0)
		if end <= baseline+float64(c.goroutineSlack) || settled > 30*time.Second {
			break
		}
	}
	serverAfter, err := scrape(metricsURL)
	if err != nil {
		return nil, err
	}
	loadAvg[1] = readLoadAvg()
	samples := smp.close()
	r := d.report(o, recs, evs, samples, start, baseline, end, settled)
	r.LoadAvg = loadAvg
	levels, other, err := d.serverLog()
	if err != nil {
		return nil, err
	}
	r.ServerLog = serverLogJSON{Levels: levels, Other: len(other)}
	for _, l := range other[:min(len(other), 3)] {
		r.ServerLog.FirstOther = append(r.ServerLog.FirstOther, truncate(l, 300))
	}
	if levels["ERROR"] > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("the server logged %d lines at ERROR (a recovered panic is one): see %s", levels["ERROR"], d.logPath))
	}
	if len(other) > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("the server wrote %d lines outside its log format, e.g. %q", len(other), r.ServerLog.FirstOther[0]))
	}
	r.ServerQueries = map[string]int{}
	for k, v := range serverAfter {
		if c, ok := strings.CutPrefix(k, "fletch_queries_total/code="); ok && v > serverBefore[k] {
			r.ServerQueries[c] = int(v - serverBefore[k])
		}
	}
	return r, nil
}

func noIDs(int) []string { return nil }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func readLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// waitIdle waits for the server to have no query in flight.
func waitIdle(url string, limit time.Duration) error {
	for t0 := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		m, err := scrape(url)
		if err != nil {
			return err
		}
		if m["fletch_queries_in_flight"] == 0 {
			return nil
		}
		if time.Since(t0) > limit {
			return fmt.Errorf("the server still has %v queries in flight %s after the load stopped", m["fletch_queries_in_flight"], limit)
		}
	}
}

// idleGoroutines is the median of three scrapes of an idle server's
// goroutines.
func idleGoroutines(url string) (float64, error) {
	var g []float64
	for range 3 {
		m, err := scrape(url)
		if err != nil {
			return 0, err
		}
		g = append(g, m["go_goroutines"])
		time.Sleep(300 * time.Millisecond)
	}
	slices.Sort(g)
	return g[1], nil
}

// inject runs the faults at even intervals of the measured run.
func (d *deployment) inject(ctx context.Context, auth context.Context, start time.Time, faults []string) []event {
	var out []event
	since := func() time.Duration { return time.Since(start) }
	for i, name := range faults {
		at := time.Duration(float64(d.c.duration) * float64(i+1) / float64(len(faults)+1))
		select {
		case <-time.After(time.Until(start.Add(at))):
		case <-ctx.Done():
			return out
		}
		before, _ := scrape("http://" + d.httpAddr + "/metrics")
		e := event{name: name}
		ready := d.pollReady(since)
		switch name {
		case "redis":
			e.err = d.killRedis(ctx, &e, since)
		case "postgres":
			e.at = since()
			if e.err = d.services(ctx, "stop", "postgres"); e.err == nil {
				time.Sleep(d.c.outage)
				e.err = d.services(ctx, "start", "postgres")
			}
			e.repaired = since()
		case "lock":
			e.err = d.lockTable(ctx, &e, since)
		case "cancel":
			e.err = d.massCancel(ctx, auth, &e, since)
		}
		if e.err != nil {
			d.logf("fault %s: %v", name, e.err)
		}
		time.Sleep(d.c.settle)
		e.ready = ready()
		if after, err := scrape("http://" + d.httpAddr + "/metrics"); err == nil && before != nil {
			e.server = map[string]int{}
			for short, k := range serverCounters {
				e.server[short] = int(after[k] - before[k])
			}
		}
		d.logf("fault %s: %.1fs → %.1fs; the server counted %v", name, e.at.Seconds(), e.repaired.Seconds(), e.server)
		out = append(out, e)
	}
	return out
}

// readySample is one answer of /readyz: 200 or not, at an offset of the
// measured run.
type readySample struct {
	at time.Duration
	ok bool
}

// pollReady asks /readyz every 100 ms until the returned function is
// called, which returns the answers.
func (d *deployment) pollReady(since func() time.Duration) func() []readySample {
	var out []readySample
	stop, done := make(chan struct{}), make(chan struct{})
	client := &http.Client{Timeout: 3 * time.Second}
	go func() {
		defer close(done)
		for {
			resp, err := client.Get("http://" + d.httpAddr + "/readyz")
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				resp.Body.Close()
			}
			out = append(out, readySample{since(), ok})
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() []readySample {
		close(stop)
		<-done
		return out
	}
}

// killRedis kills the private Redis (SIGKILL: no goodbye to its clients)
// and starts it again after --outage, empty (it keeps nothing on disk).
func (d *deployment) killRedis(ctx context.Context, e *event, since func() time.Duration) error {
	pid, err := d.redisPid()
	if err != nil {
		return err
	}
	e.at = since()
	defer func() { e.repaired = since() }()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill redis (pid %d): %w", pid, err)
	}
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i == 100 {
			return fmt.Errorf("redis (pid %d) still runs 5s after SIGKILL", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(d.c.outage)
	return d.services(ctx, "start", "redis")
}

// lockTable holds an ACCESS EXCLUSIVE lock on the items' table for --lock.
func (d *deployment) lockTable(ctx context.Context, e *event, since func() time.Duration) error {
	conn, err := pgx.Connect(ctx, d.pgDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "LOCK TABLE marketplace_items IN ACCESS EXCLUSIVE MODE"); err != nil {
		return err
	}
	e.at = since()
	time.Sleep(d.c.lock)
	err = tx.Rollback(ctx)
	e.repaired = since()
	return err
}

// massCancel starts --cancels heavy calls at once on connections of their
// own and cancels each mid-call: half of them 0–3 ms after the call began
// (while it is planned), the other half 0–15 ms after its answer was asked
// for (DoGet: in a source query, or while the answer streams). Each must end
// Canceled (or OK, when it was faster than its cancellation).
func (d *deployment) massCancel(ctx context.Context, auth context.Context, e *event, since func() time.Duration) error {
	conns := make([]*flightsql.Client, 4)
	for i := range conns {
		cl, err := dial(d.addr)
		if err != nil {
			return err
		}
		conns[i] = cl
		defer cl.Close()
	}
	e.cancelOutcome = map[codes.Code]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	e.at = since()
	md, _ := metadata.FromOutgoingContext(auth)
	for i := range d.c.cancels {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ctx, md))
			defer cancel()
			inPlanning := i%2 == 0
			if inPlanning {
				time.AfterFunc(time.Duration(rand.IntN(3_000))*time.Microsecond, cancel)
			}
			ids := make([]string, 50)
			for j := range ids {
				ids[j] = fmt.Sprint(1 + (i*50+j)%d.ref.nUsers)
			}
			cl := conns[i%len(conns)]
			info, err := cl.Execute(cctx, `SELECT id, "review_count[30d]", average_rating_given, "total_spend[90d]", name_email_sim FROM user WHERE id IN ('`+strings.Join(ids, "', '")+`')`)
			if err == nil {
				if !inPlanning {
					time.AfterFunc(time.Duration(rand.IntN(15_000))*time.Microsecond, cancel)
				}
				_, err = readRows(cctx, cl, info.Endpoint[0].Ticket)
			}
			c := code(err)
			if c != codes.OK && c != codes.Canceled && !allows("cancel", c, err.Error()) {
				c = codes.Unknown // reported as a failure
			}
			mu.Lock()
			e.cancelOutcome[c]++
			if c == codes.Unknown && e.cancelFirst == "" {
				e.cancelFirst = err.Error()
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	e.repaired = since()
	return nil
}

// writeRecords writes the measured requests as CSV, in the order they were
// due.
func writeRecords(path string, recs []record) error {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(a.due, b.due) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"due_ms", "start_ms", "end_ms", "kind", "code", "error"})
	for _, r := range recs {
		code := r.code.String()
		if r.wrong {
			code = "wrong answer"
		}
		ms := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1e3) }
		w.Write([]string{ms(r.due), ms(r.began), ms(r.end), r.kind.String(), code, r.msg})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
