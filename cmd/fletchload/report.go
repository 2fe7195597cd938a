package main

import (
	"fmt"
	"time"
)

// report is one measured run, the JSON line. Latencies are µs from the
// slot's scheduled time to the end of the request; sched lag from the
// scheduled time to the request's start; service from start to end.
type report struct {
	Mode       string  `json:"mode"`
	Label      string  `json:"label,omitempty"`
	Target     string  `json:"target,omitempty"`
	Query      string  `json:"query,omitempty"`
	Prepared   bool    `json:"prepared,omitempty"`
	Keys       int     `json:"keys"`
	Rate       float64 `json:"rate"`
	DurationS  float64 `json:"duration_s"`
	Workers    int     `json:"workers"`
	Scheduled  int64   `json:"scheduled"`
	Requests   int     `json:"requests"`
	Errors     int64   `json:"errors"`
	Dropped    int64   `json:"dropped"`
	Achieved   float64 `json:"achieved_rate"`
	RowsPerReq float64 `json:"rows_per_req"`
	P50        float64 `json:"p50_us"`
	P90        float64 `json:"p90_us"`
	P99        float64 `json:"p99_us"`
	P999       float64 `json:"p999_us"`
	Max        float64 `json:"max_us"`
	Mean       float64 `json:"mean_us"`
	LagP50     float64 `json:"sched_lag_p50_us"`
	LagP99     float64 `json:"sched_lag_p99_us"`
	LagMax     float64 `json:"sched_lag_max_us"`
	SvcP50     float64 `json:"service_p50_us"`
	SvcP99     float64 `json:"service_p99_us"`
	CPUSelf    float64 `json:"cpu_self_cores"`
	CPUWatched float64 `json:"cpu_watched_cores,omitempty"`
	CPUOther   float64 `json:"cpu_other_cores"`
	Tries      int     `json:"tries"` // runs made; the least disturbed is reported
	FirstError string  `json:"first_error,omitempty"`
	Time       string  `json:"time"`
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func (c *config) report(o outcome, before, after cpuSample) report {
	r := report{
		Mode: c.mode, Label: c.label, Keys: c.keys, Rate: c.rate, DurationS: c.duration.Seconds(),
		Workers: c.workers, Scheduled: o.scheduled, Requests: len(o.samples), Errors: o.errors,
		Dropped: o.dropped, Time: time.Now().UTC().Format(time.RFC3339),
	}
	switch c.mode {
	case "native":
		r.Target, r.Query = c.addr, fmt.Sprintf("class=%s key=%s out=%v", c.class, c.key, c.outs)
	case "sql":
		r.Target, r.Query, r.Prepared = c.addr, c.sql, c.prepared
	}
	if o.elapsed > 0 {
		r.Achieved = float64(int64(len(o.samples))+o.errors) / o.elapsed.Seconds()
		r.CPUSelf, r.CPUWatched, r.CPUOther = before.cores(after, o.elapsed)
	}
	if len(o.samples) > 0 {
		r.RowsPerReq = float64(o.rows) / float64(len(o.samples))
	}
	lat, lag, svc := make([]time.Duration, len(o.samples)), make([]time.Duration, len(o.samples)), make([]time.Duration, len(o.samples))
	for i, s := range o.samples {
		lat[i], lag[i], svc[i] = s.lag+s.svc, s.lag, s.svc
	}
	l, g, v := summarize(lat), summarize(lag), summarize(svc)
	r.P50, r.P90, r.P99, r.P999, r.Max, r.Mean = us(l.p50), us(l.p90), us(l.p99), us(l.p999), us(l.max), us(l.mean)
	r.LagP50, r.LagP99, r.LagMax = us(g.p50), us(g.p99), us(g.max)
	r.SvcP50, r.SvcP99 = us(v.p50), us(v.p99)
	if o.firstErr != nil {
		r.FirstError = o.firstErr.Error()
	}
	return r
}

func (r report) human() string {
	name := r.Mode
	if r.Prepared {
		name += " prepared"
	}
	if r.Label != "" {
		name += " [" + r.Label + "]"
	}
	s := fmt.Sprintf("%s K=%d rate=%g/s %gs: requests=%d errors=%d dropped=%d achieved=%.1f/s rows/req=%.2f "+
		"p50=%.0fus p90=%.0fus p99=%.0fus p999=%.0fus max=%.0fus (sched lag p50=%.0fus p99=%.0fus; service p50=%.0fus p99=%.0fus) "+
		"cpu cores: self %.2f, watched %.2f, other %.2f; tries %d",
		name, r.Keys, r.Rate, r.DurationS, r.Requests, r.Errors, r.Dropped, r.Achieved, r.RowsPerReq,
		r.P50, r.P90, r.P99, r.P999, r.Max, r.LagP50, r.LagP99, r.SvcP50, r.SvcP99, r.CPUSelf, r.CPUWatched, r.CPUOther, r.Tries)
	if r.FirstError != "" {
		s += "\n  first error: " + r.FirstError
	}
	return s
}
