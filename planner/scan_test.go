package planner_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// TestLister: which conditions go into the listing of entities, and what
// the listing answers, against DuckDB over the same table.
func TestLister(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src, g := markettest.Fixture(t)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	defer e.Close()
	items, err := e.Lister(g.Class("item"), expr.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    statement.Filter
		want bool
	}{
		{statement.Filter{Feature: "price", Op: ">", Values: []any{int64(10)}}, true},
		{statement.Filter{Feature: "price", Op: ">", Values: []any{10.5}}, true},
		{statement.Filter{Feature: "genre_from_llm", Op: "in", Values: []any{"books", "toys"}}, true},
		{statement.Filter{Feature: "genre_from_llm", Op: "null"}, true},
		// A string column against a number: an error in Postgres, a cast
		// of every row in DuckDB.
		{statement.Filter{Feature: "title", Op: "=", Values: []any{int64(5)}}, false},
		{statement.Filter{Feature: "price", Op: "=", Values: []any{"10"}}, false},
		// Computed, not a column of the resolver.
		{statement.Filter{Feature: "total_reviews", Op: ">", Values: []any{int64(1)}}, false},
		{statement.Filter{Feature: "price", Op: "like", Values: []any{"1%"}}, false},
	} {
		if got := items.Pushable(c.f); got != c.want {
			t.Errorf("Pushable(%v) = %v, want %v", c.f, got, c.want)
		}
	}
	// Pages follow each other in key order, filtered.
	var got []any
	var after any
	for {
		keys, err := items.List(context.Background(), planner.ListOptions{Now: time.Now(), After: after, Limit: 7,
			Filters: []statement.Filter{{Feature: "price", Op: "<", Values: []any{int64(50)}}}})
		if err != nil {
			t.Fatal(err)
		}
		n := keys.Len()
		for i := range n {
			got = append(got, planner.KeyAt(keys, i))
		}
		if n > 0 {
			after = planner.KeyAt(keys, n-1)
		}
		keys.Release()
		if n < 7 {
			break
		}
	}
	rows, err := src.DB().Query("SELECT id FROM marketplace_items WHERE list_price < 50 ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	want := markettest.Rows(t, rows)
	if len(got) != len(want) {
		t.Fatalf("%d keys, DuckDB says %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i][0] {
			t.Fatalf("key %d: %v, DuckDB says %v", i, got[i], want[i][0])
		}
	}
	// Point in time: users listed at a time are those created by then.
	users, err := e.Lister(g.Class("user"), expr.Pos{})
	if err != nil {
		t.Fatal(err)
	}
	at := marketplace.DefaultAnchor.Add(-60 * 24 * time.Hour)
	keys, err := users.List(context.Background(), planner.ListOptions{Now: at, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Release()
	var n, all int64
	if err := src.DB().QueryRow("SELECT count(*) FILTER (WHERE created_at <= ?), count(*) FROM marketplace_users", at).Scan(&n, &all); err != nil {
		t.Fatal(err)
	}
	if int64(keys.Len()) != n || n == 0 || n == all {
		t.Errorf("%d users listed at %s, DuckDB says %d", keys.Len(), at, n)
	}
}
