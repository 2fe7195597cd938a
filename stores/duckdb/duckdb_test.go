package duckdb

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores"
)

func openTest(t testing.TB) *Source {
	t.Helper()
	src, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	_, err = src.DB().Exec(`
		CREATE TABLE people AS
		SELECT i::BIGINT AS id, 'p' || i AS hid, CASE WHEN i % 3 = 0 THEN NULL ELSE 'name ' || i END AS name,
		       i * 1.5 AS score, TIMESTAMPTZ '2024-01-01 00:00:00+00' + INTERVAL (i) HOUR AS seen_at
		FROM range(1, 5001) t(i)`)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// fetch runs req with a checked allocator and returns the rows as canonical
// strings, sorted, plus the schema.
func fetch(t *testing.T, src *Source, req stores.FetchRequest) (*arrow.Schema, []string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, err := src.Fetch(context.Background(), mem, req)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", req.SQL, err)
	}
	defer rec.Release()
	return rec.Schema(), recordRows(t, rec)
}

// reference runs query through database/sql, independently of Fetch.
func reference(t *testing.T, src *Source, query string, args ...any) []string {
	t.Helper()
	rows, err := src.DB().Query(query, args...)
	if err != nil {
		t.Fatalf("reference %q: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = canon(v)
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func recordRows(t *testing.T, rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumRows())
	for r := range out {
		cells := make([]string, rec.NumCols())
		for c, col := range rec.Columns() {
			cells[c] = canon(operators.GoValue(col, r))
		}
		out[r] = strings.Join(cells, "|")
	}
	slices.Sort(out)
	return out
}

// canon formats a value so that equal values from Arrow and from
// database/sql print alike (integers of any width as integers, decimals as
// floats, times in UTC).
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return fmt.Sprintf("%d", x)
	case *big.Int:
		return x.String()
	case duckdb.Decimal:
		if x.Scale == 0 {
			return x.Value.String()
		}
		return fmt.Sprintf("%g", x.Float64())
	case float32:
		return fmt.Sprintf("%g", float64(x))
	case float64:
		return fmt.Sprintf("%g", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canon(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprintf("%v", v)
}

func TestTypes(t *testing.T) {
	src := openTest(t)
	ts := features.TimestampType
	cases := []struct {
		expr string
		want arrow.DataType
	}{
		{"42::TINYINT", arrow.PrimitiveTypes.Int64},
		{"42::INTEGER", arrow.PrimitiveTypes.Int64},
		{"42::UBIGINT", arrow.PrimitiveTypes.Int64},
		{"sum(x)", arrow.PrimitiveTypes.Int64}, // HUGEINT
		{"12::DECIMAL(18,0)", arrow.PrimitiveTypes.Int64},
		{"1.25::DECIMAL(10,2)", arrow.PrimitiveTypes.Float64},
		{"1.5::FLOAT", arrow.PrimitiveTypes.Float64},
		{"1.5::DOUBLE", arrow.PrimitiveTypes.Float64},
		{"'héllo'", arrow.BinaryTypes.String},
		{"true", arrow.FixedWidthTypes.Boolean},
		{"TIMESTAMP '2024-03-01 12:34:56.789'", ts},
		{"TIMESTAMPTZ '2024-03-01 12:34:56.789+02'", ts},
		{"TIMESTAMP_NS '2024-03-01 12:34:56.789123'", ts},
		{"DATE '1999-12-31'", arrow.FixedWidthTypes.Date32},
		{"[1, NULL, 3]::INTEGER[]", arrow.ListOf(arrow.PrimitiveTypes.Int64)},
		{"['a', NULL]", arrow.ListOf(arrow.BinaryTypes.String)},
		{"[[1.5], []]::DOUBLE[][]", arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Float64))},
		{"NULL::INTEGER", arrow.PrimitiveTypes.Int64},
		{"NULL::VARCHAR", arrow.BinaryTypes.String},
		{"NULL::TIMESTAMPTZ", ts},
		{"NULL::INTEGER[]", arrow.ListOf(arrow.PrimitiveTypes.Int64)},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			query := "SELECT " + c.expr + " AS v FROM (SELECT 1 AS x)"
			schema, got := fetch(t, src, stores.FetchRequest{SQL: query})
			if !arrow.TypeEqual(schema.Field(0).Type, c.want) {
				t.Errorf("type = %s, want %s", schema.Field(0).Type, c.want)
			}
			if want := reference(t, src, query); !slices.Equal(got, want) {
				t.Errorf("rows = %v, want %v", got, want)
			}
		})
	}
}

func TestUnsupportedTypeIsAnError(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	_, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT 1 AS ok, INTERVAL 1 DAY AS span"})
	if err == nil || !strings.Contains(err.Error(), `column "span"`) {
		t.Fatalf("err = %v, want one naming column span", err)
	}
}

func TestManyChunks(t *testing.T) {
	src := openTest(t)
	query := "SELECT * FROM people"
	_, got := fetch(t, src, stores.FetchRequest{SQL: query})
	if want := reference(t, src, query); len(got) != 5000 || !slices.Equal(got, want) {
		t.Fatalf("got %d rows, want the %d of the reference", len(got), len(want))
	}
}

func int64s(mem memory.Allocator, vals []int64, valid []bool) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func strs(mem memory.Allocator, vals []string, valid []bool) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func TestKeyPushdown(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	many := make([]int64, 0, 1200)
	for i := int64(-100); i < 1100; i++ { // includes missing keys below 1
		many = append(many, i)
	}
	cases := []struct {
		name   string
		sql    string
		col    string
		keys   arrow.Array
		refSQL string
	}{
		{"no keys", "SELECT id, name FROM people", "id", int64s(mem, []int64{}, nil),
			"SELECT id, name FROM people WHERE false"},
		{"one key", "SELECT id, name FROM people", "id", int64s(mem, []int64{7}, nil),
			"SELECT id, name FROM people WHERE id = 7"},
		{"missing key", "SELECT id, name FROM people", "id", int64s(mem, []int64{99999}, nil),
			"SELECT id, name FROM people WHERE false"},
		{"null and duplicate keys", "SELECT id, name FROM people", "id", int64s(mem, []int64{3, 0, 3, 9}, []bool{true, false, true, true}),
			"SELECT id, name FROM people WHERE id IN (3, 9)"},
		{"many keys", "SELECT id, name FROM people", "id", int64s(mem, many, nil),
			"SELECT id, name FROM people WHERE id BETWEEN 1 AND 1099"},
		{"string keys on a renamed column", "SELECT hid AS user_id, score FROM people;\n-- trailing comment", "user_id",
			strs(mem, []string{"p1", "p2", "nobody"}, nil),
			"SELECT hid, score FROM people WHERE hid IN ('p1', 'p2')"},
		{"quoted key column", `SELECT id AS "odd ""col""" FROM people`, `odd "col"`, int64s(mem, []int64{5}, nil),
			"SELECT id FROM people WHERE id = 5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer c.keys.Release()
			schema, got := fetch(t, src, stores.FetchRequest{SQL: c.sql, KeyColumn: c.col, Keys: c.keys})
			if schema.NumFields() != 2 && c.col != `odd "col"` {
				t.Errorf("schema = %s, want the resolver's two columns", schema)
			}
			if want := reference(t, src, c.refSQL); !slices.Equal(got, want) {
				t.Errorf("got %d rows %.200v, want %d rows %.200v", len(got), got, len(want), want)
			}
		})
	}
}

func TestParams(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	ids := int64s(mem, []int64{1, 2, 30, 40}, nil)
	defer ids.Release()
	_, got := fetch(t, src, stores.FetchRequest{
		SQL:       "SELECT id, seen_at FROM people WHERE seen_at <= $1 AND id = ANY($2)",
		Params:    []stores.ParamValue{{Time: now}, {Values: ids}},
		KeyColumn: "id",
		Keys:      ids,
	})
	want := reference(t, src, "SELECT id, seen_at FROM people WHERE seen_at <= TIMESTAMPTZ '2024-01-02 00:00:00+00' AND id IN (1, 2)")
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSchemaCasts(t *testing.T) {
	src := openTest(t)
	want := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.PrimitiveTypes.Float64},
		{Name: "d", Type: arrow.PrimitiveTypes.Int64},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64)},
		{Name: "absent", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	query := "SELECT id, id::INTEGER AS n, 2.0::DECIMAL(4,1) AS d, [id, NULL]::SMALLINT[] AS l, name FROM people WHERE id IN (1, 3)"
	schema, got := fetch(t, src, stores.FetchRequest{SQL: query, Schema: want})
	for _, f := range want.Fields()[:4] {
		if i := schema.FieldIndices(f.Name); len(i) != 1 || !arrow.TypeEqual(schema.Field(i[0]).Type, f.Type) {
			t.Errorf("column %s: schema %s, want %s", f.Name, schema, f.Type)
		}
	}
	ref := reference(t, src, "SELECT id::VARCHAR, id::DOUBLE, 2::BIGINT, [id::DOUBLE, NULL], name FROM people WHERE id IN (1, 3)")
	if !slices.Equal(got, ref) {
		t.Errorf("got %v, want %v", got, ref)
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bad := arrow.NewSchema([]arrow.Field{{Name: "name", Type: arrow.FixedWidthTypes.Date32}}, nil)
	if _, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT name FROM people", Schema: bad}); err == nil || !strings.Contains(err.Error(), `column "name"`) {
		t.Errorf("impossible cast: err = %v, want one naming the column", err)
	}
}

func TestErrors(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	keys := int64s(mem, []int64{1}, nil)
	defer keys.Release()
	cases := []struct {
		name, want string
		req        stores.FetchRequest
	}{
		{"syntax", "syntax error", stores.FetchRequest{SQL: "SELEC id FROM people"}},
		{"unknown table", "peeple", stores.FetchRequest{SQL: "SELECT id FROM peeple"}},
		{"unknown key column", "nope", stores.FetchRequest{SQL: "SELECT id FROM people", KeyColumn: "nope", Keys: keys}},
		{"key column without keys", "without keys", stores.FetchRequest{SQL: "SELECT id FROM people", KeyColumn: "id"}},
		{"runtime error", "Conversion Error", stores.FetchRequest{SQL: "SELECT 'x'::INTEGER AS v"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, err := src.Fetch(context.Background(), mem, c.req)
			if err == nil {
				rec.Release()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	slow := stores.FetchRequest{SQL: "SELECT count(*) AS n FROM range(1000000000000) a"}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Fetch(ctx, mem, slow); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: err = %v, want context.Canceled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := src.Fetch(ctx, mem, slow); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled during: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the query ran %v after its deadline", d)
	}
	// The source still answers after an interrupted query.
	_, got := fetch(t, src, stores.FetchRequest{SQL: "SELECT count(*) AS n FROM people"})
	if !slices.Equal(got, []string{"5000"}) {
		t.Errorf("after cancellation: %v", got)
	}
}

func TestConcurrentFetch(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			keys := int64s(mem, []int64{int64(g + 1), int64(g + 100)}, nil)
			defer keys.Release()
			rec, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT id FROM people", KeyColumn: "id", Keys: keys})
			if err != nil {
				errs <- err
				return
			}
			defer rec.Release()
			ids := rec.Column(0).(*array.Int64).Int64Values()
			slices.Sort(ids)
			if !slices.Equal(ids, []int64{int64(g + 1), int64(g + 100)}) {
				errs <- fmt.Errorf("goroutine %d: ids %v", g, ids)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOpenFile(t *testing.T) {
	path := t.TempDir() + "/f.duckdb"
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.DB().Exec("CREATE TABLE t AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	src.Close()
	src, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, got := fetch(t, src, stores.FetchRequest{SQL: "SELECT x FROM t"}); !slices.Equal(got, []string{"1"}) {
		t.Errorf("reopened: %v", got)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("opening a directory: no error")
	}
}

// TestKeyedFetchProjects checks that a keyed fetch with a schema answers
// only the schema's columns (so a table's unused columns are never read).
func TestKeyedFetchProjects(t *testing.T) {
	src := openTest(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ids := int64s(mem, []int64{3, 1, 7}, nil)
	defer ids.Release()
	schema, got := fetch(t, src, stores.FetchRequest{
		SQL:       "SELECT id, name, score FROM people",
		KeyColumn: "id",
		Keys:      ids,
		Schema:    arrow.NewSchema([]arrow.Field{{Name: "score", Type: arrow.PrimitiveTypes.Float64}, {Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil),
	})
	if schema.NumFields() != 2 || schema.Field(0).Name != "score" || schema.Field(1).Name != "id" {
		t.Fatalf("schema %v, want score, id", schema)
	}
	want := reference(t, src, "SELECT score, id FROM people WHERE id IN (1, 3, 7)")
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// OpenReadOnly creates nothing, reads what is there and writes nothing.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.duckdb")
	if src, err := OpenReadOnly(missing); err == nil {
		src.Close()
		t.Error("OpenReadOnly opened a missing file")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly made %s (%v)", missing, err)
	}
	path := filepath.Join(dir, "db.duckdb")
	rw, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.DB().Exec(`CREATE TABLE t AS SELECT 7::BIGINT AS x`); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	src, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var x int64
	if err := src.DB().QueryRow(`SELECT x FROM t`).Scan(&x); err != nil || x != 7 {
		t.Errorf("read %d, %v; want 7", x, err)
	}
	if _, err := src.DB().Exec(`CREATE TABLE u (y BIGINT)`); err == nil {
		t.Error("a read-only database took a CREATE TABLE")
	}
}
