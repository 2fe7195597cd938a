package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request is one request of a run, given the ids it asks for; it returns
// the number of rows of the answer. A worker calls its own request only, so
// implementations keep per-worker state without locks.
type request func(ctx context.Context, ids []string) (rows int64, err error)

// plan is one open-loop run: slot i is due at start + i/rate whatever the
// workers are doing, and its latency counts from that time. Workers claim
// slots themselves and wait for them on their own timer: handing a due slot
// from a ticking goroutine to a worker would add a cross-thread wake-up
// (tens of µs on this VM) to every request.
type plan struct {
	rate     float64
	duration time.Duration
	// drain is how long after the schedule ends a queued slot may still
	// start; a slot that would start later is dropped, not run.
	drain time.Duration
	// slack bounds how long a worker spins before a slot after its timer
	// fired early on purpose: min(slack, interval/10).
	slack time.Duration
	// observe, when set, is told of every request a worker ran (offsets
	// from the run's start), in that worker's goroutine: the fault mode
	// records each request's time and outcome through it.
	observe func(worker int, due, began, end time.Duration, err error)
}

func (p plan) slots() int64 { return int64(math.Round(p.rate * p.duration.Seconds())) }

// due is slot i's offset from the start of the run.
func (p plan) due(i int64) time.Duration { return time.Duration(float64(i) * 1e9 / p.rate) }

// sample is one request's timing: lag is due → start (the generator's
// lateness plus queueing behind busy workers), svc is start → end.
type sample struct {
	lag, svc time.Duration
}

// outcome is what one run measured.
type outcome struct {
	scheduled int64
	samples   []sample // successful requests
	errors    int64
	dropped   int64
	rows      int64
	elapsed   time.Duration // start to the last completion
	firstErr  error
}

// tally is one worker's share of an outcome; merged after the run so the
// hot path takes no lock.
type tally struct {
	samples               []sample
	errors, rows, dropped int64
	last, firstErrAt      time.Duration
	firstErr              error
}

// execute runs p with one worker per element of reqs; ids gives each worker
// the ids of its next request. ctx bounds every request: cancelled, the
// requests in flight fail and the rest are dropped.
func execute(ctx context.Context, p plan, reqs []request, ids func(worker int) []string) outcome {
	n := p.slots()
	lead := &leadEstimate{max: min(p.slack, time.Duration(1e9/p.rate/10))}
	var next atomic.Int64
	tallies := make([]tally, len(reqs))
	start := time.Now()
	stopBy := p.duration + p.drain
	var wg sync.WaitGroup
	for w := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			sl := newSleeper()
			defer sl.close()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				due := p.due(i)
				if time.Since(start) > stopBy || ctx.Err() != nil {
					t.dropped++
					continue
				}
				lead.wait(sl, start, due)
				began := time.Since(start)
				rows, err := reqs[w](ctx, ids(w))
				end := time.Since(start)
				t.last = max(t.last, end)
				if p.observe != nil {
					p.observe(w, due, began, end, err)
				}
				if err != nil {
					t.errors++
					if t.firstErr == nil {
						t.firstErr, t.firstErrAt = err, end
					}
					continue
				}
				t.rows += rows
				t.samples = append(t.samples, sample{lag: began - due, svc: end - began})
			}
		}()
	}
	wg.Wait()
	o := outcome{scheduled: n}
	var firstAt time.Duration
	for _, t := range tallies {
		o.samples = append(o.samples, t.samples...)
		o.errors += t.errors
		o.dropped += t.dropped
		o.rows += t.rows
		o.elapsed = max(o.elapsed, t.last)
		if t.firstErr != nil && (o.firstErr == nil || t.firstErrAt < firstAt) {
			o.firstErr, firstAt = t.firstErr, t.firstErrAt
		}
	}
	return o
}

// leadEstimate wakes workers early by about the timer's usual overshoot and
// spins the rest of the way, so a slot starts within a few µs of its time
// instead of a timer wake-up late. The estimate is shared by the workers (a
// racy load and store: a lost update only delays convergence).
type leadEstimate struct {
	max time.Duration
	ns  atomic.Int64
}

func (l *leadEstimate) wait(sl sleeper, start time.Time, due time.Duration) {
	lead := time.Duration(l.ns.Load())
	if d := due - lead - time.Since(start); d > 0 {
		sl.sleep(d)
		// An exponential average of the overshoot, each sample clipped so
		// that one descheduled wake-up cannot make every worker spin.
		over := min(time.Since(start)-(due-lead), l.max)
		l.ns.Store(int64(lead + (max(over, 0)-lead)/8))
	}
	for time.Since(start) < due {
	}
}

// percentile is the nearest-rank p-quantile (0 < p ≤ 1) of sorted values:
// the smallest value with at least p·n values at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// quantiles are the figures reported of a set of durations.
type quantiles struct {
	p50, p90, p99, p999, max, mean time.Duration
}

func summarize(d []time.Duration) quantiles {
	if len(d) == 0 {
		return quantiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	return quantiles{
		p50: percentile(s, 0.50), p90: percentile(s, 0.90), p99: percentile(s, 0.99),
		p999: percentile(s, 0.999), max: s[len(s)-1], mean: sum / time.Duration(len(s)),
	}
}
