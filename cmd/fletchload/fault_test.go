package main

import (
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

func TestSlope(t *testing.T) {
	for _, tc := range []struct {
		name string
		x, y []float64
		want float64
	}{
		{"a line", []float64{0, 1, 2, 3}, []float64{5, 8, 11, 14}, 3},
		{"flat with noise", []float64{0, 1, 2, 3}, []float64{10, 11, 9, 10}, -0.2},
		{"one point", []float64{1}, []float64{1}, 0},
	} {
		if got := slope(tc.x, tc.y); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: slope %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReportClassifies checks the outcome of each sort of record against
// what docs/OPERATIONS.md ("Load and faults") says, on records made up by
// hand: errors are allowed only inside a fault's window and of its kinds.
func TestReportClassifies(t *testing.T) {
	s := func(v float64) time.Duration { return time.Duration(v * float64(time.Second)) }
	d := &deployment{c: &faultConfig{rate: 10, duration: s(30), settle: s(1), goroutineSlack: 10}}
	evs := []event{
		{name: "postgres", at: s(10), repaired: s(12)},
		{name: "redis", at: s(15), repaired: s(16)},
		{name: "cancel", at: s(20), repaired: s(20.1), cancelOutcome: map[codes.Code]int{codes.Canceled: 3}},
	}
	busy := "resolver users (source marketplace): source marketplace is busy: bulkhead full"
	recs := []record{
		{due: s(1), end: s(1.01), kind: kindUser},                                                    // ok, outside
		{due: s(12.5), end: s(12.51), kind: kindUser},                                                // ok after the repair: first success 510 ms
		{due: s(11), end: s(11.2), kind: kindUser, code: codes.Unavailable, msg: "unreachable"},      // fault
		{due: s(12.7), end: s(12.9), kind: kindOffline, code: codes.Unavailable, msg: "unreachable"}, // fault: 900 ms after the repair
		{due: s(5), end: s(5.1), kind: kindUser, code: codes.Unavailable, msg: "unreachable"},        // unexpected: no fault then
		{due: s(15.5), end: s(15.6), kind: kindGenre, code: codes.Unavailable, msg: "x"},             // unexpected: Redis down costs no error
		{due: s(16.5), end: s(16.6), kind: kindGenre},                                                // ok after Redis' repair
		{due: s(20), end: s(20.01), kind: kindUsersIn, code: codes.Unavailable, msg: busy},           // fault: the burst's full bulkhead
		{due: s(20), end: s(20.01), kind: kindUsersIn, code: codes.Unavailable, msg: "unreachable"},  // unexpected
		{due: s(20.5), end: s(20.6), kind: kindUser},                                                 // ok after the burst
		{due: s(2), end: s(2.01), kind: kindBadSyntax, code: codes.InvalidArgument},                  // expected
		{due: s(3), end: s(3.01), kind: kindBadScope, code: codes.PermissionDenied},                  // expected
		{due: s(4), end: s(4.01), kind: kindBadFeature},                                              // unexpected: answered
		{due: s(6), end: s(6.01), kind: kindItem, code: codes.Unknown, wrong: true, msg: "wrong"},    // unexpected
		{due: s(11), end: s(11.5), kind: kindBadSyntax, code: codes.Unavailable, msg: "unreachable"}, // unexpected, even in a window
	}
	r := d.report(outcome{scheduled: int64(len(recs)), elapsed: s(30)}, recs, evs, nil, time.Now(), 30, 31, 0)
	want := map[string]int{"ok": 4, "fault": 3, "expected": 2, "unexpected": 6}
	for k, v := range want {
		if r.Outcomes[k] != v {
			t.Errorf("outcome %s: %d, want %d (all: %v)", k, r.Outcomes[k], v, r.Outcomes)
		}
	}
	if r.Wrong != 1 || r.Errors["Unavailable"]["fault"] != 3 || r.Errors["Unavailable"]["unexpected"] != 4 {
		t.Errorf("wrong %d, errors %v", r.Wrong, r.Errors)
	}
	pg := r.Faults[0]
	if pg.Name != "postgres" || pg.RecoveryMs != 900 || pg.FirstOKMs != 510 || pg.Errors["Unavailable"] != 2 {
		t.Errorf("postgres window: %+v", pg)
	}
	if r.Faults[1].FirstOKMs != 600 || len(r.Faults[1].Errors) != 0 {
		t.Errorf("redis window: %+v", r.Faults[1])
	}
	if r.Inside.N != 3 || r.Outside.N != 1 {
		t.Errorf("inside %d, outside %d answered requests, want 3 and 1", r.Inside.N, r.Outside.N)
	}
	if len(r.Failures) != 1 {
		t.Errorf("failures %q, want only the unexpected errors", r.Failures)
	}
}
