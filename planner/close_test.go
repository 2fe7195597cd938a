package planner_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"

	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// slowStore is an online store whose writes take a while, so that
// write-backs are still queued when the engine closes.
type slowStore struct {
	*onlinemem.Store
	delay time.Duration
}

func (s slowStore) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	time.Sleep(s.delay)
	return s.Store.Set(ctx, class, keys, values, observed)
}

// runAccounts runs one query of score (max_staleness 1h: written back) for
// each id, each its own write-back.
func runAccounts(t *testing.T, e *planner.Engine, mem memory.Allocator, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		in := accountInputs(mem, id)
		plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score")}})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := plan.Execute(context.Background(), in, time.Now())
		in.Release()
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
}

// After Close, no goroutine the engine started is left, though its runs
// wrote back to the online store.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	g, db := accountFixture(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	store := onlinemem.New()
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, mem, planner.WithOnlineStore(store))
	runAccounts(t, e, mem, 1, 2, 3)
	e.Close()
	if st := e.CacheStats(); st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("write-backs before Close: %+v, want none dropped or failed", st)
	}
	if n := stored(t, store, 1, 2, 3); n != 3 {
		t.Errorf("%d of 3 accounts in the store after Close", n)
	}
}

// Every write-back queued before Close is in the store when Close returns;
// one queued after it is dropped and counted, and Close again is harmless.
func TestCloseFlushesWriteBack(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	store := onlinemem.New()
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, mem, planner.WithOnlineStore(slowStore{Store: store, delay: 10 * time.Millisecond}))
	ids := make([]int64, 40)
	for i := range ids {
		ids[i] = int64(100 + i) // no such account: a null score, cached all the same
	}
	runAccounts(t, e, mem, ids...)
	if n := stored(t, store, ids...); n == len(ids) {
		t.Fatal("every write-back reached the store before Close: the test shows nothing")
	}
	e.Close()
	if n := stored(t, store, ids...); n != len(ids) {
		t.Errorf("%d of %d write-backs queued before Close are in the store after it", n, len(ids))
	}
	if st := e.CacheStats(); st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("write-backs before Close: %+v, want none dropped or failed", st)
	}

	runAccounts(t, e, mem, 1)
	e.Close()
	if st := e.CacheStats(); st.Dropped != 1 {
		t.Errorf("a write-back after Close: %+v, want it dropped and counted", st)
	}
	if n := stored(t, store, 1); n != 0 {
		t.Error("a write-back after Close reached the store")
	}
}

// stored counts the accounts whose score the store holds.
func stored(t *testing.T, store stores.OnlineStore, ids ...int64) int {
	t.Helper()
	mem := memory.NewGoAllocator()
	b := array.NewInt64Builder(mem)
	b.AppendValues(ids, nil)
	keys := b.NewArray()
	b.Release()
	defer keys.Release()
	got, err := store.Get(context.Background(), mem, "account", keys, arrow.NewSchema([]arrow.Field{{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	return got.Observed[0].Len() - got.Observed[0].NullN()
}
