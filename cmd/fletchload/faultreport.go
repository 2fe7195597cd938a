package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// faultReport is the fault mode's JSON line. Latencies are µs from a
// request's scheduled time to its end (open loop: queueing included).
type faultReport struct {
	Mode      string    `json:"mode"`
	Rate      float64   `json:"rate"`
	DurationS float64   `json:"duration_s"`
	WarmupS   float64   `json:"warmup_s"`
	Workers   int       `json:"workers"`
	LoadAvg   [2]string `json:"loadavg_start_end"`
	Scheduled int64     `json:"scheduled"`
	Completed int       `json:"completed"`
	Dropped   int64     `json:"dropped"`
	Achieved  float64   `json:"achieved_rate"`
	// Outcomes counts every measured request: ok (answered and right),
	// expected (a bad request refused with its code), fault (an error of
	// the kind the fault in whose window it ran may cause), unexpected
	// (anything else, wrong answers included).
	Outcomes map[string]int `json:"outcomes"`
	// Errors by gRPC code, then by outcome.
	Errors map[string]map[string]int `json:"errors"`
	Wrong  int                       `json:"wrong_answers"`
	// Latency of the answered (ok) requests: all, outside every fault
	// window, inside one.
	Overall latencyJSON `json:"latency"`
	Outside latencyJSON `json:"latency_outside_faults"`
	Inside  latencyJSON `json:"latency_inside_faults"`
	// OutsideByMinute is the p99 outside the fault windows of each minute
	// of the run (by due time), µs: is it stable?
	OutsideByMinute []float64           `json:"outside_p99_by_minute_us"`
	Kinds           map[string]kindJSON `json:"kinds"`
	// ServerQueries is the increase of the server's fletch_queries_total
	// by code over the measured run (the mass cancellation's calls
	// included; bad requests are refused while planning, before a query).
	ServerQueries map[string]int `json:"server_queries_total"`
	Faults        []faultJSON    `json:"faults"`
	Memory        memoryJSON     `json:"memory"`
	Gor           goroutinesJSON `json:"goroutines"`
	// CPU is the mean cores used over the measured run: this generator,
	// the server, the rest of the machine.
	CPU       [3]float64     `json:"cpu_self_server_other"`
	ServerLog serverLogJSON  `json:"server_log"`
	Series    []seriesJSON   `json:"series"`
	First     []string       `json:"first_unexpected,omitempty"`
	Failures  []string       `json:"failures,omitempty"`
	Time      string         `json:"time"`
	Mix       map[string]int `json:"mix_pct"`
}

// serverLogJSON is what the server logged: lines by level, and lines
// outside its format.
type serverLogJSON struct {
	Levels     map[string]int `json:"levels"`
	Other      int            `json:"other_lines"`
	FirstOther []string       `json:"first_other,omitempty"`
}

type latencyJSON struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

type kindJSON struct {
	Requests int            `json:"requests"`
	Codes    map[string]int `json:"codes"`
	P50      float64        `json:"p50_us"`
	P99      float64        `json:"p99_us"`
}

type faultJSON struct {
	Name      string  `json:"name"`
	AtS       float64 `json:"at_s"`
	RepairedS float64 `json:"repaired_s"`
	WindowEnd float64 `json:"window_end_s"`
	// Errors in the window by code (those of the fault's kinds).
	Errors map[string]int `json:"errors"`
	// RecoveryMs is from the repair to the end of the fault's last error
	// (0: none after the repair); FirstOKMs to the end of the first answered
	// request scheduled after the repair that needs what failed.
	RecoveryMs float64 `json:"recovery_ms"`
	FirstOKMs  float64 `json:"first_ok_ms"`
	P50        float64 `json:"p50_us"`
	P99        float64 `json:"p99_us"`
	Requests   int     `json:"requests"`
	// OthersP99 is the window's p99 of the kinds that do not need what
	// the fault broke (users during the items' lock): isolation.
	OthersP99 float64        `json:"others_p99_us"`
	Server    map[string]int `json:"server_counted,omitempty"`
	Cancelled map[string]int `json:"cancel_calls,omitempty"`
	// NotReady is whether /readyz answered other than 200 between the
	// fault and its repair; ReadyMs is from the repair to its first 200
	// (-1: none by the end of the window).
	NotReady bool    `json:"readyz_not_ready"`
	ReadyMs  float64 `json:"readyz_ready_ms"`
	Error    string  `json:"error,omitempty"`
}

type memoryJSON struct {
	StartMB    float64 `json:"rss_start_mb"`
	EndMB      float64 `json:"rss_end_mb"`
	MaxMB      float64 `json:"rss_max_mb"`
	Slope      float64 `json:"slope_mb_per_min"`
	SlopeLater float64 `json:"slope_second_half_mb_per_min"`
}

type goroutinesJSON struct {
	Baseline float64 `json:"baseline"`
	Max      float64 `json:"max"`
	End      float64 `json:"end"`
	SettledS float64 `json:"end_settled_s"`
}

type seriesJSON struct {
	T          float64 `json:"t_s"`
	RSSMB      float64 `json:"rss_mb"`
	Goroutines float64 `json:"goroutines"`
	InFlight   float64 `json:"in_flight"`
	HeapMB     float64 `json:"heap_inuse_mb"`
	Plans      float64 `json:"plan_cache_entries"`
	// cores since the previous sample: this generator, the server, the
	// rest of the machine
	CPUSelf   float64 `json:"cpu_self"`
	CPUServer float64 `json:"cpu_server"`
	CPUOther  float64 `json:"cpu_other"`
}

// window is one fault's span: a request overlapping it is inside.
type window struct {
	from, to time.Duration
	ev       event
}

// needs reports whether requests of kind k depend on what fault name broke:
// the ones whose first success after the repair is its recovery.
func needs(name string, k kind) bool {
	switch name {
	case "redis":
		return k == kindGenre || k == kindItem
	case "lock": // the genre is computed from items when not cached yet
		return k == kindItem || k == kindItemsBulk || k == kindGenre
	case "postgres":
		return k != kindGenre && !k.bad() && k != kindCancel
	}
	return !k.bad() && k != kindCancel
}

func (d *deployment) report(o outcome, recs []record, evs []event, samples []metricSample, start time.Time,
	baseline, end float64, settled time.Duration) *faultReport {
	c := d.c
	r := &faultReport{
		Mode: "fault", Rate: c.rate, DurationS: c.duration.Seconds(), WarmupS: c.warmup.Seconds(), Workers: c.workers,
		Scheduled: o.scheduled, Completed: len(recs), Dropped: o.dropped,
		Outcomes: map[string]int{}, Errors: map[string]map[string]int{}, Kinds: map[string]kindJSON{},
		Mix: map[string]int{}, Time: time.Now().UTC().Format(time.RFC3339),
	}
	for _, m := range mix {
		r.Mix[m.k.String()] = m.pct
	}
	if o.elapsed > 0 {
		r.Achieved = float64(len(recs)) / o.elapsed.Seconds()
	}
	var windows []window
	for _, e := range evs {
		windows = append(windows, window{from: e.at, to: e.repaired + c.settle, ev: e})
	}
	var all, outside, inside []time.Duration
	var byMinute [][]time.Duration
	perKind := make([][]time.Duration, nKinds)
	kindCodes := make([]map[string]int, nKinds)
	perWindow := make([][]time.Duration, len(windows))
	others := make([][]time.Duration, len(windows))
	winErrs := make([]map[string]int, len(windows))
	lastErr := make([]time.Duration, len(windows))
	firstOK := make([]time.Duration, len(windows))
	for i := range windows {
		winErrs[i], firstOK[i] = map[string]int{}, -1
	}
	for _, rec := range recs {
		lat := rec.end - rec.due
		if kindCodes[rec.kind] == nil {
			kindCodes[rec.kind] = map[string]int{}
		}
		kindCodes[rec.kind][rec.code.String()]++
		in := -1
		for i, w := range windows {
			if rec.due <= w.to && rec.end >= w.from {
				in = i
				break
			}
		}
		var outcome string
		switch {
		case rec.wrong:
			outcome = "unexpected"
			r.Wrong++
		case rec.kind.bad():
			outcome = "unexpected"
			if slices.Contains(expectedCodes[rec.kind], rec.code) {
				outcome = "expected"
			}
		case rec.code == codes.OK:
			outcome = "ok"
			all = append(all, lat)
			perKind[rec.kind] = append(perKind[rec.kind], lat)
			if in >= 0 {
				inside = append(inside, lat)
				perWindow[in] = append(perWindow[in], lat)
				if !needs(windows[in].ev.name, rec.kind) {
					others[in] = append(others[in], lat)
				}
			} else {
				outside = append(outside, lat)
				m := int(rec.due / time.Minute)
				for len(byMinute) <= m {
					byMinute = append(byMinute, nil)
				}
				byMinute[m] = append(byMinute[m], lat)
			}
			for i, w := range windows {
				if rec.due >= w.ev.repaired && needs(w.ev.name, rec.kind) && (firstOK[i] < 0 || rec.end < firstOK[i]) {
					firstOK[i] = rec.end
				}
			}
		case in >= 0 && allows(windows[in].ev.name, rec.code, rec.msg):
			outcome = "fault"
			winErrs[in][rec.code.String()]++
			lastErr[in] = max(lastErr[in], rec.end)
		default:
			outcome = "unexpected"
		}
		r.Outcomes[outcome]++
		if rec.code != codes.OK || rec.wrong {
			name := rec.code.String()
			if rec.wrong {
				name = "wrong answer"
			}
			if r.Errors[name] == nil {
				r.Errors[name] = map[string]int{}
			}
			r.Errors[name][outcome]++
		}
		if outcome == "unexpected" && len(r.First) < 5 {
			r.First = append(r.First, fmt.Sprintf("%s at %.3fs (%s): %s", rec.kind, rec.due.Seconds(), rec.code, rec.msg))
		}
	}
	r.Overall, r.Outside, r.Inside = latency(all), latency(outside), latency(inside)
	for _, m := range byMinute {
		r.OutsideByMinute = append(r.OutsideByMinute, us(summarize(m).p99))
	}
	for k := range nKinds {
		if kindCodes[k] == nil {
			continue
		}
		q := summarize(perKind[k])
		n := 0
		for _, v := range kindCodes[k] {
			n += v
		}
		r.Kinds[k.String()] = kindJSON{Requests: n, Codes: kindCodes[k], P50: us(q.p50), P99: us(q.p99)}
	}
	for i, w := range windows {
		q := summarize(perWindow[i])
		f := faultJSON{Name: w.ev.name, AtS: w.ev.at.Seconds(), RepairedS: w.ev.repaired.Seconds(), WindowEnd: w.to.Seconds(),
			Errors: winErrs[i], P50: us(q.p50), P99: us(q.p99), Requests: len(perWindow[i]), Server: w.ev.server, OthersP99: us(summarize(others[i]).p99)}
		if lastErr[i] > w.ev.repaired {
			f.RecoveryMs = float64((lastErr[i] - w.ev.repaired).Microseconds()) / 1e3
		}
		if firstOK[i] >= 0 {
			f.FirstOKMs = float64((firstOK[i] - w.ev.repaired).Microseconds()) / 1e3
		}
		f.ReadyMs = -1
		for _, rs := range w.ev.ready {
			if !rs.ok && rs.at >= w.ev.at && rs.at <= w.ev.repaired {
				f.NotReady = true
			}
			if rs.ok && rs.at >= w.ev.repaired && f.ReadyMs < 0 {
				f.ReadyMs = float64((rs.at - w.ev.repaired).Microseconds()) / 1e3
			}
		}
		if f.ReadyMs < 0 && w.ev.ready != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("/readyz did not answer 200 within %s after the %s fault was repaired", c.settle, w.ev.name))
		}
		if w.ev.err != nil {
			f.Error = w.ev.err.Error()
			r.Failures = append(r.Failures, fmt.Sprintf("fault %s could not be injected: %v", w.ev.name, w.ev.err))
		}
		if w.ev.cancelOutcome != nil {
			f.Cancelled = map[string]int{}
			for code, n := range w.ev.cancelOutcome {
				f.Cancelled[code.String()] += n
				if code == codes.Unknown {
					r.Failures = append(r.Failures, fmt.Sprintf("%d of the mass cancellation's calls ended otherwise than Canceled, OK (faster than the cancel) or refused by a full bulkhead; first: %s", n, w.ev.cancelFirst))
				}
			}
		}
		switch {
		case w.ev.repaired+c.settle > c.duration:
			r.Failures = append(r.Failures, fmt.Sprintf("the %s fault's window ended after the load (at %.1fs of %s): give a longer --duration, or shorter faults", w.ev.name, (w.ev.repaired+c.settle).Seconds(), c.duration))
		case firstOK[i] < 0 && w.ev.err == nil:
			r.Failures = append(r.Failures, fmt.Sprintf("no request that needs what the %s fault broke succeeded after the repair", w.ev.name))
		}
		r.Faults = append(r.Faults, f)
	}

	// Memory and goroutines: the measured run's samples (t ≥ 0).
	var ts, rss []float64
	r.Gor = goroutinesJSON{Baseline: baseline, End: end, SettledS: settled.Seconds()}
	for _, s := range samples {
		t := s.at.Sub(start).Seconds()
		r.Series = append(r.Series, seriesJSON{T: round1(t), RSSMB: round1(s.rss / 1e6), Goroutines: s.goroutines, InFlight: s.ifl,
			HeapMB: round1(s.heap / 1e6), Plans: s.planEntries,
			CPUSelf: round3(s.cpuSelf), CPUServer: round3(s.cpuServer), CPUOther: round3(s.cpuOther)})
		if t < 0 || t > c.duration.Seconds() {
			continue
		}
		ts, rss = append(ts, t/60), append(rss, s.rss/1e6)
		r.CPU[0], r.CPU[1], r.CPU[2] = r.CPU[0]+s.cpuSelf, r.CPU[1]+s.cpuServer, r.CPU[2]+s.cpuOther
		r.Gor.Max = max(r.Gor.Max, s.goroutines)
		r.Memory.MaxMB = max(r.Memory.MaxMB, s.rss/1e6)
	}
	if len(rss) > 0 {
		for i := range r.CPU {
			r.CPU[i] = round3(r.CPU[i] / float64(len(rss)))
		}
		r.Memory.StartMB, r.Memory.EndMB = round1(rss[0]), round1(rss[len(rss)-1])
		r.Memory.MaxMB = round1(r.Memory.MaxMB)
		r.Memory.Slope = round3(slope(ts, rss))
		h := len(ts) / 2
		r.Memory.SlopeLater = round3(slope(ts[h:], rss[h:]))
	}

	if n := r.Outcomes["unexpected"]; n > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d unexpected errors or wrong answers (first: %s)", n, strings.Join(r.First, "; ")))
	}
	for k := kindBadSyntax; k <= kindBadScope; k++ {
		if r.Kinds[k.String()].Requests == 0 && o.scheduled >= 200 {
			r.Failures = append(r.Failures, fmt.Sprintf("no %s request ran", k))
		}
	}
	if float64(o.dropped) > 0.01*float64(o.scheduled) {
		r.Failures = append(r.Failures, fmt.Sprintf("%d of %d requests dropped: the server (or this machine) did not keep up with %g req/s", o.dropped, o.scheduled, c.rate))
	}
	if end > baseline+float64(c.goroutineSlack) {
		r.Failures = append(r.Failures, fmt.Sprintf("goroutines: %v at the end (idle, %.0fs after the load) against a baseline of %v (slack %d)", end, settled.Seconds(), baseline, c.goroutineSlack))
	}
	if c.maxSlope > 0 && r.Memory.Slope > c.maxSlope {
		r.Failures = append(r.Failures, fmt.Sprintf("resident memory grew %.2f MB/min (bound %g)", r.Memory.Slope, c.maxSlope))
	}
	if c.maxGrowth > 0 && r.Memory.EndMB-r.Memory.StartMB > c.maxGrowth {
		r.Failures = append(r.Failures, fmt.Sprintf("resident memory grew %.1f MB over the run (bound %g)", r.Memory.EndMB-r.Memory.StartMB, c.maxGrowth))
	}
	return r
}

func latency(d []time.Duration) latencyJSON {
	q := summarize(d)
	return latencyJSON{N: len(d), P50: us(q.p50), P99: us(q.p99), P999: us(q.p999), Max: us(q.max)}
}

// slope is the least-squares slope of y over x.
func slope(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx, sy, sxx, sxy = sx+x[i], sy+y[i], sxx+x[i]*x[i], sxy+x[i]*y[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 {
	if v < 0 {
		return -round3(-v)
	}
	return float64(int64(v*1000+0.5)) / 1000
}

func (r *faultReport) human() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fault: %g req/s for %gs (warm-up %gs), %d workers; load average %s → %s\n", r.Rate, r.DurationS, r.WarmupS, r.Workers, r.LoadAvg[0], r.LoadAvg[1])
	fmt.Fprintf(&b, "  requests: scheduled %d, completed %d, dropped %d, achieved %.1f/s; outcomes %v; wrong answers %d\n",
		r.Scheduled, r.Completed, r.Dropped, r.Achieved, r.Outcomes, r.Wrong)
	lat := func(name string, l latencyJSON) {
		fmt.Fprintf(&b, "  latency %-16s n=%-7d p50=%.0fus p99=%.0fus p999=%.0fus max=%.0fus\n", name, l.N, l.P50, l.P99, l.P999, l.Max)
	}
	lat("overall", r.Overall)
	lat("outside faults", r.Outside)
	lat("inside faults", r.Inside)
	fmt.Fprintf(&b, "  p99 outside faults, by minute (ms):")
	for _, v := range r.OutsideByMinute {
		fmt.Fprintf(&b, " %.1f", v/1e3)
	}
	b.WriteString("\n")
	codes := make([]string, 0, len(r.Errors))
	for c := range r.Errors {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(&b, "  errors %-18s %v\n", c, r.Errors[c])
	}
	kinds := make([]string, 0, len(r.Kinds))
	for k := range r.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		v := r.Kinds[k]
		fmt.Fprintf(&b, "  kind %-12s n=%-7d p50=%.0fus p99=%.0fus codes %v\n", k, v.Requests, v.P50, v.P99, v.Codes)
	}
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "  fault %-8s %.1fs→%.1fs (window to %.1fs): errors %v, recovery %.0f ms, first success after repair %.0f ms, inside p50=%.0fus p99=%.0fus (kinds not needing it: p99=%.0fus)",
			f.Name, f.AtS, f.RepairedS, f.WindowEnd, f.Errors, f.RecoveryMs, f.FirstOKMs, f.P50, f.P99, f.OthersP99)
		if f.Cancelled != nil {
			fmt.Fprintf(&b, ", cancelled calls %v", f.Cancelled)
		}
		fmt.Fprintf(&b, ", /readyz not ready during it: %v, ready %.0f ms after the repair", f.NotReady, f.ReadyMs)
		if f.Server != nil {
			fmt.Fprintf(&b, "; the server counted %v", f.Server)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  the server's fletch_queries_total over the run, by code: %v\n", r.ServerQueries)
	fmt.Fprintf(&b, "  cores used (mean of the samples): this generator %.2f, the server %.2f, the rest of the machine %.2f\n", r.CPU[0], r.CPU[1], r.CPU[2])
	fmt.Fprintf(&b, "  the server's log: lines by level %v, %d lines outside its format\n", r.ServerLog.Levels, r.ServerLog.Other)
	fmt.Fprintf(&b, "  memory: RSS %.1f → %.1f MB (max %.1f), slope %.3f MB/min (second half %.3f)\n",
		r.Memory.StartMB, r.Memory.EndMB, r.Memory.MaxMB, r.Memory.Slope, r.Memory.SlopeLater)
	fmt.Fprintf(&b, "  goroutines: baseline %.0f, max %.0f, end %.0f (idle %.1fs after the load)\n", r.Gor.Baseline, r.Gor.Max, r.Gor.End, r.Gor.SettledS)
	if len(r.Failures) == 0 {
		b.WriteString("  PASS")
	} else {
		b.WriteString("  FAIL:\n    " + strings.Join(r.Failures, "\n    "))
	}
	return b.String()
}
