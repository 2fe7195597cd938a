package offline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
	"github.com/fletch-engine/fletch/stores/offline"
)

// These tests log values through real queries at several times, change
// the source's rows, then ask an offline query for the values served at
// the time (recompute_features=False): its answer must equal both what
// the earlier queries answered and an as-of join computed independently
// with the store's own SQL (a window function over the log's table).

// accountSource is the repository of testdata/accounts (features of each
// kind the log serves back: a column, an expression, a window; and an
// etl_offline_to_online one) over a fresh in-memory DuckDB.
func accountSource(t *testing.T) (*features.Graph, *duckdb.Source) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/accounts")); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	exec(t, src, "CREATE TABLE accounts (id BIGINT, name VARCHAR, score DOUBLE, tier VARCHAR)",
		"INSERT INTO accounts VALUES (1, 'ada', 0.5, 'gold'), (2, 'bob', 0.25, NULL), (3, NULL, 0.75, 'silver'), (4, 'dan', 1, 'tin')",
		"CREATE TABLE payments (id BIGINT, account_id BIGINT, amount DOUBLE, paid_at TIMESTAMPTZ)",
		"INSERT INTO payments VALUES (1, 1, 5, TIMESTAMPTZ '2026-01-09 23:00:00+00'), (2, 2, 1.5, TIMESTAMPTZ '2026-01-09 12:00:00+00')")
	return g, src
}

func exec(t *testing.T, src *duckdb.Source, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := src.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	t1 = time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	t2 = time.Date(2026, 1, 11, 0, 0, 0, 0, time.UTC)
)

// spineRow is one input row of an offline query: a key (0: null) at a time.
type spineRow struct {
	id int64
	at time.Time
}

// runAccounts runs outputs for rows: with an __as_of__ column when
// asOf, else at opts.Now.
func runAccounts(t *testing.T, e *planner.Engine, mem memory.Allocator, rows []spineRow, asOf bool, outputs []string, opts planner.RunOptions) (*planner.Result, error) {
	t.Helper()
	ids := array.NewInt64Builder(mem)
	defer ids.Release()
	times := array.NewTimestampBuilder(mem, features.TimestampType)
	defer times.Release()
	for _, r := range rows {
		if r.id == 0 {
			ids.AppendNull()
		} else {
			ids.Append(r.id)
		}
		times.Append(arrow.Timestamp(r.at.UnixMicro()))
	}
	fields := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	cols := []arrow.Array{ids.NewArray()}
	if asOf {
		fields = append(fields, arrow.Field{Name: statement.AsOfColumn, Type: features.TimestampType})
		cols = append(cols, times.NewArray())
	}
	in := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(len(rows)))
	for _, c := range cols {
		c.Release()
	}
	defer in.Release()
	st := &statement.Statement{Class: e.Graph().Class("account"), Inputs: fields}
	for _, o := range outputs {
		st.Outputs = append(st.Outputs, statement.Output{Expr: &expr.Ref{Path: strings.Split(o, ".")}, Name: o})
	}
	p, err := e.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(context.Background(), in, opts)
}

// asOfReference is the as-of answer of the log for feature of account at
// each spine row, by the store's own SQL: the latest row observed at or
// before the row's time (ties: the greatest trace_id), nil where none.
func asOfReference(t *testing.T, b backend, feature string, dt arrow.DataType, rows []spineRow) []any {
	t.Helper()
	var values []string
	for i, r := range rows {
		values = append(values, fmt.Sprintf("('%d', TIMESTAMPTZ '%s', %d)", r.id, r.at.Format("2006-01-02 15:04:05.999999-07:00"), i))
	}
	got := b.query(t, `WITH spine(k, t, r) AS (VALUES `+strings.Join(values, ", ")+`),
ranked AS (
	SELECT s.r, `+b.typed(dt)+` AS v, row_number() OVER (PARTITION BY s.r ORDER BY l.observed_at DESC, l.trace_id DESC) AS n
	FROM spine s JOIN fletch_feature_log l ON l.entity_key = s.k AND l.observed_at <= s.t
	WHERE l.class = 'account' AND l.feature = $1
)
SELECT r, v FROM ranked WHERE n = 1`, "account."+feature)
	out := make([]any, len(rows))
	for _, r := range got {
		var i int64
		switch v := r[0].(type) {
		case int32:
			i = int64(v)
		case int64:
			i = v
		default:
			t.Fatalf("row index is %T", r[0])
		}
		out[i] = r[1]
	}
	return out
}

func TestDuckDBOfflineStoreAsSource(t *testing.T) { testAsSource(t, duckdbBackend(t)) }

func TestPostgresOfflineStoreAsSource(t *testing.T) { testAsSource(t, postgresBackend(t)) }

func testAsSource(t *testing.T, b backend) {
	g, src := accountSource(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	logger := offline.NewLogger(b.sink, offline.Options{})
	defer logger.Close()
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, planner.WithOfflineLog(logger))
	outputs := []string{"name", "score", "label", "spent__86400__"}

	// What was served: accounts 1-3 at t1; the rows change; 1 and 2 at
	// t2; they change again.
	served := map[string][]any{} // "id@time/output" → value
	serve := func(at time.Time, ids ...int64) {
		var rows []spineRow
		for _, id := range ids {
			rows = append(rows, spineRow{id, at})
		}
		res, err := runAccounts(t, e, mem, rows, false, outputs, planner.RunOptions{Now: at})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		for j, o := range outputs {
			for i, id := range ids {
				served[fmt.Sprintf("%d@%s/%s", id, at.Format(time.RFC3339), o)] = []any{operators.GoValue(res.Record.Column(j), i)}
			}
		}
	}
	serve(t1, 1, 2, 3)
	exec(t, src, "UPDATE accounts SET name = 'ada2', score = 0.125 WHERE id = 1",
		"UPDATE accounts SET score = 2 WHERE id = 2",
		"INSERT INTO payments VALUES (3, 1, 7, TIMESTAMPTZ '2026-01-10 23:00:00+00')")
	serve(t2, 1, 2)
	exec(t, src, "UPDATE accounts SET name = 'ada3', score = 9 WHERE id IN (1, 3)")
	logger.Flush()
	if s := logger.Stats(); s.Failed > 0 || s.Dropped > 0 {
		t.Fatalf("logging failed: %+v", s)
	}

	spine := []spineRow{
		{1, t1.Add(-time.Second)}, // before anything was logged: null
		{1, t1},                   // exactly when logged
		{1, t1.Add(time.Hour)},    // between: the t1 values
		{2, t2.Add(-time.Microsecond)},
		{1, t2},
		{3, t2.Add(time.Hour)}, // not served at t2: its t1 values
		{2, t2.Add(48 * time.Hour)},
		{4, t2}, // never served: null
		{0, t2}, // a null key: an all-null row
		{1, t1},
	}
	// servedAt is the time whose values row r must answer (zero: none).
	servedAt := []time.Time{{}, t1, t1, t1, t2, t1, t2, {}, {}, t1}

	t.Run("recompute_features=False answers the values served at the time", func(t *testing.T) {
		res, err := runAccounts(t, e, mem, spine, true, outputs, planner.RunOptions{Now: t2.Add(72 * time.Hour), FromLog: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		for j, o := range outputs {
			col := res.Record.Column(j)
			ref := asOfReference(t, b, o, col.DataType(), spine)
			for i, r := range spine {
				got := operators.GoValue(col, i)
				if r.id == 0 {
					ref[i] = nil // the reference's '0' names no logged key either
				}
				if !sameValue(ref[i], got) {
					t.Errorf("%s of row %d (%d at %s): %v, the log's as-of answer is %v", o, i, r.id, r.at, got, ref[i])
				}
				var want any
				if !servedAt[i].IsZero() {
					want = served[fmt.Sprintf("%d@%s/%s", r.id, servedAt[i].Format(time.RFC3339), o)][0]
				}
				if !sameValue(want, got) {
					t.Errorf("%s of row %d (%d at %s): %v, served then: %v", o, i, r.id, r.at, got, want)
				}
			}
		}
		if got := operators.GoValue(res.Record.Column(0), 2); got != "ada" {
			t.Errorf("account 1's name at t1+1h: %v, want the value served then, ada", got)
		}
		if len(res.NullKeys) != 1 || res.NullKeys[0] != 8 {
			t.Errorf("null keys %v, want [8]", res.NullKeys)
		}
	})

	t.Run("recomputing answers the sources as they are now", func(t *testing.T) {
		res, err := runAccounts(t, e, mem, spine, true, outputs, planner.RunOptions{Now: t2.Add(72 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		now := markettest.Rows(t, must(src.DB().Query("SELECT id, name, score FROM accounts")))
		current := map[int64][]any{}
		for _, r := range now {
			current[r[0].(int64)] = r[1:]
		}
		for i, r := range spine {
			if r.id == 0 {
				continue
			}
			if got, want := operators.GoValue(res.Record.Column(0), i), current[r.id][0]; !sameValue(want, got) {
				t.Errorf("name of row %d (%d): %v, the source holds %v", i, r.id, got, want)
			}
			if got, want := operators.GoValue(res.Record.Column(1), i), current[r.id][1]; !sameValue(want, got) {
				t.Errorf("score of row %d (%d): %v, the source holds %v", i, r.id, got, want)
			}
		}
		// The window is recomputed as of each row: account 1's payment of
		// 7 at t2 − 1h is not in its window at t1 + 1h.
		if got := operators.GoValue(res.Record.Column(3), 2); got != 5.0 {
			t.Errorf("spent__86400__ of account 1 at t1+1h: %v, want 5", got)
		}
	})

	t.Run("recompute_features=[name] recomputes that output alone", func(t *testing.T) {
		res, err := runAccounts(t, e, mem, spine, true, outputs, planner.RunOptions{Now: t2, FromLog: true, Recompute: []string{"account.name"}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		if got := operators.GoValue(res.Record.Column(0), 2); got != "ada3" {
			t.Errorf("recomputed name: %v, want the source's ada3", got)
		}
		if got := operators.GoValue(res.Record.Column(1), 2); got != 0.5 {
			t.Errorf("logged score: %v, want 0.5 (served at t1)", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		_, err := runAccounts(t, e, mem, spine[:1], true, []string{"name"}, planner.RunOptions{FromLog: true, Recompute: []string{"nmae"}})
		var se *statement.Error
		if !errors.As(err, &se) || se.Kind != statement.InvalidInput || !strings.Contains(se.Msg, `"nmae"`) || se.Suggestion != "name" {
			t.Errorf("a misspelt recompute_features name: %v (suggestion %q)", err, suggestionOf(err))
		}
		plain := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
		_, err = runAccounts(t, plain, mem, spine[:1], true, []string{"name"}, planner.RunOptions{FromLog: true})
		if !errors.As(err, &se) || se.Kind != statement.Unsupported || !strings.Contains(se.Msg, "offline_store:") {
			t.Errorf("no offline store: %v", err)
		}
	})
}

func suggestionOf(err error) string {
	var se *statement.Error
	if errors.As(err, &se) {
		return se.Suggestion
	}
	return ""
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestReverseETL: an offline query writes its etl_offline_to_online
// features to the online store, each observed at its row's time, and
// never over a value the store observed later.
func TestReverseETL(t *testing.T) {
	g, src := accountSource(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	store := onlinemem.New()
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, planner.WithOnlineStore(store))
	defer e.Close()

	// Account 2 was served online at t2 + 1h: newer than the offline rows.
	online := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, planner.WithOnlineStore(store))
	defer online.Close()
	exec(t, src, "UPDATE accounts SET tier = 'online' WHERE id = 2")
	res, err := runAccounts(t, online, mem, []spineRow{{2, t2.Add(time.Hour)}}, false, []string{"tier"},
		planner.RunOptions{Now: t2.Add(time.Hour), Staleness: map[string]time.Duration{"account.tier": time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	online.Flush()
	exec(t, src, "UPDATE accounts SET tier = 'offline' WHERE id = 2")

	spine := []spineRow{{1, t1}, {1, t2}, {2, t2}, {3, t1}, {4, time.Now().Add(time.Hour)}, {0, t1}}
	res, err = runAccounts(t, e, mem, spine, true, []string{"tier", "name"}, planner.RunOptions{Now: t2})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	e.Flush()

	keys := array.NewInt64Builder(mem)
	keys.AppendValues([]int64{1, 2, 3, 4}, nil)
	k := keys.NewArray()
	keys.Release()
	defer k.Release()
	got, err := store.Get(context.Background(), mem, "account", k, arrow.NewSchema([]arrow.Field{
		{Name: "tier", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "name", Type: arrow.BinaryTypes.String, Nullable: true}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	want := []struct {
		tier     any
		observed time.Time // zero: nothing stored
	}{
		{"gold", t2},                  // the latest of its rows
		{"online", t2.Add(time.Hour)}, // the online value is newer: kept
		{"silver", t1},
		{nil, time.Time{}}, // a row after the clock is not written
	}
	for i, w := range want {
		tier, obs := operators.GoValue(got.Values.Column(0), i), got.Observed[0].(*array.Timestamp)
		if !sameValue(w.tier, tier) {
			t.Errorf("account %d: tier %v in the online store, want %v", i+1, tier, w.tier)
		}
		switch {
		case w.observed.IsZero() && obs.IsValid(i):
			t.Errorf("account %d: stored, want nothing", i+1)
		case !w.observed.IsZero() && (!obs.IsValid(i) || obs.Value(i) != arrow.Timestamp(w.observed.UnixMicro())):
			t.Errorf("account %d: observed %v, want %s", i+1, obs.ValueStr(i), w.observed)
		}
		if got.Observed[1].IsValid(i) {
			t.Errorf("account %d: name (not etl_offline_to_online) was written", i+1)
		}
	}
}

func TestDuckDBAsOfTies(t *testing.T) { testAsOfTies(t, duckdbBackend(t)) }

func TestPostgresAsOfTies(t *testing.T) { testAsOfTies(t, postgresBackend(t)) }

// testAsOfTies: values logged for one key and feature at one instant are
// told apart by the greatest trace_id — a logged null included —, alike
// in both stores; a later observation wins over any trace id.
func testAsOfTies(t *testing.T, b backend) {
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	rows := []offline.Row{
		{Class: "user", Key: "1", Feature: "user.a", Value: []byte(`1`), Observed: at, TraceID: "a"},
		{Class: "user", Key: "1", Feature: "user.a", Value: []byte(`2`), Observed: at, TraceID: "c"},
		{Class: "user", Key: "1", Feature: "user.a", Value: []byte(`3`), Observed: at, TraceID: "b"},
		{Class: "user", Key: "2", Feature: "user.a", Value: []byte(`4`), Observed: at, TraceID: "a"},
		{Class: "user", Key: "2", Feature: "user.a", Observed: at, TraceID: "z"}, // a logged null
		{Class: "user", Key: "3", Feature: "user.a", Value: []byte(`5`), Observed: at, TraceID: "z"},
		{Class: "user", Key: "3", Feature: "user.a", Value: []byte(`6`), Observed: at.Add(time.Microsecond), TraceID: "a"},
	}
	if err := b.sink.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	logger := offline.NewLogger(b.sink, offline.Options{})
	defer logger.Close()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	kb := array.NewInt64Builder(mem)
	kb.AppendValues([]int64{1, 2, 3, 3}, nil)
	keys := kb.NewArray()
	kb.Release()
	defer keys.Release()
	us := at.UnixMicro()
	got, err := logger.AsOf(context.Background(), mem, "user", keys, []int64{us, us, us, us + 1},
		arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	want := []any{int64(2), nil, int64(5), int64(6)}
	obs := got.Observed[0].(*array.Timestamp)
	for i, w := range want {
		if v := operators.GoValue(got.Values.Column(0), i); !sameValue(w, v) || !obs.IsValid(i) {
			t.Errorf("row %d: %v (observed %s), want %v", i, v, obs.ValueStr(i), w)
		}
	}
}
