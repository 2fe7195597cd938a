package console

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The live page's series come from the server's own Prometheus registry:
// a sampler reads it every liveEvery while a page polls (and stops
// liveIdle after the last poll), and turns the counters and histograms
// into rates and percentiles over each interval, as Prometheus' rate()
// and histogram_quantile() would.

const (
	liveEvery  = 2 * time.Second
	liveIdle   = 30 * time.Second
	livePoints = 150 // five minutes
)

// LivePoint is one interval of the live plots.
type LivePoint struct {
	T     int64   `json:"t"`    // Unix milliseconds, the interval's end
	DT    float64 `json:"dt_s"` // the interval's length: Rate × DT queries
	Rate  float64 `json:"rate"`
	P50MS float64 `json:"p50_ms"`
	P90MS float64 `json:"p90_ms"`
	P99MS float64 `json:"p99_ms"`
	// Errors are queries per second by gRPC code, OK left out.
	Errors map[string]float64 `json:"errors"`
	// HitRatio is the share of feature values the online store served,
	// by class (only classes read in the interval).
	HitRatio map[string]float64 `json:"hit_ratio"`
	// Sources are the p50 and p99 of source queries by source, in ms.
	Sources map[string][2]float64 `json:"sources"`
}

// snapshot is the registry's counters and histograms at one instant.
type snapshot struct {
	at      time.Time
	queries map[string]float64 // by code, every path summed
	latency hist               // every path summed
	values  map[[2]string]float64
	sources map[string]hist
}

// hist is a cumulative histogram: counts at each upper bound.
type hist struct {
	bounds []float64
	counts []float64
}

func (h hist) add(m *dto.Histogram) hist {
	bs := m.GetBucket()
	if h.bounds == nil {
		h.bounds = make([]float64, len(bs))
		h.counts = make([]float64, len(bs))
		for i, b := range bs {
			h.bounds[i] = b.GetUpperBound()
		}
	}
	for i, b := range bs {
		if i < len(h.counts) {
			h.counts[i] += float64(b.GetCumulativeCount())
		}
	}
	return h
}

// minus is the histogram of what h saw since prev.
func (h hist) minus(prev hist) hist {
	out := hist{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(prev.counts) {
			out.counts[i] -= prev.counts[i]
		}
	}
	return out
}

// quantile is histogram_quantile's estimate: linear within the bucket the
// q-th observation falls in; NaN without observations. Beyond the last
// finite bound it answers that bound.
func (h hist) quantile(q float64) float64 {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] <= 0 {
		return math.NaN()
	}
	total := h.counts[len(h.counts)-1]
	rank := q * total
	i := sort.Search(len(h.counts), func(i int) bool { return h.counts[i] >= rank })
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	in := h.counts[i] - below
	if in <= 0 {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-below)/in
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// read takes a snapshot of g.
func read(g prometheus.Gatherer, at time.Time) (snapshot, error) {
	s := snapshot{at: at, queries: map[string]float64{}, values: map[[2]string]float64{}, sources: map[string]hist{}}
	families, err := g.Gather()
	if err != nil {
		return s, err
	}
	for _, f := range families {
		switch f.GetName() {
		case "fletch_queries_total":
			for _, m := range f.GetMetric() {
				s.queries[label(m, "code")] += m.GetCounter().GetValue()
			}
		case "fletch_query_duration_seconds":
			for _, m := range f.GetMetric() {
				s.latency = s.latency.add(m.GetHistogram())
			}
		case "fletch_online_store_values_total":
			for _, m := range f.GetMetric() {
				s.values[[2]string{label(m, "class"), label(m, "result")}] += m.GetCounter().GetValue()
			}
		case "fletch_source_duration_seconds":
			for _, m := range f.GetMetric() {
				src := label(m, "source")
				s.sources[src] = s.sources[src].add(m.GetHistogram())
			}
		}
	}
	return s, nil
}

// point is what happened between prev and cur.
func point(prev, cur snapshot) LivePoint {
	dt := cur.at.Sub(prev.at).Seconds()
	p := LivePoint{T: cur.at.UnixMilli(), DT: dt, Errors: map[string]float64{}, HitRatio: map[string]float64{}, Sources: map[string][2]float64{}}
	if dt <= 0 {
		return p
	}
	for code, n := range cur.queries {
		d := n - prev.queries[code]
		p.Rate += d / dt
		if code != "OK" && d > 0 {
			p.Errors[code] = d / dt
		}
	}
	lat := cur.latency.minus(prev.latency)
	p.P50MS, p.P90MS, p.P99MS = msOr0(lat.quantile(.5)), msOr0(lat.quantile(.9)), msOr0(lat.quantile(.99))
	for k, n := range cur.values {
		if k[1] != "hit" {
			continue
		}
		hits := n - prev.values[k]
		misses := cur.values[[2]string{k[0], "miss"}] - prev.values[[2]string{k[0], "miss"}]
		if hits+misses > 0 {
			p.HitRatio[k[0]] = hits / (hits + misses)
		}
	}
	for k, n := range cur.values {
		if _, seen := p.HitRatio[k[0]]; !seen && k[1] == "miss" && n-prev.values[k] > 0 {
			p.HitRatio[k[0]] = 0
		}
	}
	for src, h := range cur.sources {
		d := h.minus(prev.sources[src])
		if q50 := d.quantile(.5); !math.IsNaN(q50) {
			p.Sources[src] = [2]float64{1000 * q50, 1000 * d.quantile(.99)}
		}
	}
	return p
}

// msOr0 is seconds in ms, 0 for NaN (no query in the interval: JSON has
// no NaN, and the page draws no latency where the rate is 0).
func msOr0(s float64) float64 {
	if math.IsNaN(s) {
		return 0
	}
	return 1000 * s
}

// sampler keeps the live series while someone looks.
type sampler struct {
	g     prometheus.Gatherer
	every time.Duration

	mu      sync.Mutex
	running bool
	last    time.Time // the last poll
	prev    *snapshot
	points  []LivePoint
}

// poll returns the series so far and keeps the sampler running for
// liveIdle more.
func (s *sampler) poll(now time.Time) []LivePoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = now
	if !s.running {
		s.running = true
		go s.loop()
	}
	return append([]LivePoint(nil), s.points...)
}

func (s *sampler) loop() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample(time.Now())
	for now := range t.C {
		s.mu.Lock()
		idle := now.Sub(s.last) > liveIdle
		if idle {
			// Nobody looks: stop, and start afresh when someone does (a
			// gap in the series is not a rate).
			s.running, s.prev, s.points = false, nil, nil
		}
		s.mu.Unlock()
		if idle {
			return
		}
		s.sample(now)
	}
}

func (s *sampler) sample(now time.Time) {
	cur, err := read(s.g, now)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prev != nil {
		s.points = append(s.points, point(*s.prev, cur))
		if len(s.points) > livePoints {
			s.points = s.points[len(s.points)-livePoints:]
		}
	}
	s.prev = &cur
}
