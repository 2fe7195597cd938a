package planner_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

const fuseRepo = `from chalk.features import features, _
import chalk.functions as F

@features
class Row:
    id: int
    a: int | None
    b: int | None
    x: float | None
    y: float | None
    p: bool | None
    e1: float | None = (_.x * 2 + _.a) / (_.y - 1)
    e2: int | None = _.a // (_.b - 3) + _.a % 7 - -_.b
    e3: bool | None = (_.x > _.y) & (_.a != _.b) | ~_.p
    e4: float | None = F.coalesce(_.x, _.y, 0.5) * 2 + F.when(_.p).then(_.x).otherwise(_.a)
    e5: int | None = _.a * _.b + 1
    e6: float | None = F.when(_.x >= 0).then(F.sqrt(_.x)).when(_.y < 0).then(-_.y).otherwise(None) ** 2
`

// TestFusedFrameMatchesRows runs the same expressions over 600 rows at
// once (fused: a frame of fuseRows rows or more) and row by row (the
// kernels, call by call): every cell and every error the same.
func TestFusedFrameMatchesRows(t *testing.T) {
	g, _ := repoWithDuckDB(t, map[string]string{"row.py": fuseRepo})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{}, mem)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 600
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{int64(i)}
		for k := 0; k < 5; k++ {
			var v any
			switch {
			case r.IntN(6) == 0:
			case k < 2:
				v = r.Int64N(21) - 10
			case k < 4:
				v = []float64{0, math.Copysign(0, -1), 1.5, -2.25, 3, math.NaN(), math.Inf(1), 1}[r.IntN(8)]
			default:
				v = r.IntN(2) == 0
			}
			rows[i] = append(rows[i], v)
		}
	}
	outs := []string{"e1", "e2", "e3", "e4", "e6"}
	all := run(t, e, mem, rows, outs)
	for i, row := range rows {
		one := run(t, e, mem, [][]any{row}, outs)
		for c := range outs {
			if !sameCell(all[c][i], one[c][0]) {
				t.Errorf("row %d %v: %s is %v over %d rows, %v alone", i, row, outs[c], all[c][i], n, one[c][0])
			}
		}
	}
	// An int overflow fails the query with the kernel's message however
	// many rows are evaluated.
	rows[400][1], rows[400][2] = int64(math.MaxInt64), int64(2)
	_, errAll := runErr(e, mem, rows, []string{"e5"})
	_, errOne := runErr(e, mem, rows[400:401], []string{"e5"})
	if errAll == nil || errOne == nil || errAll.Error() != errOne.Error() {
		t.Errorf("overflow: %v over %d rows, %v alone", errAll, n, errOne)
	}
}

func sameCell(a, b any) bool {
	fa, ok1 := a.(float64)
	fb, ok2 := b.(float64)
	if ok1 && ok2 {
		return math.Float64bits(fa) == math.Float64bits(fb)
	}
	return reflect.DeepEqual(a, b)
}

func run(t *testing.T, e *planner.Engine, mem memory.Allocator, rows [][]any, outs []string) [][]any {
	t.Helper()
	got, err := runErr(e, mem, rows, outs)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func runErr(e *planner.Engine, mem memory.Allocator, rows [][]any, outs []string) ([][]any, error) {
	fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}
	for _, c := range []struct {
		name string
		typ  arrow.DataType
	}{{"a", arrow.PrimitiveTypes.Int64}, {"b", arrow.PrimitiveTypes.Int64}, {"x", arrow.PrimitiveTypes.Float64}, {"y", arrow.PrimitiveTypes.Float64}, {"p", arrow.FixedWidthTypes.Boolean}} {
		fields = append(fields, arrow.Field{Name: c.name, Type: c.typ, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, row := range rows {
		for k, v := range row {
			switch fb := b.Field(k).(type) {
			case *array.Int64Builder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(int64))
				}
			case *array.Float64Builder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(float64))
				}
			case *array.BooleanBuilder:
				if v == nil {
					fb.AppendNull()
				} else {
					fb.Append(v.(bool))
				}
			}
		}
	}
	in := b.NewRecordBatch()
	defer in.Release()
	st := &statement.Statement{Class: e.Graph().Class("row"), Inputs: schema.Fields()}
	for _, o := range outs {
		st.Outputs = append(st.Outputs, ref(o))
	}
	plan, err := e.Prepare(st)
	if err != nil {
		return nil, err
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: time.Now()})
	if err != nil {
		return nil, err
	}
	defer res.Release()
	if int(res.Record.NumRows()) != len(rows) {
		return nil, fmt.Errorf("%d rows for %d", res.Record.NumRows(), len(rows))
	}
	return cells(res.Record), nil
}
