package functions

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/operators"
)

// The test data: one table of named columns, the same rows in Arrow and
// in DuckDB, so every function is checked against DuckDB's (or CPython's)
// answer on identical input.

type column struct {
	name string
	dt   arrow.DataType
	vals []any // int64, float64, string, bool, time.Time, []any, nil
}

func ts(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05.999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

var (
	tTs    = arrow.FixedWidthTypes.Timestamp_us
	tDate  = arrow.FixedWidthTypes.Date32
	tLF    = arrow.ListOf(tFloat)
	tLI    = arrow.ListOf(tInt)
	tLS    = arrow.ListOf(tStr)
	T, F   = true, false
	testDB *sql.DB
)

var table = []column{
	{"x", tFloat, []any{1.5, -2.25, 0.0, nil, 3.75, -0.5, 100.0, 2.5, 0.3}},
	{"y", tFloat, []any{2.0, 0.5, -3.0, 4.0, nil, 0.0, -7.5, 2.5, 0.1}},
	{"i", tInt, []any{int64(7), int64(-7), int64(0), nil, int64(3), int64(-3), int64(10), int64(2), int64(-9)}},
	{"j", tInt, []any{int64(2), int64(2), int64(-3), int64(5), nil, int64(0), int64(3), int64(-4), int64(4)}},
	{"p", tBool, []any{T, T, T, F, F, F, nil, nil, nil}},
	{"q", tBool, []any{T, F, nil, T, F, nil, T, F, nil}},
	{"s", tStr, []any{"Hello World", "foo", "", nil, "  padded  ", "ÄÖü strasse", "a,b,,c", "hello", "banana"}},
	{"t", tStr, []any{"hello world", "food", "x", "y", nil, "ÄÖü", "a,c", "hello", "bandana"}},
	{"ts", tTs, []any{ts("2024-01-15 10:30:45.123456"), ts("2023-12-31 23:59:59"), ts("2024-02-29 00:00:00"), nil,
		ts("2020-06-07 12:00:00"), ts("1999-01-01 01:02:03"), ts("2024-03-10 08:15:00"), ts("2021-01-03 00:00:00"), ts("1970-01-01 00:00:00")}},
	{"ts2", tTs, []any{ts("2024-01-14 10:30:45"), ts("2024-01-01 00:00:00"), nil, ts("2024-01-01 00:00:00"),
		ts("2020-06-07 12:00:01"), ts("1999-01-01 01:02:03"), ts("2025-03-10 08:15:00"), ts("2021-01-03 00:00:00"), ts("1969-12-31 23:00:00")}},
	{"d", tDate, []any{ts("2024-01-15 00:00:00"), ts("2023-12-31 00:00:00"), nil, ts("2024-02-29 00:00:00"),
		ts("2020-06-07 00:00:00"), ts("1999-01-01 00:00:00"), ts("2024-03-10 00:00:00"), ts("2021-01-03 00:00:00"), ts("1970-01-01 00:00:00")}},
	{"lf", tLF, []any{[]any{1.0, 2.0, 3.0}, []any{}, nil, []any{-1.5, nil, 4.0}, []any{2.0}, []any{0.5, 0.5}, []any{3.0, 1.0, 2.0}, []any{nil}, []any{1.0, 0.0, 1.0}}},
	{"lg", tLF, []any{[]any{3.0, 2.0, 1.0}, []any{}, []any{1.0}, []any{2.0, 1.0, 4.0}, nil, []any{1.0, -1.0}, []any{3.0, 1.0, 2.0}, []any{1.0}, []any{0.0, 1.0, 0.0}}},
	{"li", tLI, []any{[]any{int64(1), int64(2), int64(2)}, []any{}, nil, []any{int64(5), nil, int64(-1)}, []any{int64(9)}, []any{int64(3), int64(3)}, []any{int64(0), int64(7), int64(1)}, []any{nil}, []any{int64(-4), int64(4)}}},
	{"u", tStr, []any{"https://user@www.example.com:8080/path/to/page.html?q=search&lang=en#top", "http://example.org", "ftp://files.example.net/pub/file.tar.gz",
		nil, "https://shop.example.com/items?id=42&ref=home", "not a url", "https://a.b.c/x?y=1&y=2", "http://localhost:3000/api/v1?", "https://EXAMPLE.com/Path#frag"}},
	{"w", tStr, []any{"martha", "dwayne", "dixon", "", nil, "jellyfish", "abc", "a", "crate"}},
	{"v", tStr, []any{"marhta", "duane", "dicksonx", "abc", "x", nil, "abc", "", "trace"}},
	{"n", arrow.Null, []any{nil, nil, nil, nil, nil, nil, nil, nil, nil}},
}

func colByName(name string) column {
	for _, c := range table {
		if c.name == name {
			return c
		}
	}
	panic("no test column " + name)
}

// constant columns: "k:<sql literal>" is a broadcast literal, e.g. "k:2",
// "k:'-'", "k:2.5".
func argColumn(name string) column {
	if src, ok := strings.CutPrefix(name, "split:"); ok {
		c := colByName(src)
		vals := make([]any, len(c.vals))
		for i, v := range c.vals {
			if v != nil {
				var parts []any
				for _, p := range strings.Split(v.(string), ",") {
					parts = append(parts, p)
				}
				vals[i] = parts
			}
		}
		return column{name, tLS, vals}
	}
	if lit, ok := strings.CutPrefix(name, "k:"); ok {
		var v any
		var dt arrow.DataType
		switch {
		case strings.HasPrefix(lit, "'"):
			v, dt = strings.Trim(lit, "'"), tStr
		case strings.ContainsAny(lit, ".e"):
			var f float64
			fmt.Sscan(lit, &f)
			v, dt = f, tFloat
		case lit == "true" || lit == "false":
			v, dt = lit == "true", tBool
		default:
			var i int64
			fmt.Sscan(lit, &i)
			v, dt = i, tInt
		}
		vals := make([]any, len(table[0].vals))
		for i := range vals {
			vals[i] = v
		}
		return column{lit, dt, vals}
	}
	return colByName(name)
}

func buildArray(mem memory.Allocator, dt arrow.DataType, vals []any) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, v := range vals {
		appendValue(b, v)
	}
	return b.NewArray()
}

func appendValue(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
	case *array.Date32Builder:
		b.Append(arrow.Date32FromTime(v.(time.Time)))
	case *array.ListBuilder:
		b.Append(true)
		for _, e := range v.([]any) {
			appendValue(b.ValueBuilder(), e)
		}
	default:
		panic(fmt.Sprintf("appendValue: %T", b))
	}
}

func sqlType(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.INT64:
		return "BIGINT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.STRING:
		return "VARCHAR"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.TIMESTAMP:
		return "TIMESTAMP"
	case arrow.DATE32:
		return "DATE"
	case arrow.LIST:
		return sqlType(dt.(*arrow.ListType).Elem()) + "[]"
	}
	return "INTEGER"
}

func sqlLiteral(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return fmt.Sprint(v)
	case float64:
		return fmt.Sprintf("'%v'::DOUBLE", v)
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case bool:
		return fmt.Sprint(v)
	case time.Time:
		return "'" + v.Format("2006-01-02 15:04:05.999999") + "'"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = sqlLiteral(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	panic(fmt.Sprintf("sqlLiteral %T", v))
}

// tableSQL renders the test table as a DuckDB subquery.
func tableSQL() string {
	var rows []string
	for r := range table[0].vals {
		cells := []string{fmt.Sprint(r)}
		for _, c := range table {
			cells = append(cells, "CAST("+sqlLiteral(c.vals[r])+" AS "+sqlType(c.dt)+")")
		}
		rows = append(rows, "("+strings.Join(cells, ", ")+")")
	}
	names := []string{"rowno"}
	for _, c := range table {
		names = append(names, c.name)
	}
	return "(VALUES " + strings.Join(rows, ", ") + ") AS tbl(" + strings.Join(names, ", ") + ")"
}

func duck(t testing.TB) *sql.DB {
	t.Helper()
	if testDB == nil {
		db, err := sql.Open("duckdb", "")
		if err != nil {
			t.Fatal(err)
		}
		// fletch's divide yields null on a zero divisor, as DuckDB did before
		// IEEE semantics became its default.
		if _, err := db.Exec("SET TimeZone = 'UTC'; SET ieee_floating_point_ops = false"); err != nil {
			t.Fatal(err)
		}
		testDB = db
	}
	return testDB
}

// duckRef evaluates a SQL expression over the test table, row by row.
func duckRef(t *testing.T, expr string) []any {
	t.Helper()
	rows, err := duck(t).Query("SELECT " + expr + " FROM " + tableSQL() + " ORDER BY rowno")
	if err != nil {
		t.Fatalf("duckdb %s: %v", expr, err)
	}
	defer rows.Close()
	var out []any
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, normalize(v))
	}
	return out
}

// pyRef evaluates a Python lambda over the argument columns; None in gives
// None out, and an exception gives None.
func pyRef(t *testing.T, lambda string, cols []column) []any {
	t.Helper()
	var rows [][]any
	for r := range cols[0].vals {
		var row []any
		for _, c := range cols {
			row = append(row, c.vals[r])
		}
		rows = append(rows, row)
	}
	in, _ := json.Marshal(rows)
	// JSON drops the float-ness of 2.0: tell Python which columns are floats.
	var floats []bool
	for _, c := range cols {
		floats = append(floats, c.dt.ID() == arrow.FLOAT64)
	}
	fl, _ := json.Marshal(floats)
	script := `import json, sys, math
f = ` + lambda + `
def g(row):
    if any(v is None for v in row): return None
    try: return f(*row)
    except (ZeroDivisionError, ValueError, OverflowError): return None
def enc(v):
    if isinstance(v, complex): return {"f": "nan"}
    if isinstance(v, float) and not math.isfinite(v): return {"f": str(v)}
    return v
fl = json.loads(sys.argv[2])
rows = [[float(v) if f and v is not None else v for v, f in zip(r, fl)] for r in json.loads(sys.argv[1])]
print(json.dumps([enc(g(r)) for r in rows]))`
	out, err := exec.Command("python3", "-c", script, string(in), string(fl)).CombinedOutput()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", lambda, err, out)
	}
	var res []any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	for i, v := range res {
		res[i] = normalize(v)
	}
	return res
}

func normalize(v any) any {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint64:
		return int64(v)
	case *big.Int: // DuckDB's HUGEINT sums
		return v.Int64()
	case uint32:
		return int64(v)
	case float32:
		return float64(v)
	case time.Time:
		return v.UTC()
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case []byte:
		return string(v)
	case map[string]any: // a non-finite float from pyRef
		var f float64
		fmt.Sscan(v["f"].(string), &f)
		switch v["f"] {
		case "nan":
			f = math.NaN()
		case "inf":
			f = math.Inf(1)
		case "-inf":
			f = math.Inf(-1)
		}
		return f
	}
	return v
}

func sameValue(a, b any) bool {
	if af, ok := asFloat(a); ok {
		bf, ok := asFloat(b)
		if !ok {
			return false
		}
		if math.IsNaN(af) || math.IsNaN(bf) {
			return math.IsNaN(af) && math.IsNaN(bf)
		}
		return af == bf || math.Abs(af-bf) <= 1e-9*math.Max(1, math.Abs(bf))
	}
	switch a := a.(type) {
	case time.Time:
		bt, ok := b.(time.Time)
		return ok && a.Equal(bt)
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], bl[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// refCase is one function call over test columns with its reference: a
// DuckDB expression over the same columns, or a Python lambda.
type refCase struct {
	fn   string
	args []string
	duck string
	py   string
}

// run binds and executes c, returning the result as Go values.
func (c refCase) run(t *testing.T, mem memory.Allocator) ([]any, arrow.DataType) {
	t.Helper()
	var arrs []arrow.Array
	var types []arrow.DataType
	for _, name := range c.args {
		col := argColumn(name)
		a := buildArray(mem, col.dt, col.vals)
		defer a.Release()
		arrs = append(arrs, a)
		types = append(types, col.dt)
	}
	b, err := Default().Bind(c.fn, types)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Exec(&Context{Mem: mem}, arrs)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !arrow.TypeEqual(out.DataType(), b.Out) {
		t.Fatalf("result type %s, bound type %s", out.DataType(), b.Out)
	}
	if out.Len() != len(table[0].vals) {
		t.Fatalf("result length %d", out.Len())
	}
	got := make([]any, out.Len())
	for i := range got {
		got[i] = operators.GoValue(out, i)
	}
	return got, b.Out
}

func checkRef(t *testing.T, cases []refCase) {
	for _, c := range cases {
		name := c.fn + "(" + strings.Join(c.args, ",") + ")"
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			got, _ := c.run(t, mem)
			var want []any
			if c.py != "" {
				var cols []column
				for _, a := range c.args {
					cols = append(cols, argColumn(a))
				}
				want = pyRef(t, c.py, cols)
			} else {
				want = duckRef(t, c.duck)
			}
			for i := range got {
				if !sameValue(got[i], want[i]) {
					t.Errorf("row %d: got %#v, want %#v (reference %s%s)", i, got[i], want[i], c.duck, c.py)
				}
			}
		})
	}
}
