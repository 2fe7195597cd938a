package observe

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"

	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/guard"
)

// Metrics are a server's Prometheus metrics. It is the flight server's
// Observer and the planner's: every method is a few atomic adds on the
// query's path (the series of a label value are found once, then cached
// by the library). docs/OPERATIONS.md lists the metrics.
type Metrics struct {
	reg *prometheus.Registry

	queries       *prometheus.CounterVec
	queryDuration *prometheus.HistogramVec
	inFlight      *prometheus.GaugeVec
	calls         *prometheus.CounterVec

	resolverDuration *prometheus.HistogramVec
	sourceDuration   *prometheus.HistogramVec
	sourceErrors     *prometheus.CounterVec

	onlineValues   *prometheus.CounterVec
	onlineDuration *prometheus.HistogramVec
	onlineErrors   *prometheus.CounterVec
}

// latencyBuckets span a one-entity online read (100 µs) to a source query
// at a statement timeout (30 s).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics registers a server's metrics, with the Go runtime's and the
// process's, in a registry of their own.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	hist := func(name, help string, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fletch", Name: name, Help: help, Buckets: latencyBuckets}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fletch", Name: name, Help: help}, labels)
	}
	m.queries = counter("queries_total", "Queries answered, by path (sql, substrait, prepared, native) and outcome (gRPC code).", "path", "code")
	m.queryDuration = hist("query_duration_seconds", "Time from a query's call to its last answer batch, by path.", "path")
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fletch", Name: "queries_in_flight", Help: "Queries running now, by path."}, []string{"path"})
	m.calls = counter("grpc_calls_total", "gRPC calls (queries, planning, metadata, actions), by method and outcome.", "method", "code")
	m.resolverDuration = hist("resolver_duration_seconds", "Time of one resolver query (one per resolver per frame of a query), by resolver.", "resolver")
	m.sourceDuration = hist("source_duration_seconds", "Time of one query of a source, by source.", "source")
	m.sourceErrors = counter("source_errors_total", "Source queries that failed, by source.", "source")
	m.onlineValues = counter("online_store_values_total", "Feature values (rows × features) read from the online store, by class and result: hit (served) or miss (computed).", "class", "result")
	m.onlineDuration = hist("online_store_duration_seconds", "Time of one online store operation, by operation (get, set).", "op")
	m.onlineErrors = counter("online_store_errors_total", "Online store operations that failed, by operation (get, set).", "op")
	reg.MustRegister(m.queries, m.queryDuration, m.inFlight, m.calls, m.resolverDuration, m.sourceDuration, m.sourceErrors,
		m.onlineValues, m.onlineDuration, m.onlineErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered, for /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// QueryStarted counts a query in flight (flight.Observer).
func (m *Metrics) QueryStarted(path string) { m.inFlight.WithLabelValues(path).Inc() }

// QueryDone counts a query's outcome and time (flight.Observer).
func (m *Metrics) QueryDone(path string, code codes.Code, d time.Duration) {
	m.inFlight.WithLabelValues(path).Dec()
	m.queries.WithLabelValues(path, code.String()).Inc()
	m.queryDuration.WithLabelValues(path).Observe(d.Seconds())
}

// Call counts a gRPC call (flight.Observer).
func (m *Metrics) Call(method string, code codes.Code, _ time.Duration) {
	m.calls.WithLabelValues(method, code.String()).Inc()
}

// Fetched times a resolver query and its source (planner.Observer).
func (m *Metrics) Fetched(resolver, source string, d time.Duration, err error) {
	s := d.Seconds()
	m.resolverDuration.WithLabelValues(resolver).Observe(s)
	m.sourceDuration.WithLabelValues(source).Observe(s)
	if err != nil {
		m.sourceErrors.WithLabelValues(source).Inc()
	}
}

// OnlineRead counts an online store read's hits and misses
// (planner.Observer).
func (m *Metrics) OnlineRead(class string, hits, misses int, d time.Duration, err error) {
	if hits > 0 {
		m.onlineValues.WithLabelValues(class, "hit").Add(float64(hits))
	}
	if misses > 0 {
		m.onlineValues.WithLabelValues(class, "miss").Add(float64(misses))
	}
	m.storeOp("get", d, err)
}

// OnlineWritten times a write-back (planner.Observer).
func (m *Metrics) OnlineWritten(_ string, d time.Duration, err error) { m.storeOp("set", d, err) }

func (m *Metrics) storeOp(op string, d time.Duration, err error) {
	m.onlineDuration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.onlineErrors.WithLabelValues(op).Inc()
	}
}

// PlanCache exports the plan cache's size and counters, read from stats
// at each scrape.
func (m *Metrics) PlanCache(stats func() lru.Stats) {
	gauge := func(name, help string, v func(lru.Stats) int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "fletch", Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	count := func(name, help string, v func(lru.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "fletch", Name: name, Help: help}, func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		gauge("plan_cache_entries", "Plans in the plan cache.", func(s lru.Stats) int64 { return s.Entries }),
		gauge("plan_cache_bytes", "Estimated memory of the plans in the plan cache.", func(s lru.Stats) int64 { return s.Bytes }),
		count("plan_cache_hits_total", "Statements whose plan was in the plan cache.", func(s lru.Stats) int64 { return s.Hits }),
		count("plan_cache_misses_total", "Statements planned anew.", func(s lru.Stats) int64 { return s.Misses }),
		count("plan_cache_evictions_total", "Plans evicted to keep the plan cache's bounds.", func(s lru.Stats) int64 { return s.Evictions }),
	)
}

// OfflineLog exports the offline log's counters, read from stats at each
// scrape.
func (m *Metrics) OfflineLog(stats func() stores.OfflineStats) {
	m.reg.MustRegister(newFuncCounters("offline_log_values_total", "Feature values given to the offline log, by result: written, dropped (queue full) or failed.", "result",
		map[string]func() float64{
			"written": func() float64 { return float64(stats().Written) },
			"dropped": func() float64 { return float64(stats().Dropped) },
			"failed":  func() float64 { return float64(stats().Failed) },
		}))
}

// WriteBacks exports the counters of the online store's write-backs that
// never reached it, read from stats at each scrape.
func (m *Metrics) WriteBacks(stats func() (dropped, failed int64)) {
	m.reg.MustRegister(newFuncCounters("online_store_writebacks_lost_total", "Write-backs to the online store that never reached it, by reason: dropped (queue full, or the server stopping) or failed.", "reason",
		map[string]func() float64{
			"dropped": func() float64 { d, _ := stats(); return float64(d) },
			"failed":  func() float64 { _, f := stats(); return float64(f) },
		}))
}

// funcCounters is a counter with one label whose values are read from
// functions at each scrape.
type funcCounters struct {
	desc   *prometheus.Desc
	values map[string]func() float64
}

func newFuncCounters(name, help, label string, values map[string]func() float64) *funcCounters {
	return &funcCounters{desc: prometheus.NewDesc("fletch_"+name, help, []string{label}, nil), values: values}
}

func (c *funcCounters) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCounters) Collect(ch chan<- prometheus.Metric) {
	for v, f := range c.values {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, f(), v)
	}
}

// Guards exports the bulkheads and circuit breakers of the sources and the
// online store (stores/guard): those guards answers at each scrape, so
// that the series follow the sources serving now when a reload reopens
// them.
func (m *Metrics) Guards(guards func() []*guard.Guard) {
	m.reg.MustRegister(guardCollector(guards))
}

type guardCollector func() []*guard.Guard

var (
	guardRunning = prometheus.NewDesc("fletch_guard_running", "Calls running inside a bulkhead, by source or store.", []string{"name"}, nil)
	guardWaiting = prometheus.NewDesc("fletch_guard_waiting", "Calls waiting for a turn of a bulkhead.", []string{"name"}, nil)
	guardRefused = prometheus.NewDesc("fletch_guard_refused_total", "Calls refused at once: a bulkhead and its queue full, or a circuit breaker open.", []string{"name"}, nil)
	breakerOpen  = prometheus.NewDesc("fletch_breaker_open", "1 while a circuit breaker is open or half-open.", []string{"name"}, nil)
)

func (c guardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- guardRunning
	ch <- guardWaiting
	ch <- guardRefused
	ch <- breakerOpen
}

func (c guardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c() {
		s := g.Stats()
		open := 0.0
		if s.Open {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(guardRunning, prometheus.GaugeValue, float64(s.Running), s.Name)
		ch <- prometheus.MustNewConstMetric(guardWaiting, prometheus.GaugeValue, float64(s.Waiting), s.Name)
		ch <- prometheus.MustNewConstMetric(guardRefused, prometheus.CounterValue, float64(s.Refused), s.Name)
		ch <- prometheus.MustNewConstMetric(breakerOpen, prometheus.GaugeValue, open, s.Name)
	}
}

// Violation is how many computed values of one feature fell outside one
// of its validations (feature(min=, max=, ...)) since the server started.
type Violation struct {
	Feature string // table.feature
	Bounds  string // as written: "min=1, max=5"
	Strict  bool
	Count   int64
}

// Violations exports fletch_validation_violations_total{feature, bounds,
// strict}, read from values at each scrape.
func (m *Metrics) Violations(values func() []Violation) {
	m.reg.MustRegister(violations{values: values, desc: prometheus.NewDesc("fletch_validation_violations_total",
		"Computed feature values outside a validation of their feature, by feature, bounds and strictness: served and counted when strict is false, the row's error (neither served nor stored) when true.",
		[]string{"feature", "bounds", "strict"}, nil)})
}

type violations struct {
	desc   *prometheus.Desc
	values func() []Violation
}

func (v violations) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v violations) Collect(ch chan<- prometheus.Metric) {
	// A series is collected once: a feature written with the same bounds
	// twice sums them.
	sums := map[Violation]int64{}
	for _, x := range v.values() {
		n := x.Count
		x.Count = 0
		sums[x] += n
	}
	for x, n := range sums {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.CounterValue, float64(n), x.Feature, x.Bounds, strconv.FormatBool(x.Strict))
	}
}
