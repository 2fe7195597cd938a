package observe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/stores/guard"
)

func TestLoggerNamesTheTrace(t *testing.T) {
	for _, format := range []string{FormatText, FormatJSON} {
		var buf bytes.Buffer
		logger, err := NewLogger(&buf, format, "debug")
		if err != nil {
			t.Fatal(err)
		}
		ctx := trace.With(context.Background(), "req-9")
		logger.With("a", 1).DebugContext(ctx, "in a query")
		logger.Info("outside")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "req-9") || !strings.Contains(lines[0], "trace_id") || strings.Contains(lines[1], "trace_id") {
			t.Errorf("%s:\n%s", format, buf.String())
		}
	}
	for _, bad := range [][2]string{{"yaml", ""}, {"", "loud"}} {
		if _, err := NewLogger(io.Discard, bad[0], bad[1]); err == nil {
			t.Errorf("NewLogger(%q, %q) took it", bad[0], bad[1])
		}
	}
	logger, _ := NewLogger(io.Discard, "", "warn")
	if logger.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("level warn logs info")
	}
}

func TestHTTP(t *testing.T) {
	m := NewMetrics()
	m.QueryStarted("sql")
	m.QueryDone("sql", codes.Unavailable, time.Millisecond)
	m.Violations(func() []Violation {
		return []Violation{{Feature: "review.star_rating", Bounds: "min=1, max=5", Count: 2}}
	})
	var failing map[string]error
	h := NewHTTPHandler(m, func(context.Context) map[string]error { return failing })
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz ready: %d %q", code, body)
	}
	failing = map[string]error{"source pg": errors.New("connection refused")}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, `"source pg":"connection refused"`) {
		t.Errorf("/readyz with a source down: %d %q", code, body)
	}
	code, body := get("/metrics")
	for _, want := range []string{`fletch_queries_total{code="Unavailable",path="sql"} 1`, `fletch_queries_in_flight{path="sql"} 0`,
		`fletch_validation_violations_total{bounds="min=1, max=5",feature="review.star_rating",strict="false"} 2`, "go_goroutines", "process_resident_memory_bytes"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %s", code, want)
		}
	}
}

// TestGuardsReadNow: the guard series are those of the guards the function
// answers at each scrape (a reload that reopens the sources replaces them).
func TestGuardsReadNow(t *testing.T) {
	m := NewMetrics()
	var now []*guard.Guard
	m.Guards(func() []*guard.Guard { return now })
	scrape := func() string {
		rec := httptest.NewRecorder()
		NewHTTPHandler(m, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if body := scrape(); strings.Contains(body, "fletch_guard_running") {
		t.Errorf("no guards, yet:\n%s", body)
	}
	now = []*guard.Guard{guard.New(guard.Options{Name: "source a", MaxConcurrent: 1})}
	if body := scrape(); !strings.Contains(body, `fletch_guard_running{name="source a"} 0`) {
		t.Errorf("guard of source a missing:\n%s", body)
	}
	now = []*guard.Guard{guard.New(guard.Options{Name: "source b", Failures: 1})}
	if body := scrape(); strings.Contains(body, `name="source a"`) || !strings.Contains(body, `fletch_breaker_open{name="source b"} 0`) {
		t.Errorf("after the guards changed:\n%s", body)
	}
}
