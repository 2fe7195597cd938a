package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fletch-engine/fletch/operators/functions"
)

func TestParseRequestAndCommand(t *testing.T) {
	cases := []struct {
		ins, outs []string
		now       string
		cmd       string
		err       string
	}{
		{ins: []string{"user.id=50"}, outs: []string{"user.full_name"}, cmd: `{"query":{"class":"user","outputs":["full_name"],"meta":true}}`},
		{ins: []string{"user_item.user_id=50", "user_item.item_id=200"}, cmd: `{"query":{"class":"user_item","meta":true}}`},
		{ins: []string{"user.id=1", "user.id=2"}, outs: []string{"item.title,reviews"}, cmd: `{"query":{"class":"user","outputs":["item.title","reviews"],"meta":true}}`},
		{ins: []string{"user.id=O'Brien"}, now: "2024-06-01", cmd: `{"query":{"class":"user","now":"2024-06-01T00:00:00Z","meta":true}}`},
		{ins: []string{"user.id"}, err: "expected class.feature=value"},
		{ins: []string{"user.id=1", "review.id=2"}, err: "one class"},
		{ins: []string{"user_item.user_id=1", "user_item.user_id=2", "user_item.item_id=3"}, err: "give each input once per row"},
		{ins: []string{"user.id=1"}, now: "yesterday", err: "--now"},
		{err: "at least one input"},
	}
	for _, c := range cases {
		r, err := parseRequest(c.ins, c.outs, c.now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: got %v, want error containing %q", c.ins, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.ins, err)
			continue
		}
		got, err := r.command()
		if err != nil || string(got) != c.cmd {
			t.Errorf("%v:\n got %s (%v)\nwant %s", c.ins, got, err, c.cmd)
		}
	}
}

// Floats print as Python's repr does (the seeds' result tables come from
// Python): checked against CPython.
func TestFormatFloatMatchesPython(t *testing.T) {
	tenth, fifth := 0.1, 0.2
	values := []float64{0.531067620635202, 3.4404545454545428, 5, math.Copysign(0, -1), 1e16, 1e-7, 123456789.125, tenth + fifth, math.Inf(1), math.NaN(), 2.5e-300}
	var got []string
	for _, v := range values {
		got = append(got, functions.PyFloat(v))
	}
	script := `import json, sys, math
vals = [0.531067620635202, 3.4404545454545428, 5.0, -0.0, 1e16, 1e-7, 123456789.125, 0.1 + 0.2, math.inf, math.nan, 2.5e-300]
print(json.dumps([repr(v) for v in vals]))`
	out, err := exec.Command("python3", "-c", script).Output()
	if err != nil {
		t.Skipf("python3 not available: %v", err)
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("functions.PyFloat(%v) = %s, Python repr %s", values[i], got[i], want[i])
		}
	}
}

// TestCacheBudget: the caches keep live what, with the garbage GOGC lets
// grow between collections, costs at most the configured resident bytes.
func TestCacheBudget(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, c := range []struct {
		gogc          int
		max           int64
		plans, fronts int64
	}{
		{400, 0, (256 << 20) / 5 * 2 / 3, (256 << 20) / 5 / 3},
		{400, 500 << 20, (500 << 20) / 5 * 2 / 3, (500 << 20) / 5 / 3},
		{100, 300 << 20, (300 << 20) / 2 * 2 / 3, (300 << 20) / 2 / 3},
	} {
		debug.SetGCPercent(c.gogc)
		plans, fronts := cacheBudget(c.max)
		if plans != c.plans || fronts != c.fronts {
			t.Errorf("GOGC=%d, max_bytes %d: plans %d, front ends %d; want %d, %d", c.gogc, c.max, plans, fronts, c.plans, c.fronts)
		}
	}
}
