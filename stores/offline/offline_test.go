package offline_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
	"github.com/fletch-engine/fletch/stores/offline"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// These tests run the marketplace example through planner.Engine with a
// Logger over a real offline store, then read the log back with the
// store's own SQL (which parses the logged JSON and casts it to the
// feature's type) and compare it with the values the queries answered.

// backend is an offline store under test: the sink, a query over the
// database it writes to, how it casts a logged value to a SQL type, and a
// way to make it unreachable.
type backend struct {
	sink  offline.Sink
	query func(t *testing.T, sql string, args ...any) [][]any
	// typed is the SQL reading column value as the type of dt.
	typed func(dt arrow.DataType) string
	// text is the SQL reading the text at path (object keys and array
	// indexes) inside column value.
	text func(path ...string) string
	kill func()
}

func duckdbBackend(t testing.TB) backend {
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sink, err := offline.OpenDuckDB(context.Background(), db.DB(), "")
	if err != nil {
		t.Fatal(err)
	}
	return backend{
		sink: sink,
		query: func(t *testing.T, q string, args ...any) [][]any {
			t.Helper()
			rows, err := db.DB().Query(q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			return markettest.Rows(t, rows)
		},
		typed: func(dt arrow.DataType) string {
			return "CAST(value->>'$' AS " + sqlType(dt, "DOUBLE", "BIGINT", "VARCHAR") + ")"
		},
		text: func(path ...string) string {
			p := "$"
			for _, k := range path {
				if strings.Trim(k, "0123456789") == "" {
					p += "[" + k + "]"
				} else {
					p += "." + k
				}
			}
			return "(value->>'" + p + "')"
		},
		kill: func() { db.Close() },
	}
}

func postgresBackend(t testing.TB) backend {
	dsn := pgtest.DSN(t)
	proxy, proxied := pgtest.StartProxy(t, dsn)
	ctx := context.Background()
	sink, err := offline.OpenPostgres(ctx, proxied, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return backend{
		sink: sink,
		query: func(t *testing.T, q string, args ...any) [][]any {
			t.Helper()
			rows, err := conn.Query(ctx, q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out [][]any
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, vals)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		},
		typed: func(dt arrow.DataType) string {
			return "CAST(value #>> '{}' AS " + sqlType(dt, "double precision", "bigint", "text") + ")"
		},
		text: func(path ...string) string { return "(value #>> '{" + strings.Join(path, ",") + "}')" },
		kill: proxy.Stop,
	}
}

func sqlType(dt arrow.DataType, float, integer, text string) string {
	switch dt.ID() {
	case arrow.FLOAT64:
		return float
	case arrow.INT64:
		return integer
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.DATE32:
		return "DATE"
	case arrow.TIMESTAMP:
		return "TIMESTAMPTZ"
	}
	return text
}

func TestDuckDBLogsComputedValues(t *testing.T) { testLog(t, duckdbBackend(t)) }

func TestPostgresLogsComputedValues(t *testing.T) { testLog(t, postgresBackend(t)) }

// query is one run: string inputs by column, outputs by name.
type query struct {
	class   string
	inputs  map[string][]string
	outputs []string
	asOf    bool // an __as_of__ column at the run's time
	opts    planner.RunOptions
}

func run(t *testing.T, e *planner.Engine, mem memory.Allocator, q query) *planner.Result {
	t.Helper()
	var fields []arrow.Field
	var cols []arrow.Array
	n := 0
	for _, name := range sortedKeys(q.inputs) {
		b := array.NewStringBuilder(mem)
		b.AppendValues(q.inputs[name], nil)
		cols = append(cols, b.NewArray())
		b.Release()
		fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String})
		n = len(q.inputs[name])
	}
	if q.asOf {
		b := array.NewTimestampBuilder(mem, features.TimestampType)
		for range n {
			b.Append(arrow.Timestamp(q.opts.Now.UnixMicro()))
		}
		cols = append(cols, b.NewArray())
		b.Release()
		fields = append(fields, arrow.Field{Name: statement.AsOfColumn, Type: features.TimestampType})
	}
	in := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	defer in.Release()
	shape := &statement.Statement{Class: e.Graph().Class(q.class), Inputs: fields}
	for _, o := range q.outputs {
		shape.Outputs = append(shape.Outputs, statement.Output{Expr: &expr.Ref{Path: strings.Split(o, ".")}, Name: o})
	}
	p, err := e.Prepare(shape)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), in, q.opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sortedKeys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// logged reads what trace logged for class.feature, by entity key.
func logged(t *testing.T, b backend, trace, class, feature string, dt arrow.DataType) map[string]any {
	t.Helper()
	got := map[string]any{}
	for _, r := range b.query(t, "SELECT entity_key, "+b.typed(dt)+" FROM fletch_feature_log WHERE trace_id = $1 AND class = $2 AND feature = $3",
		trace, class, class+"."+feature) {
		key := r[0].(string)
		if _, dup := got[key]; dup {
			t.Errorf("%s.%s: key %s logged twice by one run", class, feature, key)
		}
		got[key] = r[1]
	}
	return got
}

func count(t *testing.T, b backend, where string, args ...any) int64 {
	t.Helper()
	rows := b.query(t, "SELECT count(*) FROM fletch_feature_log WHERE "+where, args...)
	switch n := rows[0][0].(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	}
	t.Fatalf("count is %T", rows[0][0])
	return 0
}

// sameValue compares a value the query answered with the one read back.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case float64:
		g, ok := got.(float64)
		return ok && (g == w || math.Abs(g-w) <= 1e-12*math.Abs(w))
	case time.Time:
		g, ok := got.(time.Time)
		return ok && g.Equal(w)
	}
	return fmt.Sprint(want) == fmt.Sprint(got)
}

// checkLogged asserts every cell of the outputs of res that are features
// of class (by name, or a has-one path "rel.feature" whose class and keys
// are given) was logged by trace with the value the query answered.
func checkLogged(t *testing.T, b backend, trace string, res *planner.Result, class string, outputs []string, keys []string) {
	t.Helper()
	for j, name := range outputs {
		col := res.Record.Column(j)
		got := logged(t, b, trace, class, name, col.DataType())
		for i, key := range keys {
			want := operators.GoValue(col, i)
			g, ok := got[key]
			if !ok {
				t.Errorf("%s.%s for %s: not logged", class, name, key)
				continue
			}
			if !sameValue(want, g) {
				t.Errorf("%s.%s for %s: logged %v (%T), the query answered %v", class, name, key, g, g, want)
			}
		}
	}
}

func testLog(t *testing.T, b backend) {
	src, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	logger := offline.NewLogger(b.sink, offline.Options{})
	defer logger.Close()
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, planner.WithOnlineStore(onlinemem.New()), planner.WithOfflineLog(logger))
	now := marketplace.DefaultAnchor

	t.Run("every computed feature of the input rows, as answered", func(t *testing.T) {
		ids := []string{"1", "2", "50", "999999"}
		outputs := []string{"full_name", "first_name", "email", "birthday", "created_at", "average_rating_given",
			"review_count__604800__", "review_count__2592000__", "total_spend__2592000__", "name_email_sim"}
		before := logger.Stats().Written
		res := run(t, e, mem, query{class: "user", inputs: map[string][]string{"id": ids}, outputs: outputs,
			opts: planner.RunOptions{Now: now, TraceID: "users"}})
		defer res.Release()
		e.Flush()
		checkLogged(t, b, "users", res, "user", outputs, ids)
		// last_name was computed for full_name: logged though not asked for.
		if got := logged(t, b, "users", "user", "last_name", arrow.BinaryTypes.String); len(got) != len(ids) {
			t.Errorf("last_name logged for %d users, want %d", len(got), len(ids))
		}
		if n := count(t, b, "trace_id = $1 AND feature = 'user.id'", "users"); n != 0 {
			t.Errorf("the key was logged as a feature %d times", n)
		}
		if n := count(t, b, "trace_id = $1 AND observed_at <> $2", "users", now); n != 0 {
			t.Errorf("%d values not observed at the run's time", n)
		}
		all := count(t, b, "trace_id = $1", "users")
		if s := logger.Stats(); s.Written-before != all || s.Dropped != 0 || s.Failed != 0 {
			t.Errorf("stats %+v: %d written by this run, %d rows in the table", s, s.Written-before, all)
		}
	})

	t.Run("has-one rows: each related entity under its own class", func(t *testing.T) {
		users, items := []string{"50", "7", "50"}, []string{"200", "3", "9"}
		outputs := []string{"affordability_cap", "price_fit", "price_diff"}
		res := run(t, e, mem, query{class: "user_item", inputs: map[string][]string{"user_id": users, "item_id": items},
			outputs: append(outputs, "item.genre_from_llm", "user.average_purchase_price", "item.most_recent_price"),
			opts:    planner.RunOptions{Now: now, TraceID: "user-items"}})
		defer res.Release()
		e.Flush()
		keys := make([]string, len(users))
		for i := range users {
			keys[i] = users[i] + "-" + items[i]
		}
		checkLogged(t, b, "user-items", res, "user_item", outputs, keys)
		for j, path := range []string{"item.genre_from_llm", "user.average_purchase_price", "item.most_recent_price"} {
			col := res.Record.Column(len(outputs) + j)
			class, name, _ := strings.Cut(path, ".")
			got := logged(t, b, "user-items", class, name, col.DataType())
			for i := range users {
				key := items[i]
				if class == "user" {
					key = users[i]
				}
				if want := operators.GoValue(col, i); !sameValue(want, got[key]) {
					t.Errorf("%s for %s: logged %v, the query answered %v", path, key, got[key], want)
				}
			}
			distinct := map[string]bool{}
			for _, k := range map[string][]string{"user": users, "item": items}[class] {
				distinct[k] = true
			}
			if len(got) != len(distinct) {
				t.Errorf("%s logged for %d entities, want %d (one per distinct key)", path, len(got), len(distinct))
			}
		}
	})

	t.Run("values served from the online store are not logged again", func(t *testing.T) {
		q := query{class: "item", inputs: map[string][]string{"id": {"3", "4", "5"}}, outputs: []string{"genre_from_llm", "title"},
			opts: planner.RunOptions{Now: now, TraceID: "cold", Staleness: map[string]time.Duration{"item.title": time.Hour}}}
		res := run(t, e, mem, q)
		res.Release()
		e.Flush()
		if n := count(t, b, "trace_id = 'cold' AND feature IN ('item.genre_from_llm', 'item.title')"); n != 6 {
			t.Errorf("cold run logged %d values, want 6", n)
		}
		q.opts.TraceID, q.opts.Now, q.opts.Meta = "warm", now.Add(time.Minute), true
		res = run(t, e, mem, q)
		defer res.Release()
		e.Flush()
		for j, h := range res.Hits {
			if h.NullN() != 0 || h.(*array.Boolean).Value(0) == false {
				t.Fatalf("output %d was not served from the online store", j)
			}
		}
		if n := count(t, b, "trace_id = 'warm'"); n != 0 {
			t.Errorf("a run served from the online store logged %d values", n)
		}
	})

	t.Run("point-in-time runs are not logged", func(t *testing.T) {
		res := run(t, e, mem, query{class: "user", inputs: map[string][]string{"id": {"1", "2"}}, outputs: []string{"full_name", "review_count__604800__"},
			asOf: true, opts: planner.RunOptions{Now: now, TraceID: "as-of"}})
		defer res.Release()
		e.Flush()
		if n := count(t, b, "trace_id = 'as-of'"); n != 0 {
			t.Errorf("a point-in-time run logged %d values", n)
		}
	})

	t.Run("a dead offline store costs no answers", func(t *testing.T) {
		q := query{class: "user", inputs: map[string][]string{"id": {"1", "2"}}, outputs: []string{"full_name", "review_count__604800__"},
			opts: planner.RunOptions{Now: now, TraceID: "alive"}}
		alive := run(t, e, mem, q)
		defer alive.Release()
		e.Flush()
		b.kill()
		failed := logger.Stats().Failed
		q.opts.TraceID = "dead"
		dead := run(t, e, mem, q)
		defer dead.Release()
		e.Flush()
		if !array.RecordEqual(alive.Record, dead.Record) {
			t.Errorf("answered %v with the offline store down, %v with it up", dead.Record, alive.Record)
		}
		// first_name and last_name are logged too: 4 features of 2 users.
		if s := logger.Stats(); s.Failed-failed != 8 {
			t.Errorf("stats %+v: want the run's 8 values failed", s)
		}
	})
}

func TestDuckDBValueTypes(t *testing.T) { testValueTypes(t, duckdbBackend(t)) }

func TestPostgresValueTypes(t *testing.T) { testValueTypes(t, postgresBackend(t)) }

// testValueTypes logs a value of each type fletch answers and reads it
// back with the database's JSON operators.
func testValueTypes(t *testing.T, b backend) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "at", Type: features.TimestampType, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "pair", Type: arrow.StructOf(arrow.Field{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	}, nil)
	rb := array.NewRecordBuilder(mem, schema)
	defer rb.Release()
	rb.Field(0).(*array.Float64Builder).AppendValues([]float64{0.1, math.NaN(), math.Inf(-1), -1e300}, nil)
	strs := []string{`quote " and \ backslash`, "line\nnext\ttab\x01", "é€😀", "nul\x00end"}
	rb.Field(1).(*array.StringBuilder).AppendValues(strs, nil)
	rb.Field(2).(*array.BooleanBuilder).AppendValues([]bool{true, false, true, false}, []bool{true, true, false, true})
	rb.Field(3).(*array.Date32Builder).AppendValues([]arrow.Date32{arrow.Date32FromTime(ts), 0, -1, 20000}, nil)
	rb.Field(4).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(ts.UnixMicro()), 0, 1, -1}, nil)
	lb := rb.Field(5).(*array.ListBuilder)
	for _, tags := range [][]string{{"a", "b\"c"}, {}, nil, {"x"}} {
		if tags == nil {
			lb.AppendNull()
			continue
		}
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).AppendValues(tags, nil)
	}
	sb := rb.Field(6).(*array.StructBuilder)
	for i := range 4 {
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int64Builder).Append(int64(i) * math.MaxInt32 * 4)
		sb.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprint("n", i))
	}
	rec := rb.NewRecordBatch()
	kb := array.NewInt64Builder(mem)
	kb.AppendValues([]int64{1, 2, 3, 4}, nil)
	keys := kb.NewArray()
	kb.Release()
	logger := offline.NewLogger(b.sink, offline.Options{})
	defer logger.Close()
	logger.Log(&stores.ComputedValues{Class: "c", Keys: keys, Values: rec, Observed: ts, TraceID: "types"})
	logger.Flush()
	if s := logger.Stats(); s.Written != 28 || s.Failed != 0 {
		t.Fatalf("stats %+v, want 28 written", s)
	}

	read := func(feature, expr string) map[string]any {
		t.Helper()
		got := map[string]any{}
		for _, r := range b.query(t, "SELECT entity_key, "+expr+" FROM fletch_feature_log WHERE trace_id = 'types' AND feature = $1", "c."+feature) {
			got[r[0].(string)] = r[1]
		}
		return got
	}
	floats := read("f", b.typed(arrow.PrimitiveTypes.Float64))
	if floats["1"] != 0.1 || !math.IsNaN(floats["2"].(float64)) || !math.IsInf(floats["3"].(float64), -1) || floats["4"] != -1e300 {
		t.Errorf("floats read back as %v", floats)
	}
	texts := read("s", b.typed(arrow.BinaryTypes.String))
	for i, s := range strs {
		want := strings.ReplaceAll(s, "\x00", "\uFFFD")
		if got := texts[fmt.Sprint(i+1)]; got != want {
			t.Errorf("string %q read back as %q, want %q", s, got, want)
		}
	}
	if got := read("ok", b.typed(arrow.FixedWidthTypes.Boolean)); got["1"] != true || got["2"] != false || got["3"] != nil || got["4"] != false {
		t.Errorf("booleans read back as %v", got)
	}
	dates := read("d", b.typed(arrow.FixedWidthTypes.Date32))
	for k, want := range map[string]time.Time{"1": ts.Truncate(24 * time.Hour), "2": time.Unix(0, 0), "3": time.Unix(-86400, 0), "4": time.Unix(20000*86400, 0)} {
		if g, ok := dates[k].(time.Time); !ok || !g.Equal(want) {
			t.Errorf("date %s read back as %v, want %v", k, dates[k], want)
		}
	}
	times := read("at", b.typed(features.TimestampType))
	for k, want := range map[string]time.Time{"1": ts.Truncate(time.Microsecond), "2": time.UnixMicro(0), "3": time.UnixMicro(1), "4": time.UnixMicro(-1)} {
		if g, ok := times[k].(time.Time); !ok || !g.Equal(want) {
			t.Errorf("timestamp %s read back as %v, want %v", k, times[k], want)
		}
	}
	if got := read("tags", b.text("1")); got["1"] != `b"c` || got["2"] != nil || got["3"] != nil || got["4"] != nil {
		t.Errorf("second list elements read back as %v", got)
	}
	if got := read("tags", b.text("0")); got["4"] != "x" {
		t.Errorf("first list element read back as %v", got)
	}
	for i := range 4 {
		k := fmt.Sprint(i + 1)
		if got := read("pair", b.text("n"))[k]; got != fmt.Sprint(int64(i)*math.MaxInt32*4) {
			t.Errorf("pair.n of %s read back as %v", k, got)
		}
		if got := read("pair", b.text("name"))[k]; got != fmt.Sprint("n", i) {
			t.Errorf("pair.name of %s read back as %v", k, got)
		}
	}
}

// TestQueueFullDropsAndCounts holds a lock on the log's table so the
// writer waits: Log must still return at once, dropping what the queue
// cannot hold, and count it.
func TestQueueFullDropsAndCounts(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	sink, err := offline.OpenPostgres(ctx, dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	// BatchRows 1: each write takes one batch, so the writer holds one.
	logger := offline.NewLogger(sink, offline.Options{Queue: 1, BatchRows: 1})
	defer logger.Close()
	locker, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE fletch_feature_log IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	const n = 6
	for i := range n {
		kb := array.NewInt64Builder(mem)
		kb.Append(int64(i))
		keys := kb.NewArray()
		kb.Release()
		vb := array.NewFloat64Builder(mem)
		vb.Append(float64(i))
		vals := vb.NewArray()
		vb.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil), []arrow.Array{vals}, 1)
		vals.Release()
		logger.Log(&stores.ComputedValues{Class: "c", Keys: keys, Values: rec, Observed: time.Now(), TraceID: "full"})
	}
	// One batch is with the blocked writer at most, one in the queue.
	if s := logger.Stats(); s.Dropped < n-2 || s.Written != 0 {
		t.Errorf("while the table is locked: %+v, want at least %d dropped", s, n-2)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	logger.Flush()
	var rows int64
	if err := locker.QueryRow(ctx, "SELECT count(*) FROM fletch_feature_log").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if s := logger.Stats(); s.Written+s.Dropped != n || s.Written != rows || s.Failed != 0 {
		t.Errorf("after the lock: %+v, %d rows in the table", s, rows)
	}
}
