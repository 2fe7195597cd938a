package aggregate

import (
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/operators"
)

const ngroups = 60 // groups 50..59 get no rows

// data is one generated relation, held both as Arrow arrays and as a
// DuckDB table "data(rowno, g, i, f, s, ts, d, b, k)".
type data struct {
	groups []int32
	cols   map[string]arrow.Array
}

func (d *data) release() {
	for _, c := range d.cols {
		c.Release()
	}
}

func generate(t *testing.T, mem memory.Allocator, db *sql.DB, n int) *data {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &data{cols: map[string]arrow.Array{}}
	ib := array.NewInt64Builder(mem)
	fb := array.NewFloat64Builder(mem)
	sb := array.NewStringBuilder(mem)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	db32 := array.NewDate32Builder(mem)
	bb := array.NewBooleanBuilder(mem)
	kb := array.NewInt64Builder(mem)
	var rows []string
	null := func() bool { return rng.IntN(5) == 0 }
	for r := range n {
		g := int32(rng.IntN(51)) - 1 // -1 is skipped
		d.groups = append(d.groups, g)
		cells := []string{fmt.Sprint(r), fmt.Sprint(g)}
		if null() {
			ib.AppendNull()
			cells = append(cells, "NULL")
		} else {
			v := rng.Int64N(2000) - 1000
			ib.Append(v)
			cells = append(cells, fmt.Sprint(v))
		}
		if null() {
			fb.AppendNull()
			cells = append(cells, "NULL")
		} else {
			v := math.Round(rng.NormFloat64()*1e6) / 1e3
			fb.Append(v)
			cells = append(cells, fmt.Sprintf("%v::DOUBLE", v))
		}
		if null() {
			sb.AppendNull()
			cells = append(cells, "NULL")
		} else {
			v := fmt.Sprintf("s%03d", rng.IntN(300))
			sb.Append(v)
			cells = append(cells, "'"+v+"'")
		}
		if null() {
			tb.AppendNull()
			db32.AppendNull()
			cells = append(cells, "NULL", "NULL")
		} else {
			v := time.Unix(1.7e9+rng.Int64N(1e8), rng.Int64N(1e6)*1000).UTC()
			tb.Append(arrow.Timestamp(v.UnixMicro()))
			db32.Append(arrow.Date32FromTime(v))
			cells = append(cells, "'"+v.Format("2006-01-02 15:04:05.999999")+"'::TIMESTAMP", "'"+v.Format("2006-01-02")+"'::DATE")
		}
		if null() {
			bb.AppendNull()
			cells = append(cells, "NULL")
		} else {
			v := rng.IntN(4) == 0
			bb.Append(v)
			cells = append(cells, fmt.Sprint(v))
		}
		if null() {
			kb.AppendNull()
			cells = append(cells, "NULL")
		} else {
			v := rng.Int64N(20) // many ties
			kb.Append(v)
			cells = append(cells, fmt.Sprint(v))
		}
		rows = append(rows, "("+strings.Join(cells, ", ")+")")
	}
	for name, b := range map[string]array.Builder{"i": ib, "f": fb, "s": sb, "ts": tb, "d": db32, "b": bb, "k": kb} {
		d.cols[name] = b.NewArray()
		b.Release()
	}
	stmt := "CREATE OR REPLACE TABLE data AS SELECT * FROM (VALUES " + strings.Join(rows, ", ") +
		") AS v(rowno, g, i, f, s, ts, d, b, k)"
	if _, err := db.Exec(stmt); err != nil {
		t.Fatal(err)
	}
	return d
}

func openDuck(t testing.TB) *sql.DB {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestGroupedAgainstDuckDB(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := openDuck(t)
	defer db.Close()
	d := generate(t, mem, db, 3000)
	defer d.release()

	// The reference: DuckDB over every group (empty ones through the left
	// join), with DESIGN §4's empty-group values where SQL says NULL.
	cases := []struct{ fn, col, key, ref string }{
		{"count", "", "", "count(x.g)"},
		{"count", "i", "", "count(x.i)"},
		{"count", "s", "", "count(x.s)"},
		{"sum", "i", "", "coalesce(sum(x.i), 0)"},
		{"sum", "f", "", "coalesce(sum(x.f), 0)"},
		{"mean", "i", "", "avg(x.i)"},
		{"mean", "f", "", "avg(x.f)"},
		{"std", "f", "", "stddev_samp(x.f)"},
		{"var", "i", "", "var_samp(x.i)"},
		{"min", "i", "", "min(x.i)"},
		{"max", "f", "", "max(x.f)"},
		{"min", "s", "", "min(x.s)"},
		{"max", "s", "", "max(x.s)"},
		{"max", "ts", "", "max(x.ts)"},
		{"min", "d", "", "min(x.d)"},
		{"max", "b", "", "max(x.b)"},
		{"min", "b", "", "min(x.b)"},
		{"any", "b", "", "coalesce(bool_or(x.b), false)"},
		{"all", "b", "", "coalesce(bool_and(x.b), true)"},
		// Ties on k go to the later row: order by (k, rowno).
		{"max_by", "f", "k", "arg_max(x.f, (x.k, x.rowno)) FILTER (WHERE x.k IS NOT NULL AND x.f IS NOT NULL)"},
		{"min_by", "s", "k", "arg_max(x.s, (-x.k, x.rowno)) FILTER (WHERE x.k IS NOT NULL AND x.s IS NOT NULL)"},
		{"max_by", "i", "ts", "arg_max(x.i, (x.ts, x.rowno)) FILTER (WHERE x.ts IS NOT NULL AND x.i IS NOT NULL)"},
		{"approx_count_distinct", "s", "", "count(DISTINCT x.s)"},
		{"approx_count_distinct", "f", "", "count(DISTINCT x.f)"},
	}
	for _, c := range cases {
		t.Run(c.fn+"_"+c.col+"_"+c.key, func(t *testing.T) {
			var values, key arrow.Array
			if c.col != "" {
				values = d.cols[c.col]
			}
			if c.key != "" {
				key = d.cols[c.key]
			}
			var vt arrow.DataType
			if values != nil {
				vt = values.DataType()
			}
			ot, err := OutputType(c.fn, vt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Grouped(mem, c.fn, values, key, d.groups, ngroups)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			if got.Len() != ngroups || !arrow.TypeEqual(got.DataType(), ot) {
				t.Fatalf("got %d rows of %s, want %d of %s", got.Len(), got.DataType(), ngroups, ot)
			}
			tiled := mergedTiles(t, mem, c.fn, values, key, d.groups)
			defer tiled.Release()
			if !arrow.TypeEqual(tiled.DataType(), ot) {
				t.Fatalf("tiles merge to %s, want %s", tiled.DataType(), ot)
			}
			q := fmt.Sprintf("SELECT %s FROM range(%d) gs(g) LEFT JOIN data x ON x.g = gs.g GROUP BY gs.g ORDER BY gs.g", c.ref, ngroups)
			rows, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for g := 0; rows.Next(); g++ {
				var want any
				if err := rows.Scan(&want); err != nil {
					t.Fatal(err)
				}
				if have := operators.GoValue(got, g); !same(have, want) {
					t.Errorf("group %d: got %v, want %v", g, have, want)
				}
				if have := operators.GoValue(tiled, g); !same(have, want) {
					t.Errorf("group %d from tiles: got %v, want %v", g, have, want)
				}
			}
		})
	}
}

// tilesPerGroup is how many tiles mergedTiles cuts each group into.
const tilesPerGroup = 5

// mergedTiles aggregates like Grouped, through partial states: each
// group's rows are cut into tilesPerGroup runs of consecutive rows (as
// buckets are runs of time), whose states merge back per group.
func mergedTiles(t *testing.T, mem memory.Allocator, fn string, values, key arrow.Array, groups []int32) arrow.Array {
	sub := make([]int32, len(groups))
	for i, g := range groups {
		sub[i] = -1
		if g >= 0 {
			sub[i] = g*tilesPerGroup + int32(i*tilesPerGroup/len(groups))
		}
	}
	var vt, kt arrow.DataType
	if values != nil {
		vt = values.DataType()
	}
	if key != nil {
		kt = key.DataType()
	}
	fields, err := StateFields(fn, vt, kt)
	if err != nil {
		t.Fatal(err)
	}
	states, err := Partial(mem, fn, values, key, sub, ngroups*tilesPerGroup)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range states {
			s.Release()
		}
	}()
	if len(states) != len(fields) {
		t.Fatalf("%d state columns, want %d", len(states), len(fields))
	}
	for i, f := range fields {
		if !arrow.TypeEqual(states[i].DataType(), f.Type) {
			t.Fatalf("state %s is %s, want %s", f.Name, states[i].DataType(), f.Type)
		}
	}
	lo, hi := make([]int32, ngroups), make([]int32, ngroups)
	for g := range lo {
		lo[g], hi[g] = int32(g*tilesPerGroup), int32((g+1)*tilesPerGroup)
	}
	out, err := MergeSpans(mem, fn, states, Spans{Lo: lo, Hi: hi})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func same(a, b any) bool {
	switch b := b.(type) {
	case float64:
		af, ok := a.(float64)
		return ok && math.Abs(af-b) <= 1e-9*math.Max(1, math.Abs(b))
	case int32:
		return a == int64(b)
	case *big.Int: // DuckDB's sum of BIGINT is a HUGEINT
		return b.IsInt64() && a == b.Int64()
	case time.Time:
		at, ok := a.(time.Time)
		return ok && at.Equal(b)
	}
	return a == b
}

func TestApproxCountDistinctError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	// group g draws from a domain of size sizes[g]; the exact distinct count
	// comes from DuckDB over the same values.
	sizes := []int64{1, 10, 500, 600, 5000, 100000}
	b := array.NewInt64Builder(mem)
	var groups []int32
	var rows []string
	for g, size := range sizes {
		for range 3 * size {
			v := rng.Int64N(size * 2)
			b.Append(v)
			groups = append(groups, int32(g))
			rows = append(rows, fmt.Sprintf("(%d,%d)", g, v))
		}
	}
	values := b.NewArray()
	b.Release()
	defer values.Release()
	db := openDuck(t)
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE v AS SELECT * FROM (VALUES " + strings.Join(rows, ",") + ") t(g, v)"); err != nil {
		t.Fatal(err)
	}
	got, err := Grouped(mem, "approx_count_distinct", values, nil, groups, len(sizes))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	res, err := db.Query("SELECT count(DISTINCT v) FROM v GROUP BY g ORDER BY g")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	stderr := 1.04 / math.Sqrt(1<<Precision)
	for g := 0; res.Next(); g++ {
		var exact int64
		if err := res.Scan(&exact); err != nil {
			t.Fatal(err)
		}
		est := got.(*array.Int64).Value(g)
		if exact <= SparseLimit {
			if est != exact {
				t.Errorf("group %d: %d distinct counted as %d; below %d it is exact", g, exact, est, SparseLimit)
			}
			continue
		}
		// Three standard errors: a deterministic seed, so no flakiness.
		if rel := math.Abs(float64(est-exact)) / float64(exact); rel > 3*stderr {
			t.Errorf("group %d: estimate %d of %d is off by %.2f%%, beyond 3σ = %.2f%%", g, est, exact, rel*100, 3*stderr*100)
		}
	}

	// Merging the sketches of two halves equals the sketch of the whole, and
	// serialization round-trips.
	var whole, left, right Sketch
	for i := range values.Len() {
		h := HashValue(values, i)
		whole.Add(h)
		if i%2 == 0 {
			left.Add(h)
		} else {
			right.Add(h)
		}
	}
	blob, err := left.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Sketch
	if err := back.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	back.Merge(&right)
	if back.Estimate() != whole.Estimate() {
		t.Errorf("merged estimate %d, whole %d", back.Estimate(), whole.Estimate())
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct {
		fn   string
		vt   arrow.DataType
		want string
	}{
		{"avg", arrow.PrimitiveTypes.Float64, `unknown aggregation "avg"`},
		{"meen", arrow.PrimitiveTypes.Float64, `(did you mean "mean"?)`},
		{"sum", arrow.BinaryTypes.String, "sum needs int or float values, not utf8"},
		{"any", arrow.PrimitiveTypes.Int64, "any needs bool values"},
		{"mean", nil, "mean needs a value column"},
	} {
		_, err := OutputType(c.fn, c.vt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("OutputType(%s, %v): %v, want %q", c.fn, c.vt, err, c.want)
		}
	}
}

func BenchmarkGrouped(b *testing.B) {
	mem := memory.NewGoAllocator()
	const n, groupsN = 1_000_000, 10_000
	rng := rand.New(rand.NewPCG(5, 6))
	fb := array.NewFloat64Builder(mem)
	kb := array.NewInt64Builder(mem)
	groups := make([]int32, n)
	for i := range n {
		groups[i] = int32(rng.IntN(groupsN))
		fb.Append(rng.Float64())
		kb.Append(rng.Int64N(1 << 40))
	}
	values, keys := fb.NewArray(), kb.NewArray()
	defer values.Release()
	defer keys.Release()
	for _, fn := range []string{"count", "sum", "mean", "std", "max", "max_by", "approx_count_distinct"} {
		b.Run(fn, func(b *testing.B) {
			for b.Loop() {
				out, err := Grouped(mem, fn, values, keys, groups, groupsN)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
		})
	}
}
