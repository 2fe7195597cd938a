package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

const peopleTable = `
CREATE TABLE people AS
SELECT i::int8 AS id, 'p' || i AS hid, CASE WHEN i % 3 = 0 THEN NULL ELSE 'name ' || i END AS name,
       (i * 1.5)::numeric(10,1) AS score, TIMESTAMPTZ '2024-01-01 00:00:00+00' + make_interval(hours => i) AS seen_at
FROM generate_series(1, 5000) i;
CREATE INDEX ON people (id);
CREATE INDEX ON people (hid);`

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

// TestKeysPushedDown checks Fetch's rows against the same question asked
// of Postgres directly, with the keys spelled out.
func TestKeysPushedDown(t *testing.T) {
	src := openTest(t, Options{}, peopleTable)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	now := time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		req    stores.FetchRequest
		keys   func() arrow.Array
		ref    string
		refArg []any
	}{
		{"int keys, a duplicate, a null and a missing one",
			stores.FetchRequest{SQL: "SELECT id, name, score FROM people", KeyColumn: "id"},
			func() arrow.Array {
				return int64s(mem, []int64{1, 2, 2, 0, 99999}, []bool{true, true, true, false, true})
			},
			"SELECT id, name, score FROM people WHERE id IN (1, 2)", nil},
		{"string keys through a renamed column",
			stores.FetchRequest{SQL: "select hid as key, id from people", KeyColumn: "key"},
			func() arrow.Array { return strs(mem, []string{"p7", "p3", "nope"}, nil) },
			"SELECT hid, id FROM people WHERE hid IN ('p7', 'p3')", nil},
		{"string keys over an integer column (id: str over BIGINT)",
			stores.FetchRequest{SQL: "SELECT id, hid FROM people", KeyColumn: "id",
				Schema: arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil)},
			func() arrow.Array { return strs(mem, []string{"5", "x", "4999"}, nil) },
			"SELECT id::text FROM people WHERE id IN (5, 4999)", nil},
		{"no keys",
			stores.FetchRequest{SQL: "SELECT id, name FROM people", KeyColumn: "id"},
			func() arrow.Array { return int64s(mem, nil, nil) },
			"SELECT id, name FROM people WHERE false", nil},
		{"${now} parameter, a trailing semicolon and comment",
			stores.FetchRequest{SQL: "SELECT id, seen_at FROM people WHERE seen_at <= $1;\n-- the end\n", KeyColumn: "id",
				Params: []stores.ParamValue{{Time: now}}},
			func() arrow.Array { return int64s(mem, []int64{1, 47, 48, 49}, nil) },
			"SELECT id, seen_at FROM people WHERE seen_at <= $1 AND id IN (1, 47, 48, 49)", []any{now}},
		{"a list parameter",
			stores.FetchRequest{SQL: "SELECT id FROM people WHERE hid = ANY($1)"},
			nil,
			"SELECT id FROM people WHERE hid IN ('p1', 'p9')", nil},
		{"no key column: every row",
			stores.FetchRequest{SQL: "SELECT id, name, score, seen_at FROM people"},
			nil,
			"SELECT id, name, score, seen_at FROM people", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			if c.keys != nil {
				req.Keys = c.keys()
				defer req.Keys.Release()
			}
			if strings.Contains(c.name, "list parameter") {
				p := strs(mem, []string{"p1", "p9", ""}, []bool{true, true, false})
				defer p.Release()
				req.Params = []stores.ParamValue{{Values: p}}
			}
			rec, err := src.Fetch(context.Background(), mem, req)
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			got := recordRows(rec)
			want := referenceRows(t, src, c.ref, c.refArg...)
			if !slices.Equal(got, want) {
				t.Errorf("rows\n got %v\nwant %v", got, want)
			}
		})
	}
}

// recordRows renders rec's rows sorted, cells as Go prints the Arrow
// values (timestamps as UTC times).
func recordRows(rec arrow.RecordBatch) []string {
	rows := make([]string, rec.NumRows())
	for i := range rows {
		var cells []string
		for _, col := range rec.Columns() {
			switch a := col.(type) {
			case *array.Timestamp:
				if a.IsValid(i) {
					cells = append(cells, time.UnixMicro(int64(a.Value(i))).UTC().String())
					continue
				}
			}
			cells = append(cells, col.ValueStr(i))
		}
		rows[i] = strings.Join(cells, "|")
	}
	slices.Sort(rows)
	return rows
}

// referenceRows runs query through pgx's own scanning, independently of
// Fetch, and renders its rows as recordRows does.
func referenceRows(t *testing.T, src *Source, query string, args ...any) []string {
	t.Helper()
	rows, err := src.Pool().Query(context.Background(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				cells[i] = array.NullValueStr
			case time.Time:
				cells[i] = v.UTC().String()
			case interface{ Float64Value() (pgtype.Float8, error) }:
				f, _ := v.Float64Value()
				cells[i] = fmt.Sprint(f.Float64)
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, "|"))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	slices.Sort(out)
	return out
}

// TestSchemaCasts asks for columns in other types than their natural ones,
// as the planner does for a feature's annotation.
func TestSchemaCasts(t *testing.T) {
	dsn := pgtest.DSN(t)
	src := openTest(t, Options{DSN: dsn}, typesTable)
	ctx := context.Background()
	ref, err := pgx.Connect(ctx, pgtest.WithParam(dsn, "timezone", "UTC"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close(ctx)
	want := arrow.NewSchema([]arrow.Field{
		{Name: "i4", Type: arrow.PrimitiveTypes.Float64},
		{Name: "i8", Type: arrow.BinaryTypes.String},
		{Name: "n", Type: arrow.BinaryTypes.String},
		{Name: "n2", Type: arrow.BinaryTypes.String},
		{Name: "n0", Type: arrow.BinaryTypes.String},
		{Name: "ai", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64)},
		{Name: "an", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, err := src.Fetch(ctx, mem, stores.FetchRequest{SQL: "SELECT r, i4, i8, n, n2, n0, ai, an FROM v ORDER BY r", Schema: want})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	for i, f := range rec.Schema().Fields()[1:] {
		t.Run(f.Name, func(t *testing.T) {
			if w := want.Field(i).Type; !arrow.TypeEqual(f.Type, w) {
				t.Fatalf("type %s, want %s", f.Type, w)
			}
			checkColumn(t, ref, "v", f.Name, rec.Column(i+1))
		})
	}

	// Integral numerics (sum() over integers) and timestamps from dates.
	rec2, err := src.Fetch(ctx, mem, stores.FetchRequest{
		SQL: "SELECT sum(i8 / 4) AS total, d AS day FROM v WHERE r = 1 GROUP BY d",
		Schema: arrow.NewSchema([]arrow.Field{
			{Name: "total", Type: arrow.PrimitiveTypes.Int64}, {Name: "day", Type: features.TimestampType}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer rec2.Release()
	if got, want := recordRows(rec2), []string{"2251799813685248|2024-02-29 00:00:00 +0000 UTC"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestFetchErrors(t *testing.T) {
	src := openTest(t, Options{Name: "warehouse"}, typesTable+`;
		CREATE TABLE odd AS SELECT 1 AS id, gen_random_uuid() AS u, interval '1 day' AS span, 1.5::numeric AS frac, 'x'::text AS s, ARRAY[[1,2],[3,4]] AS grid;`)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		name string
		req  stores.FetchRequest
		want []string
	}{
		{"a type fletch has no feature type for", stores.FetchRequest{SQL: "SELECT id, u FROM odd"},
			[]string{"postgres source warehouse", `column "u" has type uuid`, "cast it in the resolver's SQL"}},
		{"interval", stores.FetchRequest{SQL: "SELECT span FROM odd"},
			[]string{`column "span" has type interval`}},
		{"a fraction asked as an integer", stores.FetchRequest{SQL: "SELECT frac FROM odd",
			Schema: arrow.NewSchema([]arrow.Field{{Name: "frac", Type: arrow.PrimitiveTypes.Int64}}, nil)},
			[]string{`column "frac"`, "1.5 is not a whole number"}},
		{"text asked as an integer", stores.FetchRequest{SQL: "SELECT s FROM odd",
			Schema: arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.PrimitiveTypes.Int64}}, nil)},
			[]string{`column "s": cannot convert Postgres text to int64`}},
		{"a two-dimensional array", stores.FetchRequest{SQL: "SELECT grid FROM odd"},
			[]string{`column "grid"`, "2-dimensional array"}},
		{"an unknown table", stores.FetchRequest{SQL: "SELECT * FROM nope"},
			[]string{"postgres source warehouse", `relation "nope" does not exist`}},
		{"an unknown key column", stores.FetchRequest{SQL: "SELECT id FROM odd", KeyColumn: "idd", Keys: int64s(mem, []int64{1}, nil)},
			[]string{`column _r.idd does not exist`}},
		{"a key column without keys", stores.FetchRequest{SQL: "SELECT id FROM odd", KeyColumn: "id"},
			[]string{`key column "id" given without keys`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.req.Keys != nil {
				defer c.req.Keys.Release()
			}
			rec, err := src.Fetch(context.Background(), mem, c.req)
			if err == nil {
				rec.Release()
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestTimeouts checks that the resolver's timeout, the source's
// statement_timeout and the caller's context each end the query on the
// server, and that the source keeps working afterwards.
func TestTimeouts(t *testing.T) {
	dsn := pgtest.DSN(t)
	src := openTest(t, Options{DSN: dsn, Name: "slow"}, "")
	limited := openTest(t, Options{DSN: dsn, Name: "limited", StatementTimeout: 200 * time.Millisecond}, "")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cancelled, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	cases := []struct {
		name   string
		src    *Source
		ctx    context.Context
		req    stores.FetchRequest
		want   string
		target error
	}{
		{"resolver timeout", src, context.Background(),
			stores.FetchRequest{SQL: "SELECT 1 AS x FROM pg_sleep(30) /* resolver timeout */", Timeout: 200 * time.Millisecond},
			"postgres source slow: the query took longer than the resolver's timeout (200ms) and was cancelled", nil},
		{"statement timeout", limited, context.Background(),
			stores.FetchRequest{SQL: "SELECT 1 AS x FROM pg_sleep(30) /* statement timeout */"},
			"postgres source limited: the query took longer than the source's statement_timeout", nil},
		{"caller gives up", src, cancelled,
			stores.FetchRequest{SQL: "SELECT 1 AS x FROM pg_sleep(30) /* caller gives up */"},
			"postgres source slow: context canceled", context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			rec, err := c.src.Fetch(c.ctx, mem, c.req)
			if err == nil {
				rec.Release()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if c.target != nil && !errors.Is(err, c.target) {
				t.Errorf("error %q is not %v", err, c.target)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
			// The server stopped the query, not only the client.
			marker := c.req.SQL[strings.Index(c.req.SQL, "/*"):]
			deadline := time.Now().Add(5 * time.Second)
			for {
				var n int
				if err := src.Pool().QueryRow(context.Background(),
					"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'", marker).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the query is still running on the server")
				}
				time.Sleep(50 * time.Millisecond)
			}
			// And the source still answers.
			rec, err = c.src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT 1 AS x"})
			if err != nil {
				t.Fatal(err)
			}
			rec.Release()
		})
	}
}

func TestServerGoesAwayAndComesBack(t *testing.T) {
	dsn := pgtest.DSN(t)
	p, proxied := pgtest.StartProxy(t, dsn)
	src := openTest(t, Options{DSN: proxied, Name: "flaky"}, "")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fetch := func() error {
		rec, err := src.Fetch(context.Background(), mem, stores.FetchRequest{SQL: "SELECT 1 AS x"})
		if err == nil {
			rec.Release()
		}
		return err
	}
	if err := fetch(); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	err := fetch()
	if err == nil || !strings.Contains(err.Error(), "postgres source flaky: the database is unreachable") {
		t.Fatalf("while down: %v", err)
	}
	p.Start(t)
	// The pool's connection died with the server; the next query gets a
	// new one without anyone restarting anything.
	if err := fetch(); err != nil {
		t.Fatalf("after the server came back: %v", err)
	}
	// A restart between two queries: the pooled connection is dead but
	// looks idle and fresh; the query still succeeds.
	p.Stop()
	p.Start(t)
	if err := fetch(); err != nil {
		t.Fatalf("after a quick restart: %v", err)
	}

	// A server that is not there at all.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr)
	ln.Close()
	_, err = Open(context.Background(), Options{DSN: pgtest.WithParam(pgtest.WithParam(dsn, "host", "127.0.0.1"), "port", fmt.Sprint(dead.Port)), Name: "nowhere"})
	if err == nil || !strings.Contains(err.Error(), "postgres source nowhere: cannot connect") {
		t.Fatalf("dead port: %v", err)
	}
}
