package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// faultRun is the part of `fletchload fault`'s JSON line the test reads.
type faultRun struct {
	Completed int                       `json:"completed"`
	Dropped   int                       `json:"dropped"`
	Outcomes  map[string]int            `json:"outcomes"`
	Errors    map[string]map[string]int `json:"errors"`
	Wrong     int                       `json:"wrong_answers"`
	Outside   struct {
		N   int     `json:"n"`
		P99 float64 `json:"p99_us"`
	} `json:"latency_outside_faults"`
	Kinds map[string]struct {
		Requests int            `json:"requests"`
		Codes    map[string]int `json:"codes"`
	} `json:"kinds"`
	ServerQueries map[string]int `json:"server_queries_total"`
	Faults        []struct {
		Name       string         `json:"name"`
		Errors     map[string]int `json:"errors"`
		RecoveryMs float64        `json:"recovery_ms"`
		FirstOKMs  float64        `json:"first_ok_ms"`
		Server     map[string]int `json:"server_counted"`
		Cancelled  map[string]int `json:"cancel_calls"`
		NotReady   bool           `json:"readyz_not_ready"`
		ReadyMs    float64        `json:"readyz_ready_ms"`
		Error      string         `json:"error"`
	} `json:"faults"`
	Memory struct {
		Start float64 `json:"rss_start_mb"`
		End   float64 `json:"rss_end_mb"`
	} `json:"memory"`
	Goroutines struct {
		Baseline float64 `json:"baseline"`
		End      float64 `json:"end"`
	} `json:"goroutines"`
	ServerLog struct {
		Levels map[string]int `json:"levels"`
		Other  int            `json:"other_lines"`
	} `json:"server_log"`
	Failures []string `json:"failures"`
}

// TestLoadAndFaults is the short form of the load-and-fault test (docs/
// OPERATIONS.md "Load and faults"): `fletchload fault` starts a private
// PostgreSQL and Redis (never the shared test servers), serves the
// marketplace from them with this build of `fletch serve`, and drives 24 s
// of mixed load at 100 req/s while it kills Redis, restarts Postgres, locks
// the items' table and cancels 100 calls at once. Every answer is checked
// against Postgres by the tool; here the report is held to what the
// documents promise: bad requests refused with their codes, errors only
// inside a fault's window and only of its documented kinds (none at all
// for Redis, whose outage is read as misses), each fault really seen by
// the server and recovered from within the 2 s settle, the cancelled calls
// ended Canceled (or refused by the full bulkhead the burst makes:
// Unavailable "… is busy"), goroutines back to the baseline, memory
// bounded, and the server's log in its format without an ERROR.
func TestLoadAndFaults(t *testing.T) {
	requireService(t, "FLETCH_TEST_POSTGRES") // the machine has PostgreSQL and Redis
	if testing.Short() {
		t.Skip("a 40 s run")
	}
	load := filepath.Join(workDir, "fletchload")
	if out, err := exec.Command("go", "build", "-o", load, "../cmd/fletchload").CombinedOutput(); err != nil {
		t.Fatalf("building fletchload: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, load, "fault", "--fletch", bin, "--services", "../scripts/services",
		"--rate", "100", "--duration", "24s", "--warmup", "4s", "--outage", "1s", "--lock", "2s", "--settle", "2s",
		"--sample", "1s", "--cancels", "100", "--goroutine-slack", "10", "--max-growth", "150")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("fletchload fault:\n%s", stderr.String())
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("fletchload fault did not complete: %v", err)
	}
	var r faultRun
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the JSON line: %v\n%s", err, stdout.String())
	}
	if len(r.Failures) > 0 || err != nil {
		t.Errorf("the tool's own checks failed (exit %v): %q", err, r.Failures)
	}

	if r.Outcomes["unexpected"] != 0 || r.Wrong != 0 {
		t.Errorf("%d unexpected errors, %d wrong answers", r.Outcomes["unexpected"], r.Wrong)
	}
	if r.Dropped != 0 || r.Outcomes["ok"] < r.Completed/2 || r.Outside.N == 0 {
		t.Errorf("dropped %d; %d answered of %d; %d outside the faults", r.Dropped, r.Outcomes["ok"], r.Completed, r.Outside.N)
	}
	for code, by := range r.Errors {
		for outcome := range by {
			ok := (outcome == "expected" && slices.Contains([]string{"InvalidArgument", "PermissionDenied"}, code)) ||
				(outcome == "fault" && slices.Contains([]string{"Unavailable", "DeadlineExceeded"}, code))
			if !ok {
				t.Errorf("errors %s counted as %s: %v", code, outcome, by)
			}
		}
	}
	for _, k := range []string{"bad_syntax", "bad_feature", "bad_scope"} {
		kr := r.Kinds[k]
		if kr.Requests == 0 || kr.Codes["OK"] != 0 {
			t.Errorf("%s: %d requests, codes %v: want some, all refused", k, kr.Requests, kr.Codes)
		}
	}
	// Every kind of the mix was answered, and checked, some of the time.
	for _, k := range []string{"user", "item", "genre", "users_in", "items_bulk", "offline"} {
		if r.Kinds[k].Codes["OK"] == 0 {
			t.Errorf("%s: never answered: %v", k, r.Kinds[k].Codes)
		}
	}
	var names []string
	for _, f := range r.Faults {
		names = append(names, f.Name)
		if f.Error != "" {
			t.Errorf("fault %s: %s", f.Name, f.Error)
		}
		if f.RecoveryMs > 2000 || f.FirstOKMs < 0 || f.FirstOKMs > 2000 {
			t.Errorf("fault %s: last error %v ms and first success %v ms after the repair, want both within 2 s", f.Name, f.RecoveryMs, f.FirstOKMs)
		}
		// /readyz reflects the store and the source (docs/OPERATIONS.md).
		if down := f.Name == "redis" || f.Name == "postgres"; f.NotReady != down || f.ReadyMs < 0 || f.ReadyMs > 2000 {
			t.Errorf("fault %s: /readyz not ready during it %v (want %v), ready again %v ms after the repair", f.Name, f.NotReady, down, f.ReadyMs)
		}
		switch f.Name {
		case "redis":
			if len(f.Errors) != 0 || f.Server["online_store_errors"] == 0 {
				t.Errorf("Redis down: callers saw %v (want none: read as misses), the server counted %v (want online store errors)", f.Errors, f.Server)
			}
		case "postgres":
			if f.Errors["Unavailable"] == 0 || f.Server["source_errors"] == 0 {
				t.Errorf("Postgres down: callers saw %v, the server counted %v; want Unavailable, source errors", f.Errors, f.Server)
			}
		case "lock":
			if f.Server["source_errors"]+f.Server["bulkhead_refused"] == 0 && len(f.Errors) == 0 {
				t.Logf("the lock held queries without failing any (server %v)", f.Server)
			}
		case "cancel":
			n := 0
			for code, c := range f.Cancelled {
				n += c
				if code != "Canceled" && code != "OK" && code != "Unavailable" {
					t.Errorf("%d cancelled calls ended %s", c, code)
				}
			}
			if n != 100 || f.Cancelled["Canceled"] == 0 || len(f.Errors) > 1 || (len(f.Errors) == 1 && f.Errors["Unavailable"] == 0) {
				t.Errorf("mass cancellation: %v of 100, the load saw %v", f.Cancelled, f.Errors)
			}
		}
	}
	if !slices.Equal(names, []string{"redis", "postgres", "lock", "cancel"}) {
		t.Errorf("faults injected: %v", names)
	}
	// The server's counters match the load: every answered request of the
	// mix is one OK query (plus the cancelled calls that finished first).
	if ok := r.ServerQueries["OK"]; ok < r.Outcomes["ok"] || ok > r.Outcomes["ok"]+100 {
		t.Errorf("the server counted %d OK queries, the load got %d answers (+ up to 100 cancelled calls)", ok, r.Outcomes["ok"])
	}
	// Nothing panicked, and every line of the server's log is in its format
	// (go-redis wrote its own lines to stderr when Redis was killed).
	if r.ServerLog.Levels["ERROR"] != 0 || r.ServerLog.Other != 0 || r.ServerLog.Levels["INFO"] == 0 {
		t.Errorf("the server's log: %+v", r.ServerLog)
	}
	if r.Goroutines.End > r.Goroutines.Baseline+10 {
		t.Errorf("goroutines %v at the end, baseline %v", r.Goroutines.End, r.Goroutines.Baseline)
	}
	if r.Memory.End-r.Memory.Start > 150 {
		t.Errorf("resident memory %v → %v MB", r.Memory.Start, r.Memory.End)
	}
}
