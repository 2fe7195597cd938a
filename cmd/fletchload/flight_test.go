package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	example "github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/flight"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

type oneSource struct{ src stores.Source }

func (o oneSource) Source(string) (stores.Source, error) { return o.src, nil }

// marketplaceServer serves the generated marketplace (an in-memory online
// store behind it) on a loopback port.
func marketplaceServer(t *testing.T, mem memory.Allocator) string {
	t.Helper()
	src, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()
	if err := example.Generate(ctx, src.DB(), example.Options{}); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load("../../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	engine := planner.NewEngine(g, oneSource{src}, mem, planner.WithOnlineStore(onlinemem.New()))
	srv := flight.NewServer(engine, flight.Options{Mem: mem, Now: func() time.Time { return example.DefaultAnchor }})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

// TestRequests: each mode's request runs against a real server and counts
// the rows it answers (one per id asked, duplicates included: the
// marketplace has every item 1..500); a wrong count is an error.
func TestRequests(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	addr := marketplaceServer(t, mem)
	cl, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	ids := []string{"7", "300", "7"}

	native, err := nativeRequest(cl, mem, native.Query{Outputs: []string{"title"}}, arrow.Field{Name: "item.id", Type: arrow.BinaryTypes.String}, true)
	if err != nil {
		t.Fatal(err)
	}
	statement := statementRequest(cl, "SELECT title FROM item WHERE id IN ({ids})", true)
	prepared, done, err := preparedRequest(ctx, cl, mem, "SELECT title FROM item WHERE id = ?", true)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	quoted := []string{"'7'", "'300'"}
	for _, c := range []struct {
		name string
		run  func() (int64, error)
		want int64
	}{
		{"native", func() (int64, error) { return native(ctx, ids) }, 3},
		{"statement", func() (int64, error) { return statement(ctx, quoted) }, 2},
		{"prepared", func() (int64, error) { return prepared(ctx, ids) }, 3},
	} {
		rows, err := c.run()
		if err != nil || rows != c.want {
			t.Errorf("%s: %d rows, %v; want %d", c.name, rows, err, c.want)
		}
	}
	// {id} takes the first id; one row for three ids fails the check.
	if _, err := statementRequest(cl, "SELECT title FROM item WHERE id = '{id}'", true)(ctx, ids); err == nil || !strings.Contains(err.Error(), "1 rows for 3 ids") {
		t.Errorf("row check: %v", err)
	}

}
