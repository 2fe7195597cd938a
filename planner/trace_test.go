package planner_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// TestStagesAreSpans runs a plan over an online store under a traced
// query's span, with EXPLAIN ANALYZE on: every stage the analysis reports
// is a span under the run's (one seam records both; the queried class's
// frame is the run's span itself), the online store's
// read and the write-back included; a run whose context has no recording
// span makes none. The values are the store test's, computed by hand
// (TestOnlineStoreServesWithinMaxStaleness).
func TestStagesAreSpans(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, mem, planner.WithOnlineStore(onlinemem.New()), planner.WithTracerProvider(tp))
	in := accountInputs(mem, 1, 2, 1)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score"), ref("paid"), ref("balance")}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run := func(ctx context.Context, now time.Time) *planner.Analysis {
		t.Helper()
		res, err := plan.Run(ctx, in, planner.RunOptions{Now: now, Analyze: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		if got, want := cells(res.Record), [][]any{{0.5, 0.25, 0.5}, {12.0, 1.0, 12.0}, {10.0, 20.0, 10.0}}; !equalCells(got, want) {
			t.Errorf("values %v, want %v", got, want)
		}
		e.Flush()
		return res.Analysis
	}
	for i, now := range []time.Time{t0, t0.Add(30 * time.Minute)} { // cold, then served
		exp.Reset()
		ctx, query := tp.Tracer("test").Start(context.Background(), "query")
		a := run(ctx, now)
		query.End()
		spans := exp.GetSpans()
		byID := map[string]string{}
		for _, sp := range spans {
			byID[sp.SpanContext.SpanID().String()] = sp.Name
		}
		var stages, got []string
		for _, st := range a.Stages {
			if st.What == "frame" && st.Frame == "account" {
				continue // the queried class's frame: its span is the run's
			}
			stages = append(stages, st.What)
		}
		for _, sp := range spans {
			switch sp.Name {
			case "query":
			case "run":
				if byID[sp.Parent.SpanID().String()] != "query" {
					t.Errorf("run %d: the run's span is not under the query's", i)
				}
			case "online store write":
				if p := byID[sp.Parent.SpanID().String()]; p != "run" && p != "frame" {
					t.Errorf("run %d: a write-back under %q, not under its frame", i, p)
				}
			default:
				got = append(got, sp.Name)
				if p := byID[sp.Parent.SpanID().String()]; p != "run" && p != "frame" {
					t.Errorf("run %d: stage %s under %q", i, sp.Name, p)
				}
			}
		}
		slices.Sort(stages)
		slices.Sort(got)
		if !slices.Equal(stages, got) || !slices.Contains(got, "online store") {
			t.Errorf("run %d: spans %q, analysis stages %q: want the same, with the online store's read", i, got, stages)
		}
		writes := 0
		for _, sp := range spans {
			if sp.Name == "online store write" {
				writes++
			}
		}
		if cold := i == 0; cold != (writes > 0) {
			t.Errorf("run %d: %d write-back spans", i, writes)
		}
	}
	exp.Reset()
	run(context.Background(), t0.Add(time.Hour))
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans of a run that is not traced", n)
	}
}
