package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestPercentile checks the nearest-rank quantile against its definition,
// computed by brute force: the smallest value v with count(x ≤ v) ≥ p·n.
func TestPercentile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 99, 100, 101, 1000, 2500} {
		vals := make([]time.Duration, n)
		for i := range vals {
			vals[i] = time.Duration(rng.IntN(50)) * time.Microsecond // ties on purpose
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		for _, p := range []float64{0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
			var want time.Duration
			for _, v := range sorted {
				atOrBelow := 0
				for _, x := range vals {
					if x <= v {
						atOrBelow++
					}
				}
				if float64(atOrBelow) >= p*float64(n) {
					want = v
					break
				}
			}
			if got := percentile(sorted, p); got != want {
				t.Errorf("n=%d p=%g: %v, want %v", n, p, got, want)
			}
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	q := summarize([]time.Duration{4, 1, 3, 2})
	if q.p50 != 2 || q.max != 4 || q.mean != 2 { // mean 2.5 truncated
		t.Errorf("summarize: %+v", q)
	}
}

// TestScheduleOnTime: with idle workers every slot runs, none before its
// time.
func TestScheduleOnTime(t *testing.T) {
	p := plan{rate: 1000, duration: 500 * time.Millisecond, drain: time.Second, slack: 200 * time.Microsecond}
	reqs := make([]request, 4)
	for i := range reqs {
		reqs[i] = func(context.Context, []string) (int64, error) { return 1, nil }
	}
	o := execute(context.Background(), p, reqs, func(int) []string { return []string{"1"} })
	if o.scheduled != 500 || len(o.samples) != 500 || o.errors != 0 || o.dropped != 0 || o.rows != 500 {
		t.Fatalf("scheduled %d, ran %d, errors %d, dropped %d, rows %d", o.scheduled, len(o.samples), o.errors, o.dropped, o.rows)
	}
	for _, s := range o.samples {
		if s.lag < 0 {
			t.Fatalf("a request started %v before its slot", -s.lag)
		}
	}
	// The last slot is due at 499 ms: the run cannot end before it. How
	// late slots start depends on the machine's load; the benchmarks, not
	// this test, measure it.
	if o.elapsed < 499*time.Millisecond {
		t.Errorf("elapsed %v: the run ended before its last slot was due", o.elapsed)
	}
}

// TestScheduleCountsQueueing: one worker slower than the rate. Each slot
// must start when the previous request ends (start_i = max(due_i,
// end_i-1)), and its lag include that wait; the reference is that queue
// replayed from the measured service times.
func TestScheduleCountsQueueing(t *testing.T) {
	const interval = 2 * time.Millisecond
	p := plan{rate: float64(time.Second / interval), duration: 40 * interval, drain: time.Second, slack: 200 * time.Microsecond}
	slow := func(context.Context, []string) (int64, error) {
		for t0 := time.Now(); time.Since(t0) < 3*time.Millisecond; {
		}
		return 1, nil
	}
	o := execute(context.Background(), p, []request{slow}, func(int) []string { return nil })
	if len(o.samples) != 40 {
		t.Fatalf("%d requests, want 40", len(o.samples))
	}
	var end time.Duration // the previous request's end, from the start
	for i, s := range o.samples {
		due := time.Duration(i) * interval
		wantLag := max(0, end-due)
		// Later than the queue says is the machine's doing (a loaded one
		// starts slots late); earlier would be a wait left uncounted.
		if s.lag < wantLag {
			t.Errorf("slot %d: lag %v, the queue gives at least %v", i, s.lag, wantLag)
		}
		end = due + s.lag + s.svc
	}
	// 40 × (3 − 2) ms behind by the end.
	if last := o.samples[39].lag; last < 35*time.Millisecond {
		t.Errorf("last lag %v: the queueing was not counted", last)
	}
}

// TestScheduleDrops: slots that cannot start within the drain are dropped,
// and every slot is accounted for.
func TestScheduleDrops(t *testing.T) {
	p := plan{rate: 1000, duration: 50 * time.Millisecond, drain: 0, slack: 200 * time.Microsecond}
	slow := func(context.Context, []string) (int64, error) {
		time.Sleep(10 * time.Millisecond)
		return 1, nil
	}
	o := execute(context.Background(), p, []request{slow}, func(int) []string { return nil })
	if o.dropped == 0 || int64(len(o.samples))+o.dropped != o.scheduled {
		t.Errorf("scheduled %d, ran %d, dropped %d", o.scheduled, len(o.samples), o.dropped)
	}
}
