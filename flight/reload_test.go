package flight

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
)

// TestReloadDrains: after Reload, new calls read the new repository (the
// catalogue lists its class), while a call that started before keeps the
// old one, which is released (the channel closes) only when that call
// ends.
func TestReloadDrains(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv := newTestServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	tables := func() []string {
		t.Helper()
		info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{})
		if err != nil {
			t.Fatal(err)
		}
		_, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		return column(recs, 2)
	}
	if got := tables(); !slices.Contains(got, "user") {
		t.Fatalf("tables before the reload: %v", got)
	}

	dir := t.TempDir()
	src := "from chalk.features import features, _\n\n@features\nclass Thing:\n    id: int\n    a: int = _.id + 1\n"
	if err := os.WriteFile(filepath.Join(dir, "thing.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	inFlight := srv.acquire() // a call that started before the reload
	drained := srv.Reload(planner.NewEngine(g, nil, mem), nil, pyExprs(g))
	if got := tables(); !slices.Equal(got, []string{"thing"}) {
		t.Errorf("tables after the reload: %v, want [thing]", got)
	}
	if !slices.Contains(inFlight.graph.ClassNames(), "user") {
		t.Errorf("the call in flight lost its repository: %v", inFlight.graph.ClassNames())
	}
	select {
	case <-drained:
		t.Fatal("the old repository was released while a call still held it")
	default:
	}
	inFlight.release()
	<-drained // released once its last call ended (the test hangs otherwise)
}
