package functions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
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

// TestCompareKernels checks the six comparisons on every type against
// CPython's (IEEE for NaN, code point order for strings, false < true) on
// random arrays: lengths around the 8-row blocks, sliced at a bit offset,
// with and without nulls, values drawn from a small set so rows are often
// equal.
func TestCompareKernels(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	pools := []struct {
		dt   arrow.DataType
		vals []any
	}{
		{tInt, []any{int64(-3), int64(0), int64(2), int64(7), int64(math.MinInt64), int64(math.MaxInt64)}},
		{tFloat, []any{-1.5, 0.0, math.Copysign(0, -1), 2.5, math.NaN(), math.Inf(1), math.Inf(-1), 1e300}},
		{tStr, []any{"", "a", "ab", "b", "ä", "a\u00ff", "Z", "zz"}},
		{tBool, []any{true, false}},
		{tTs, []any{ts("1969-12-31 23:59:59.999999"), ts("1970-01-01 00:00:00"), ts("2024-02-29 12:00:00.5")}},
		{tDate, []any{ts("1969-12-31 00:00:00"), ts("2024-02-29 00:00:00"), ts("2024-03-01 00:00:00")}},
	}
	ops := []string{"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
	type check struct {
		name string
		got  []any
		a, b []any
	}
	var checks []check
	for _, p := range pools {
		for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 65, 200} {
			for _, offset := range []int{0, 3} {
				for _, nulls := range []bool{false, true} {
					gen := func() []any {
						vals := make([]any, offset+n)
						for i := range vals {
							if nulls && rng.IntN(6) == 0 {
								continue
							}
							vals[i] = p.vals[rng.IntN(len(p.vals))]
						}
						return vals
					}
					av, bv := gen(), gen()
					full := []arrow.Array{buildArray(mem, p.dt, av), buildArray(mem, p.dt, bv)}
					args := []arrow.Array{array.NewSlice(full[0], int64(offset), int64(offset+n)), array.NewSlice(full[1], int64(offset), int64(offset+n))}
					for _, op := range ops {
						bound, err := Default().Bind(op, []arrow.DataType{p.dt, p.dt})
						if err != nil {
							t.Fatal(err)
						}
						out, err := bound.Exec(&Context{Mem: mem}, args)
						if err != nil {
							t.Fatal(err)
						}
						got := make([]any, out.Len())
						for i := range got {
							got[i] = operators.GoValue(out, i)
						}
						out.Release()
						checks = append(checks, check{fmt.Sprintf("%s(%s, n=%d, offset=%d, nulls=%v)", op, p.dt, n, offset, nulls), got, av[offset:], bv[offset:]})
					}
					for _, a := range append(full, args...) {
						a.Release()
					}
				}
			}
		}
	}
	// CPython reads the cases as JSON: floats as their text (float("nan")),
	// times as epoch microseconds, so Python compares what Arrow holds.
	enc := func(vals []any) []any {
		out := make([]any, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case float64:
				out[i] = map[string]string{"f": strconv.FormatFloat(v, 'g', -1, 64)}
			case time.Time:
				out[i] = v.UnixMicro()
			default:
				out[i] = v
			}
		}
		return out
	}
	var cases [][3]any
	for i, c := range checks {
		cases = append(cases, [3]any{ops[i%len(ops)], enc(c.a), enc(c.b)})
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	script := `import json, sys, operator
dec = lambda v: float(v["f"]) if isinstance(v, dict) else v
ops = {"equal": operator.eq, "not_equal": operator.ne, "less": operator.lt, "less_equal": operator.le, "greater": operator.gt, "greater_equal": operator.ge}
out = []
for op, a, b in json.load(sys.stdin):
    out.append([None if x is None or y is None else ops[op](dec(x), dec(y)) for x, y in zip(a, b)])
print(json.dumps(out))`
	cmd := exec.Command("python3", "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, res)
	}
	var want [][]any
	if err := json.Unmarshal(res, &want); err != nil {
		t.Fatalf("%v: %s", err, res)
	}
	for i, c := range checks {
		if len(c.got) != len(want[i]) {
			t.Errorf("%s: %d rows, want %d", c.name, len(c.got), len(want[i]))
			continue
		}
		for r := range c.got {
			if c.got[r] != want[i][r] {
				t.Errorf("%s row %d (%v, %v): got %v, want %v", c.name, r, c.a[r], c.b[r], c.got[r], want[i][r])
			}
		}
	}
}

// TestAbsFloatEdges checks abs against CPython's math.fabs where the value
// alone does not tell: the sign of zero, NaN, infinities.
func TestAbsFloatEdges(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	vals := []any{math.Copysign(0, -1), 0.0, math.NaN(), math.Inf(-1), math.Inf(1), -1.5, nil, 2.5, -math.MaxFloat64}
	in := buildArray(mem, tFloat, vals)
	defer in.Release()
	bound, err := Default().Bind("abs", []arrow.DataType{tFloat})
	if err != nil {
		t.Fatal(err)
	}
	out, err := bound.Exec(&Context{Mem: mem}, []arrow.Array{in})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	var text []string
	for _, v := range vals {
		if v == nil {
			text = append(text, "None")
		} else {
			text = append(text, "float('"+strconv.FormatFloat(v.(float64), 'g', -1, 64)+"')")
		}
	}
	// Python answers each result's bit pattern (NaN as null: its sign is
	// not part of its meaning).
	script := `import math, struct
vals = [` + strings.Join(text, ", ") + `]
print(" ".join("null" if v is None or math.isnan(v) else str(struct.unpack("<Q", struct.pack("<d", math.fabs(v)))[0]) for v in vals))`
	res, err := exec.Command("python3", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, res)
	}
	got := out.(*array.Float64)
	for i, w := range strings.Fields(string(res)) {
		switch {
		case w == "null":
			if vals[i] != nil && !math.IsNaN(got.Value(i)) || vals[i] == nil && got.IsValid(i) {
				t.Errorf("row %d: abs(%v) = %v, want NaN or null", i, vals[i], operators.GoValue(got, i))
			}
		case got.IsNull(i) || strconv.FormatUint(math.Float64bits(got.Value(i)), 10) != w:
			t.Errorf("row %d: abs(%v) = %v, want bits %s", i, vals[i], operators.GoValue(got, i), w)
		}
	}
}
