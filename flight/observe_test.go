package flight

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-engine/fletch/observe"
	"github.com/fletch-engine/fletch/planner"
)

// captureLog sends the default logger's lines (JSON, from debug up) to the
// returned buffer until the test ends.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var logged bytes.Buffer
	logger, err := observe.NewLogger(&logged, observe.FormatJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	slog.SetDefault(logger)
	return &logged
}

// TestObservedQueries runs a query of each path, and a bad one, through a
// server whose metrics and log are watched: the counters say what was run
// (by path, outcome, resolver and source), and every line a query logs
// names the trace id its caller was given.
func TestObservedQueries(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	logged := captureLog(t)

	m := observe.NewMetrics()
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem, planner.WithObserver(m))
	m.PlanCache(engine.PlanCacheStats)
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Observer: m}))

	traces := map[string]bool{}
	for name, run := range map[string]func(context.Context, []string) (metadata.MD, error){
		PathSQL: statementRun(cl), PathPrepared: preparedRun(cl, mem), PathSubstrait: substraitRun(t, cl), PathNative: nativeRun(cl, mem),
	} {
		// The native helper reads no header: its query names its id.
		ctx := context.Background()
		if name == PathNative {
			ctx = metadata.AppendToOutgoingContext(ctx, TraceHeader, "req-native")
		}
		header, err := run(ctx, []string{"u1", "u2"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		id := header.Get(TraceHeader)
		if name == PathNative {
			id = []string{"req-native"}
		}
		if len(id) != 1 || id[0] == "" {
			t.Fatalf("%s: echoed trace id %q", name, id)
		}
		traces[id[0]] = true
	}
	if _, err := cl.Execute(context.Background(), `SELECT full_name FROM user WHERE id = 'u1' AND`); err == nil {
		t.Fatal("a query cut short answered")
	}

	got := gather(t, m.Registry())
	for _, path := range []string{PathSQL, PathPrepared, PathSubstrait, PathNative} {
		if v := got[`fletch_queries_total{code="OK",path="`+path+`"}`]; v != 1 {
			t.Errorf("fletch_queries_total of %s = %v, want 1", path, v)
		}
		if v := got[`fletch_queries_in_flight{path="`+path+`"}`]; v != 0 {
			t.Errorf("fletch_queries_in_flight of %s = %v, want 0", path, v)
		}
	}
	if v := got[`fletch_grpc_calls_total{code="InvalidArgument",method="/arrow.flight.protocol.FlightService/GetFlightInfo"}`]; v != 1 {
		t.Errorf("GetFlightInfo refused %v times, want 1", v)
	}
	// Each query reads the users resolver once (the prepared one runs its
	// two parameter batches as two runs).
	if v := got[`fletch_resolver_duration_seconds_count{resolver="users"}`]; v < 4 {
		t.Errorf("users resolver timed %v times, want ≥ 4", v)
	}
	if v := got[`fletch_source_duration_seconds_count{source="marketplace"}`]; v < 4 {
		t.Errorf("marketplace source timed %v times, want ≥ 4", v)
	}
	if v := got[`fletch_plan_cache_entries`]; v < 1 {
		t.Errorf("fletch_plan_cache_entries = %v", v)
	}

	// One debug line per query, each naming its echoed trace id.
	queries := 0
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "query" || rec["code"] != "OK" {
			continue
		}
		queries++
		if id, _ := rec["trace_id"].(string); !traces[id] {
			t.Errorf("query line with trace_id %q, not one echoed (%v): %s", id, traces, line)
		}
	}
	if queries != 4 {
		t.Errorf("%d query lines, want 4:\n%s", queries, logged.String())
	}
}

// gather is every series of reg by its name and labels, as Prometheus'
// text format spells them (labels sorted); histograms as their count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name += "_count"
				v = float64(m.GetHistogram().GetSampleCount())
			default:
				continue
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			out[name] = v
		}
	}
	return out
}
