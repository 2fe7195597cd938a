package planner_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// These tests run the marketplace example on generated data and compare
// every aggregation and windowed feature with the same quantity computed
// by DuckDB SQL over the same tables: the reference is the database, not
// fletch.

// spineRow is one input row: an entity key and the time it is evaluated at.
type spineRow struct {
	key string
	at  time.Time
}

// spine returns rows for keys 1..n plus a missing key, at several times
// around the anchor: at it, just before window edges, and after it.
func spine(n int) []spineRow {
	a := marketplace.DefaultAnchor
	times := []time.Time{a, a.Add(-7 * 24 * time.Hour), a.Add(-30*24*time.Hour + time.Microsecond), a.Add(36 * time.Hour), a.Add(-24 * time.Hour)}
	var rows []spineRow
	for i := 1; i <= n; i++ {
		rows = append(rows, spineRow{fmt.Sprint(i), times[i%len(times)]})
	}
	// Every time for the entity that carries the edge cases, a missing
	// key, and a repeated one.
	for _, at := range times {
		rows = append(rows, spineRow{"1", at})
	}
	return append(rows, spineRow{"999999", a}, spineRow{"2", a})
}

func runQuery(t *testing.T, e *planner.Engine, mem memory.Allocator, class string, rows []spineRow, outputs []string) arrow.RecordBatch {
	t.Helper()
	kb := array.NewStringBuilder(mem)
	defer kb.Release()
	tb := array.NewTimestampBuilder(mem, features.TimestampType)
	defer tb.Release()
	for _, r := range rows {
		kb.Append(r.key)
		tb.Append(arrow.Timestamp(r.at.UnixMicro()))
	}
	keys, times := kb.NewArray(), tb.NewArray()
	defer keys.Release()
	defer times.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}, {Name: statement.AsOfColumn, Type: features.TimestampType}}, nil)
	in := array.NewRecordBatch(schema, []arrow.Array{keys, times}, int64(len(rows)))
	defer in.Release()
	q := &statement.Statement{Class: e.Graph().Class(class), Inputs: in.Schema().Fields()}
	for _, o := range outputs {
		q.Outputs = append(q.Outputs, statement.Output{Expr: &expr.Ref{Path: strings.Split(o, ".")}})
	}
	rec, err := e.Execute(context.Background(), q, in)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// reference runs query over a `spine(i, id, t)` table holding rows and
// returns one row of values per spine row, in order.
func reference(t *testing.T, db *sql.DB, rows []spineRow, query string) [][]any {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var values []string
	for i, r := range rows {
		values = append(values, fmt.Sprintf("(%d, '%s', TIMESTAMPTZ '%s')", i, r.key, r.at.Format("2006-01-02 15:04:05.999999Z07:00")))
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE spine AS SELECT * FROM (VALUES "+strings.Join(values, ",")+") AS v(i, id, t)"); err != nil {
		t.Fatal(err)
	}
	res, err := conn.QueryContext(ctx, query+" ORDER BY s.i")
	if err != nil {
		t.Fatalf("reference query: %v", err)
	}
	out := markettest.Rows(t, res)
	if len(out) != len(rows) {
		t.Fatalf("reference returned %d rows for %d spine rows", len(out), len(rows))
	}
	return out
}

// check compares column col of rec with reference column ref (values, or
// for a []any reference cell, any of the candidates: ties of max_by).
func check(t *testing.T, rec arrow.RecordBatch, rows []spineRow, ref [][]any, col string, refCol int, tol float64) {
	t.Helper()
	idx := rec.Schema().FieldIndices(col)
	if len(idx) != 1 {
		t.Fatalf("no output column %s in %s", col, rec.Schema())
	}
	arr := rec.Column(idx[0])
	bad := 0
	for i := range rows {
		got := operators.GoValue(arr, i)
		want := ref[i][refCol]
		if !matches(got, want, tol) {
			bad++
			if bad <= 5 {
				t.Errorf("%s for %s at %s: got %v, DuckDB says %v", col, rows[i].key, rows[i].at.Format(time.RFC3339), got, want)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d rows differ", col, bad, len(rows))
	}
}

func matches(got, want any, tol float64) bool {
	if cands, ok := want.([]any); ok {
		for _, c := range cands {
			if matches(got, c, tol) {
				return true
			}
		}
		return false
	}
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	gf, gok := number(got)
	wf, wok := number(want)
	if gok && wok {
		if tol == 0 {
			return gf == wf
		}
		return math.Abs(gf-wf) <= tol*math.Max(1, math.Abs(wf))
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

const day = "INTERVAL 1 DAY"

func TestUserFeaturesMatchDuckDB(t *testing.T) {
	src, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	rows := spine(1000)
	outs := []string{"full_name", "average_rating_given", "review_count__604800__", "review_count__2592000__", "review_count__5184000__",
		"average_purchase_price", "total_spend__2592000__", "total_spend__7776000__", "email"}
	rec := runQuery(t, e, mem, "user", rows, outs)
	defer rec.Release()
	reviews := func(cond string) string {
		return "(SELECT count(*) FROM marketplace_reviews r WHERE r.user_hid = s.id AND r.created_at <= s.t AND " + cond + ")"
	}
	spend := func(days int) string {
		return fmt.Sprintf("(SELECT coalesce(sum(value), 0) FROM marketplace_item_prices p WHERE p.buyer_hid = s.id AND p.kind = 'purchase' AND p.created_at <= s.t AND p.created_at > s.t - %d * %s)", days, day)
	}
	ref := reference(t, src.DB(), rows, `SELECT
		u.first_name || ' ' || u.last_name,
		(SELECT avg(star_rating) FROM marketplace_reviews r WHERE r.user_hid = s.id AND r.created_at <= s.t),
		`+reviews("r.created_at > s.t - 7 * "+day)+`,
		`+reviews("r.created_at > s.t - 30 * "+day)+`,
		`+reviews("r.created_at > s.t - 60 * "+day)+`,
		(SELECT avg(value) FROM marketplace_item_prices p WHERE p.buyer_hid = s.id AND p.kind = 'purchase' AND p.created_at <= s.t),
		`+spend(30)+`, `+spend(90)+`,
		u.email
		FROM spine s LEFT JOIN marketplace_users u ON u.hid = s.id AND u.created_at <= s.t`)
	for i, o := range outs {
		check(t, rec, rows, ref, o, i, 1e-9)
	}
}

func TestItemAggregationsMatchDuckDB(t *testing.T) {
	src, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	rows := spine(500)
	outs := []string{"times_purchased", "average_price", "most_recent_price", "lowest_price", "is_discounted",
		"average_rating", "rating_stddev", "total_reviews", "most_recent_review_rating",
		"review_count__604800__", "review_count__2592000__", "review_count__7776000__",
		"purchase_count__86400__", "purchase_count__604800__", "purchase_count__2592000__",
		"purchase_value__86400__", "purchase_value__2592000__",
		"max_purchase_price__604800__", "max_purchase_price__2592000__",
		"average_purchase_value__604800__", "average_purchase_value__2592000__"}
	rec := runQuery(t, e, mem, "item", rows, outs)
	defer rec.Release()
	prices := func(agg, cond string) string {
		return fmt.Sprintf("(SELECT %s FROM marketplace_item_prices p WHERE p.item_id = s.id AND p.created_at <= s.t%s)", agg, cond)
	}
	revs := func(agg, cond string) string {
		return fmt.Sprintf("(SELECT %s FROM marketplace_reviews r WHERE r.item_id = s.id AND r.created_at <= s.t%s)", agg, cond)
	}
	purchases := func(days int) string {
		return fmt.Sprintf(" AND p.kind = 'purchase' AND p.created_at > s.t - %d * %s", days, day)
	}
	// max_by over tied sort keys may pick any of the tied rows' values.
	latest := func(table, value, alias, cond string) string {
		return fmt.Sprintf(`(SELECT list(%[2]s) FROM %[1]s x WHERE x.%[3]s = s.id AND x.created_at <= s.t AND %[2]s IS NOT NULL AND x.created_at =
			(SELECT max(created_at) FROM %[1]s y WHERE y.%[3]s = s.id AND y.created_at <= s.t AND y.%[2]s IS NOT NULL)%[4]s)`, table, value, alias, cond)
	}
	ref := reference(t, src.DB(), rows, `SELECT
		`+prices("count(*)", " AND p.kind = 'purchase'")+`,
		`+prices("avg(value)", "")+`,
		`+latest("marketplace_item_prices", "value", "item_id", "")+`,
		`+prices("min(value)", "")+`,
		i.list_price < `+prices("avg(value)", "")+`,
		`+revs("avg(star_rating)", "")+`,
		`+revs("stddev_samp(star_rating)", "")+`,
		`+revs("count(*)", "")+`,
		`+latest("marketplace_reviews", "star_rating", "item_id", "")+`,
		`+revs("count(*)", " AND r.created_at > s.t - 7 * "+day)+`,
		`+revs("count(*)", " AND r.created_at > s.t - 30 * "+day)+`,
		`+revs("count(*)", " AND r.created_at > s.t - 90 * "+day)+`,
		`+prices("count(*)", purchases(1))+`,
		`+prices("count(*)", purchases(7))+`,
		`+prices("count(*)", purchases(30))+`,
		`+prices("coalesce(sum(value), 0)", purchases(1))+`,
		`+prices("coalesce(sum(value), 0)", purchases(30))+`,
		`+prices("max(value)", purchases(7))+`,
		`+prices("max(value)", purchases(30))+`,
		`+prices("coalesce(sum(value), 0) / nullif(count(*), 0)", purchases(7))+`,
		`+prices("coalesce(sum(value), 0) / nullif(count(*), 0)", purchases(30))+`
		FROM spine s LEFT JOIN marketplace_items i ON i.id = s.id`)
	for i, o := range outs {
		check(t, rec, rows, ref, o, i, 1e-9)
	}
}

// TestUserItemMatchesDuckDB checks the tutorial's derived-key class: inputs
// are (user_id, item_id) pairs, values come through two has-one relations.
func TestUserItemMatchesDuckDB(t *testing.T) {
	src, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	const n = 1000
	ub := array.NewStringBuilder(mem)
	ib := array.NewStringBuilder(mem)
	var pairs []string
	for i := 0; i < n; i++ {
		u, it := fmt.Sprint(1+(i*37)%1000), fmt.Sprint(1+(i*13)%500)
		ub.Append(u)
		ib.Append(it)
		pairs = append(pairs, fmt.Sprintf("(%d, '%s', '%s')", i, u, it))
	}
	uarr, iarr := ub.NewArray(), ib.NewArray()
	ub.Release()
	ib.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}, {Name: "item_id", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{uarr, iarr}, n)
	uarr.Release()
	iarr.Release()
	defer in.Release()
	q := &statement.Statement{Class: e.Graph().Class("user_item"), Inputs: in.Schema().Fields(), Options: statement.Options{Now: marketplace.DefaultAnchor}}
	outs := []string{"id", "price_diff", "price_diff_ratio", "price_fit", "item.title", "user.full_name"}
	for _, o := range outs {
		q.Outputs = append(q.Outputs, statement.Output{Expr: &expr.Ref{Path: strings.Split(o, ".")}})
	}
	rec, err := e.Execute(context.Background(), q, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != n {
		t.Fatalf("%d rows for %d inputs", rec.NumRows(), n)
	}
	db := src.DB()
	if _, err := db.Exec("CREATE OR REPLACE TABLE pairs AS SELECT * FROM (VALUES " + strings.Join(pairs, ",") + ") AS v(i, u, it)"); err != nil {
		t.Fatal(err)
	}
	at := "TIMESTAMPTZ '" + marketplace.DefaultAnchor.Format("2006-01-02 15:04:05Z07:00") + "'"
	res, err := db.Query(`WITH
		recent AS (SELECT item_id, value, created_at FROM marketplace_item_prices WHERE created_at <= ` + at + ` AND value IS NOT NULL),
		mrp AS (SELECT item_id, max(created_at) AS m FROM recent GROUP BY item_id),
		mrpv AS (SELECT r.item_id, list(r.value) AS vs FROM recent r JOIN mrp ON mrp.item_id = r.item_id AND r.created_at = mrp.m GROUP BY r.item_id),
		app AS (SELECT buyer_hid, avg(value) AS a FROM marketplace_item_prices WHERE kind = 'purchase' AND created_at <= ` + at + ` GROUP BY buyer_hid)
		SELECT p.u || '-' || p.it, mrpv.vs, app.a, i.title, u.first_name || ' ' || u.last_name
		FROM pairs p LEFT JOIN mrpv ON mrpv.item_id = p.it LEFT JOIN app ON app.buyer_hid = p.u
		LEFT JOIN marketplace_items i ON i.id = p.it LEFT JOIN marketplace_users u ON u.hid = p.u ORDER BY p.i`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
	row := 0
	for ; res.Next(); row++ {
		var id, title, name sql.NullString
		var recent any
		var avg sql.NullFloat64
		if err := res.Scan(&id, &recent, &avg, &title, &name); err != nil {
			t.Fatal(err)
		}
		if got := operators.GoValue(col("id"), row); got != id.String {
			t.Errorf("row %d id %v, want %s", row, got, id.String)
		}
		if got := operators.GoValue(col("item.title"), row); !matches(got, nullable(title), 0) {
			t.Errorf("row %d item.title %v, want %v", row, got, nullable(title))
		}
		if got := operators.GoValue(col("user.full_name"), row); !matches(got, nullable(name), 0) {
			t.Errorf("row %d user.full_name %v, want %v", row, got, nullable(name))
		}
		// price_diff = |most recent price - average purchase price|; with
		// tied most recent prices any of them is right.
		var cands []any
		if vs, ok := recent.([]any); ok && avg.Valid {
			for _, v := range vs {
				d := math.Abs(v.(float64) - avg.Float64)
				cands = append(cands, d)
			}
		}
		got := operators.GoValue(col("price_diff"), row)
		if cands == nil {
			if got != nil {
				t.Errorf("row %d price_diff %v, want null", row, got)
			}
			continue
		}
		if !matches(got, cands, 1e-9) {
			t.Errorf("row %d price_diff %v, want one of %v", row, got, cands)
			continue
		}
		ratio := got.(float64) / avg.Float64
		if !matches(operators.GoValue(col("price_diff_ratio"), row), ratio, 1e-9) {
			t.Errorf("row %d price_diff_ratio %v, want %v", row, operators.GoValue(col("price_diff_ratio"), row), ratio)
		}
		if !matches(operators.GoValue(col("price_fit"), row), 1/(1+ratio*ratio), 1e-9) {
			t.Errorf("row %d price_fit %v, want %v", row, operators.GoValue(col("price_fit"), row), 1/(1+ratio*ratio))
		}
	}
	if row != n {
		t.Fatalf("reference gave %d rows", row)
	}
}

func nullable(s sql.NullString) any {
	if !s.Valid {
		return nil
	}
	return s.String
}
