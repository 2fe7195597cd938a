package planner_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/guard"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// downStore is an online store that is down: every call fails, counted.
type downStore struct {
	stores.OnlineStore
	calls atomic.Int64
}

func (d *downStore) Get(context.Context, memory.Allocator, string, arrow.Array, *arrow.Schema) (*stores.OnlineValues, error) {
	d.calls.Add(1)
	return nil, errors.New("connection refused")
}

func (d *downStore) Set(context.Context, string, arrow.Array, arrow.RecordBatch, []time.Time) error {
	d.calls.Add(1)
	return errors.New("connection refused")
}

// TestOnlineStoreBreakerFallback: an online store that is down behind an
// open breaker is not called, and the answers are the computed ones
// (docs/CONFIG.md: online store open → recompute); a source down behind an
// open breaker fails the query as Unavailable at once, naming the breaker.
func TestOnlineStoreBreakerFallback(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	down := &downStore{OnlineStore: onlinemem.New()}
	store := guard.OnlineStore{OnlineStore: down, Guard: guard.New(guard.Options{Name: "online store", Where: "online_store", Failures: 2, OpenFor: time.Hour})}
	src := &countingSource{db: db, calls: map[string]int{}}
	e := planner.NewEngine(g, src, mem, planner.WithOnlineStore(store))
	in := accountInputs(mem, 1, 2)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score"), ref("balance")}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{0.5, 0.25}, {10.0, 20.0}}
	for i := range 5 {
		res, err := plan.Run(context.Background(), in, planner.RunOptions{})
		if err != nil {
			t.Fatalf("run %d with the store down: %v", i, err)
		}
		if got := cells(res.Record); !equalCells(got, want) {
			t.Errorf("run %d: %v, want the computed %v", i, got, want)
		}
		res.Release()
		e.Flush()
	}
	if n := down.calls.Load(); n != 2 {
		t.Errorf("the store was called %d times, want 2 (then the breaker opened)", n)
	}

	// A source behind an open breaker.
	src.mu.Lock()
	src.down = true
	src.mu.Unlock()
	guarded := guard.Source{Source: src, Guard: guard.New(guard.Options{Name: "source db", Where: "sources.db", Failures: 1, OpenFor: time.Hour})}
	e2 := planner.NewEngine(g, sourcesOf{guarded}, mem)
	plan2, err := e2.Prepare(&statement.Statement{Class: e2.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("balance")}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"connection refused", "sources.db.breaker"} {
		before := src.total()
		_, err := plan2.Run(context.Background(), in, planner.RunOptions{})
		if statement.KindOf(err) != statement.SourceFailure || !strings.Contains(err.Error(), want) {
			t.Errorf("run %d with the source down: %v, want a source failure saying %q", i, err, want)
		}
		if i == 1 && src.total() != before {
			t.Errorf("the open breaker let %d queries through", src.total()-before)
		}
	}
}

// sourcesOf names one source for every name.
type sourcesOf struct{ src stores.Source }

func (s sourcesOf) Source(string) (stores.Source, error) { return s.src, nil }
