package marketplace

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// TestResolversRunOnGeneratedData runs every SQL resolver of the example,
// restricted to two keys, through the DuckDB source and checks the row
// count against the same question asked of the tables directly.
func TestResolversRunOnGeneratedData(t *testing.T) {
	src, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := Generate(context.Background(), src.DB(), Options{Seed: 3}); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := map[string]struct {
		keys arrow.Array
		ref  string
	}{
		"users.chalk.sql":       {strKeys(mem, "1", "10"), "SELECT count(*) FROM marketplace_users WHERE hid IN ('1', '10')"},
		"sellers.chalk.sql":     {strKeys(mem, "1", "nope"), "SELECT count(*) FROM marketplace_sellers WHERE id = '1'"},
		"items.chalk.sql":       {strKeys(mem, "2", "3"), "SELECT count(*) FROM marketplace_items WHERE id IN ('2', '3')"},
		"reviews.chalk.sql":     {intKeys(mem, 1, 2, 3), "SELECT count(*) FROM marketplace_reviews WHERE id IN (1, 2, 3)"},
		"item_prices.chalk.sql": {intKeys(mem, 5, 6), "SELECT count(*) FROM marketplace_item_prices WHERE id IN (5, 6)"},
	}
	for file, c := range cases {
		t.Run(file, func(t *testing.T) {
			defer c.keys.Release()
			text, err := fs.ReadFile(Files, file)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: string(text), KeyColumn: "id", Keys: c.keys})
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			var want int64
			if err := src.DB().QueryRow(c.ref).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if rec.NumRows() != want || want == 0 {
				t.Errorf("%d rows, want %d", rec.NumRows(), want)
			}
			if !strings.Contains(rec.Schema().String(), "id:") {
				t.Errorf("schema %s has no id", rec.Schema())
			}
		})
	}
}

func strKeys(mem memory.Allocator, keys ...string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(keys, nil)
	return b.NewArray()
}

func intKeys(mem memory.Allocator, keys ...int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(keys, nil)
	return b.NewArray()
}
