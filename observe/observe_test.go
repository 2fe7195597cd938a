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
