package console

import (
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fletch-engine/fletch/observe"
)

// TestLivePoint feeds the server's own metrics and checks each plotted
// value against what the observations were: the rate is the queries of
// the interval over its length, the percentiles are histogram_quantile's
// linear estimate within the bucket (Prometheus' documented formula), the
// hit ratio is hits over values read.
func TestLivePoint(t *testing.T) {
	m := observe.NewMetrics()
	t0 := time.Unix(1_800_000_000, 0)
	// Before the interval: what a rate must not count.
	for range 50 {
		m.QueryDone("sql", codes.OK, 40*time.Millisecond)
	}
	m.OnlineRead("user", 100, 0, time.Millisecond, nil)
	prev, err := read(m.Registry(), t0)
	if err != nil {
		t.Fatal(err)
	}
	// The interval, 2 s: 90 queries of 3 ms and 10 of 30 ms (buckets
	// .0025–.005 and .025–.05), 4 refused; 30 hits and 10 misses of
	// user, 5 misses of item; 3 source queries of 7 ms.
	for range 90 {
		m.QueryDone("native", codes.OK, 3*time.Millisecond)
	}
	for range 10 {
		m.QueryDone("sql", codes.OK, 30*time.Millisecond)
	}
	for range 4 {
		m.QueryDone("sql", codes.PermissionDenied, time.Millisecond)
	}
	m.OnlineRead("user", 30, 10, time.Millisecond, nil)
	m.OnlineRead("item", 0, 5, time.Millisecond, nil)
	for range 3 {
		m.Fetched("users", "marketplace", 7*time.Millisecond, nil)
	}
	cur, err := read(m.Registry(), t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p := point(prev, cur)
	// 104 queries: ranks 52 (p50) and 93.6 (p90) fall in the 2.5–5 ms
	// bucket after the 4 of 1 ms (0.5–1 ms bucket), rank 102.96 (p99) in
	// 25–50 ms after 94.
	const in1 = 4.0
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"rate", p.Rate, 104.0 / 2},
		{"errors PermissionDenied", p.Errors["PermissionDenied"], 4.0 / 2},
		{"p50", p.P50MS, 2.5 + 2.5*(52-in1)/90},
		{"p90", p.P90MS, 2.5 + 2.5*(93.6-in1)/90},
		{"p99", p.P99MS, 25 + 25*(102.96-94)/10},
		{"hit ratio user", p.HitRatio["user"], 30.0 / 40},
		{"hit ratio item", p.HitRatio["item"], 0},
		{"source p50", p.Sources["marketplace"][0], 5 + 5*(1.5/3)},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, ok := p.Errors["OK"]; ok || len(p.Errors) != 1 {
		t.Errorf("errors %v, want PermissionDenied only", p.Errors)
	}
	// An interval without queries has no latency (0, drawn as a gap).
	if q := point(cur, cur); q.Rate != 0 || q.P99MS != 0 || len(q.HitRatio) != 0 {
		t.Errorf("an empty interval: %+v", q)
	}
}

// TestSamplerIdle: the sampler reads the registry only while polled.
func TestSamplerIdle(t *testing.T) {
	m := observe.NewMetrics()
	s := &sampler{g: m.Registry(), every: 10 * time.Millisecond}
	s.poll(time.Now())
	deadline := time.Now().Add(5 * time.Second)
	for len(s.poll(time.Now())) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no points after 5 s of polling")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Pretend the last poll was long ago: the loop stops and forgets.
	s.mu.Lock()
	s.last = time.Now().Add(-2 * liveIdle)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sampler still runs with nobody polling")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(s.points) != 0 {
		t.Errorf("%d points kept after stopping", len(s.points))
	}
}
