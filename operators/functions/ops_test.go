package functions

import (
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestOperators(t *testing.T) {
	checkRef(t, []refCase{
		{fn: "add", args: []string{"i", "j"}, duck: "i + j"},
		{fn: "add", args: []string{"x", "y"}, duck: "x + y"},
		{fn: "add", args: []string{"i", "y"}, duck: "i + y"},
		{fn: "add", args: []string{"s", "t"}, duck: "s || t"},
		{fn: "add", args: []string{"i", "n"}, duck: "i + NULL"},
		{fn: "subtract", args: []string{"i", "j"}, duck: "i - j"},
		{fn: "subtract", args: []string{"x", "j"}, duck: "x - j"},
		{fn: "subtract", args: []string{"ts", "ts2"}, duck: "epoch(ts) - epoch(ts2)"},
		{fn: "multiply", args: []string{"i", "j"}, duck: "i * j"},
		{fn: "multiply", args: []string{"x", "y"}, duck: "x * y"},
		{fn: "divide", args: []string{"x", "y"}, duck: "x / y"},
		{fn: "divide", args: []string{"i", "j"}, duck: "i / j"},
		{fn: "floor_divide", args: []string{"i", "j"}, py: "lambda a, b: a // b"},
		{fn: "floor_divide", args: []string{"x", "y"}, py: "lambda a, b: a // b"},
		{fn: "mod", args: []string{"i", "j"}, py: "lambda a, b: a % b"},
		{fn: "mod", args: []string{"x", "y"}, py: "lambda a, b: a % b"},
		{fn: "power", args: []string{"x", "k:2"}, duck: "x ** 2"},
		{fn: "power", args: []string{"j", "y"}, py: "lambda a, b: float(a) ** b"},
		{fn: "negate", args: []string{"i"}, duck: "-i"},
		{fn: "negate", args: []string{"x"}, duck: "-x"},
		{fn: "equal", args: []string{"i", "j"}, duck: "i = j"},
		{fn: "equal", args: []string{"s", "t"}, duck: "s = t"},
		{fn: "equal", args: []string{"p", "q"}, duck: "p = q"},
		{fn: "not_equal", args: []string{"x", "y"}, duck: "x <> y"},
		{fn: "not_equal", args: []string{"ts", "ts2"}, duck: "ts <> ts2"},
		{fn: "less", args: []string{"i", "y"}, duck: "i < y"},
		{fn: "less", args: []string{"s", "t"}, duck: "s < t"},
		{fn: "less", args: []string{"p", "q"}, duck: "p < q"},
		{fn: "less", args: []string{"d", "ts2"}, duck: "d < ts2"},
		{fn: "less_equal", args: []string{"ts", "ts2"}, duck: "ts <= ts2"},
		{fn: "less_equal", args: []string{"p", "q"}, duck: "p <= q"},
		{fn: "greater", args: []string{"x", "y"}, duck: "x > y"},
		{fn: "greater", args: []string{"d", "d"}, duck: "d > d"},
		{fn: "greater_equal", args: []string{"s", "t"}, duck: "s >= t"},
		{fn: "greater_equal", args: []string{"p", "q"}, duck: "p >= q"},
		{fn: "and", args: []string{"p", "q"}, duck: "p AND q"},
		{fn: "or", args: []string{"p", "q"}, duck: "p OR q"},
		{fn: "and", args: []string{"p", "n"}, duck: "p AND NULL"},
		{fn: "not", args: []string{"q"}, duck: "NOT q"},
	})
}

func TestIntegerOverflowIsAnError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		fn   string
		a, b int64
	}{{"add", math.MaxInt64, 1}, {"subtract", math.MinInt64, 1}, {"multiply", 1 << 32, 1 << 31}} {
		a := buildArray(mem, tInt, []any{int64(1), c.a})
		b := buildArray(mem, tInt, []any{int64(1), c.b})
		bound, err := Default().Bind(c.fn, []arrow.DataType{tInt, tInt})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := bound.Exec(&Context{Mem: mem}, []arrow.Array{a, b}); err == nil {
			out.Release()
			t.Errorf("%s(%d, %d): no overflow error", c.fn, c.a, c.b)
		}
		a.Release()
		b.Release()
	}
}
