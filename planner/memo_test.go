package planner_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// TestMemoKeepsWindowsApart checks that the calls memoized over a large
// frame never share a value between two windows of one windowed feature
// whose expression text is the same (`... .sum() * 2` for 1d and 7d), and
// that shared filters give the same answers as DuckDB computes.
func TestMemoKeepsWindowsApart(t *testing.T) {
	g, src := repoWithDuckDB(t, map[string]string{
		"acct.py": `from chalk.features import features, DataFrame, _, windowed, Windowed
from datetime import datetime

@features
class Acct:
    id: int
    txns: "DataFrame[Txn]"
    doubled: Windowed[float] = windowed("1d", "7d", expression=_.txns[_.amount, _.ts > _.chalk_window].sum() * 2)
    big: Windowed[int] = windowed("1d", "7d", expression=_.txns[_.amount > 50, _.ts > _.chalk_window].count())
    big_total: int = _.txns[_.amount > 50].count()

@features
class Txn:
    id: int
    acct_id: Acct.id
    amount: float
    ts: datetime
`,
		"txns.sql": "-- resolves: Txn\n-- source: db\nselect id, acct_id, amount, ts from txns\n",
	}, `CREATE TABLE txns AS SELECT i AS id, i % 600 + 1 AS acct_id,
		(i * 37 % 100)::DOUBLE AS amount, TIMESTAMPTZ '2026-03-01 00:00:00+00' - to_seconds(i * 977 % 864000) AS ts
		FROM range(20000) t(i)`)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids := make([]int64, 600)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	in := accountInputs(mem, ids...)
	defer in.Release()
	outs := []string{"doubled__86400__", "doubled__604800__", "big__86400__", "big__604800__", "big_total"}
	shape := &statement.Statement{Class: g.Class("acct"), Inputs: in.Schema().Fields()}
	for _, o := range outs {
		shape.Outputs = append(shape.Outputs, ref(o))
	}
	plan, err := planner.NewEngine(g, markettest.OneSource{Src: src}, mem).Prepare(shape)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	got := cells(res.Record)
	rows, err := src.DB().Query(`SELECT a.id,
		coalesce(sum(amount) FILTER (WHERE ts > TIMESTAMPTZ '2026-02-28 00:00:00+00'), 0) * 2,
		coalesce(sum(amount) FILTER (WHERE ts > TIMESTAMPTZ '2026-02-22 00:00:00+00'), 0) * 2,
		count(*) FILTER (WHERE amount > 50 AND ts > TIMESTAMPTZ '2026-02-28 00:00:00+00'),
		count(*) FILTER (WHERE amount > 50 AND ts > TIMESTAMPTZ '2026-02-22 00:00:00+00'),
		count(*) FILTER (WHERE amount > 50)
		FROM range(1, 601) a(id) LEFT JOIN txns ON txns.acct_id = a.id AND txns.ts <= TIMESTAMPTZ '2026-03-01 00:00:00+00'
		GROUP BY a.id ORDER BY a.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for r := 0; rows.Next(); r++ {
		var id int64
		var d1, d7 float64
		var b1, b7, bt int64
		if err := rows.Scan(&id, &d1, &d7, &b1, &b7, &bt); err != nil {
			t.Fatal(err)
		}
		want := []any{d1, d7, b1, b7, bt}
		for c := range want {
			if got[c][r] != want[c] {
				t.Fatalf("acct %d %s = %v, DuckDB says %v", id, outs[c], got[c][r], want[c])
			}
		}
	}
}

// TestDeepBindingIsNotCubic: binding an output nested 2,000 deep builds
// each call's memo key once, from its operands' keys (the key of the whole
// subtree was rebuilt at every level: 10 s and gigabytes for 2,000
// levels of lower(…), 107 s for 4,000). Measured in bytes allocated, not
// time: the keys of 2,000 levels are tens of megabytes in all.
func TestDeepBindingIsNotCubic(t *testing.T) {
	g, e := definitionsOnly(t)
	var x expr.Node = &expr.Ref{Path: []string{"full_name"}}
	for range 1999 {
		x = &expr.Call{Func: "lower", Args: []expr.Node{x}}
	}
	st, err := statement.New(g.Class("user"), []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, []statement.Output{{Expr: x, Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := e.Prepare(st); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 200<<20 {
		t.Errorf("planning 2,000 levels allocated %d MB", n>>20)
	}
}

// TestPlanningStopsWhenCancelled: planning a big expression gives up at
// the caller's cancellation or deadline, with its error, and caches
// nothing (issue 16: a 4,096-deep expression kept planning for 0.45 s
// after the client had gone, the planner knowing no context).
func TestPlanningStopsWhenCancelled(t *testing.T) {
	g, e := definitionsOnly(t)
	var x expr.Node = &expr.Ref{Path: []string{"full_name"}}
	for range 1000 {
		x = &expr.Call{Func: "lower", Args: []expr.Node{x}}
	}
	st, err := statement.New(g.Class("user"), []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, []statement.Output{{Expr: x, Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tc := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		if _, _, err := e.PrepareCached(tc.ctx, st); !errors.Is(err, tc.want) {
			t.Errorf("planning with a context ended by %v: %v", tc.want, err)
		}
	}
	if _, cached, err := e.PrepareCached(context.Background(), st); err != nil || cached {
		t.Errorf("planning again: cached %v, %v; want a plan made now", cached, err)
	}
}
