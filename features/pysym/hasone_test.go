package pysym_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// An exception of a compiled resolver of a related class (Item.per_unit,
// read through order.item) is reported for the input rows that read it,
// through a has-one path and through an expression over it; a query that is
// not partial fails with the first of them.
func TestRaisesThroughHasOne(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"repo.py": `from chalk.features import _, features, online

@features
class Item:
    id: int
    price: float
    stock: int
    per_unit: float | None

@features
class Order:
    id: int
    item_id: Item.id
    item: Item
    qty: int
    total: float | None = _.item.per_unit * _.qty

@online
def per_unit(price: Item.price, stock: Item.stock) -> Item.per_unit:
    return price / stock
`,
		"items.sql":  "-- resolves: Item\n-- source: db\nselect id, price, stock from items\n",
		"orders.sql": "-- resolves: Order\n-- source: db\nselect id, item_id, qty from orders\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE items (id BIGINT, price DOUBLE, stock BIGINT)",
		"INSERT INTO items VALUES (1, 10, 4), (2, 5, 0), (3, 9, 3)",
		"CREATE TABLE orders (id BIGINT, item_id BIGINT, qty BIGINT)",
		"INSERT INTO orders VALUES (1, 1, 2), (2, 2, 1), (3, 3, 5), (4, 2, 7), (5, 9, 1)",
	} {
		if _, err := db.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1, 2, 3, 4, 5}, nil)
	ids := b.NewArray()
	b.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{ids}, 5)
	ids.Release()
	defer in.Release()
	st := &statement.Statement{Class: g.Class("order"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{
		{Name: "total", Expr: &expr.Ref{Path: []string{"total"}}},
		{Name: "item.per_unit", Expr: &expr.Ref{Path: []string{"item", "per_unit"}}},
	}}
	plan, err := e.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: time.Now(), Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	var got [][]any
	for c := 0; c < 2; c++ {
		var col []any
		for k := 0; k < 5; k++ {
			col = append(col, cell(res.Record.Column(c), k))
		}
		got = append(got, col)
	}
	// Order 5's item does not exist: its price and stock are missing (not
	// optional), so per_unit is not computed for it: null, no error.
	want := [][]any{{5.0, nil, 15.0, nil, nil}, {2.5, nil, 3.0, nil, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer %v, want %v", got, want)
	}
	if len(res.Errors) != 2 {
		t.Fatalf("errors %+v", res.Errors)
	}
	for i, e := range res.Errors {
		if e.Output != i || e.Resolver != "per_unit" || !reflect.DeepEqual(e.Rows, []int{1, 3}) || !strings.HasPrefix(e.Message, "ZeroDivisionError: float division by zero (per_unit, line ") {
			t.Errorf("error %d: %+v", i, e)
		}
	}
	_, err = plan.Run(context.Background(), in, planner.RunOptions{Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "Python resolver per_unit raised for item.per_unit in 2 of 5 rows; the first, row 1: ZeroDivisionError") {
		t.Errorf("not partial: %v", err)
	}
}
