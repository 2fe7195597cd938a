package relational_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/sql"
)

// at is the evaluation time of the tests: the fixture's anchor, after
// which it holds events no query at it may see.
var at = marketplace.DefaultAnchor

// run answers text through the relational engine (and checks that it is
// relational), as rows of Go values, with the column names.
func run(t *testing.T, e *relational.Engine, text string) ([]string, [][]any, error) {
	t.Helper()
	_, graph := markettest.Fixture(t)
	st, rel, err := sql.ParseQuery(graph, text)
	if err != nil {
		return nil, nil, err
	}
	if st != nil {
		t.Fatalf("%s: read as a lookup", text)
	}
	q, err := e.Prepare(context.Background(), rel)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, f := range q.Schema().Fields() {
		names = append(names, f.Name)
	}
	var rows [][]any
	err = q.Run(context.Background(), at, func(rec arrow.RecordBatch) error {
		if !rec.Schema().Equal(q.Schema()) {
			return fmt.Errorf("batch schema %s, prepared %s", rec.Schema(), q.Schema())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]any, rec.NumCols())
			for j, c := range rec.Columns() {
				v := operators.GoValue(c, i)
				if s, ok := v.(string); ok {
					v = strings.Clone(s) // DuckDB's memory goes with the batch
				}
				row[j] = v
			}
			rows = append(rows, row)
		}
		return nil
	})
	return names, rows, err
}

func engine(t *testing.T, mem memory.Allocator, opts ...relational.Option) *relational.Engine {
	t.Helper()
	src, graph := markettest.Fixture(t)
	pe := planner.NewEngine(graph, markettest.OneSource{Src: src}, mem)
	t.Cleanup(pe.Close)
	e, err := relational.New(pe, mem, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func reference(t *testing.T, query string) [][]any {
	t.Helper()
	src, _ := markettest.Fixture(t)
	rows, err := src.DB().Query(query)
	if err != nil {
		t.Fatalf("reference: %v\n%s", err, query)
	}
	return markettest.Rows(t, rows)
}

func same(got, want any) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	if g, ok := num(got); ok {
		w, ok := num(want)
		return ok && math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
	}
	if g, ok := got.(time.Time); ok {
		w, ok := want.(time.Time)
		return ok && g.Equal(w)
	}
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func num(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case int32:
		return float64(v), true
	case float64:
		return v, true
	}
	var f float64
	if _, err := fmt.Sscan(fmt.Sprint(v), &f); err == nil {
		if _, isStr := v.(string); !isStr {
			return f, true
		}
	}
	return 0, false
}

func compare(t *testing.T, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, DuckDB over the source says %d\ngot  %v\nwant %v", len(got), len(want), head(got), head(want))
	}
	bad := 0
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("row %d: %d columns, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			if !same(got[i][j], want[i][j]) {
				if bad++; bad < 8 {
					t.Errorf("row %d column %d: got %v, want %v", i, j, got[i][j], want[i][j])
				}
			}
		}
	}
}

func head(rows [][]any) [][]any { return rows[:min(len(rows), 5)] }

func TestAgainstDuckDB(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := engine(t, mem, relational.WithPageRows(100))
	ts := "TIMESTAMPTZ '" + at.Format("2006-01-02 15:04:05") + "+00'"
	for _, c := range []struct {
		name, query, want string
	}{
		{"select 1", "SELECT 1", "SELECT 1"},
		{"browse", `SELECT id, title, price, genre_from_llm FROM item LIMIT 7`,
			"SELECT id, title, list_price, genre FROM marketplace_items ORDER BY id LIMIT 7"},
		{"browse all pages", `SELECT id, title FROM item`,
			"SELECT id, title FROM marketplace_items ORDER BY id"},
		{"group by", `SELECT genre_from_llm, COUNT(*), AVG(price) FROM item GROUP BY genre_from_llm ORDER BY 2 DESC, 1`,
			"SELECT genre, count(*), avg(list_price) FROM marketplace_items GROUP BY genre ORDER BY 2 DESC, 1"},
		{"where 1=0", `SELECT * FROM "user" WHERE 1=0`, "SELECT 1 WHERE false"},
		{"pushed filter and limit", `SELECT id, price FROM item WHERE price > 50 AND genre_from_llm = 'books' LIMIT 3`,
			"SELECT id, list_price FROM marketplace_items WHERE list_price > 50 AND genre = 'books' ORDER BY id LIMIT 3"},
		{"superset wrapper", `SELECT genre_from_llm AS g, n FROM (SELECT genre_from_llm, count(*) AS n FROM item GROUP BY 1) AS virtual_table ORDER BY n DESC, g LIMIT 1000`,
			"SELECT genre AS g, count(*) AS n FROM marketplace_items GROUP BY 1 ORDER BY n DESC, g"},
		{"join on item_id", `SELECT i.title, count(*) AS n, avg(r.star_rating) FROM review r JOIN item i ON r.item_id = i.id GROUP BY i.title ORDER BY n DESC, i.title LIMIT 10`,
			"SELECT i.title, count(*) AS n, avg(r.star_rating) FROM marketplace_reviews r JOIN marketplace_items i ON r.item_id = i.id WHERE r.created_at <= " + ts + " GROUP BY i.title ORDER BY n DESC, i.title LIMIT 10"},
		{"computed features ordered", `SELECT id, total_reviews, average_rating FROM item ORDER BY total_reviews DESC, id LIMIT 5`,
			"SELECT i.id, count(r.id) AS n, avg(r.star_rating) FROM marketplace_items i LEFT JOIN marketplace_reviews r ON r.item_id = i.id AND r.created_at <= " + ts + " GROUP BY i.id ORDER BY n DESC, i.id LIMIT 5"},
		{"filter on a computed feature", `SELECT count(*) FROM item WHERE total_reviews > 40 AND price < 100`,
			"SELECT count(*) FROM marketplace_items i WHERE list_price < 100 AND (SELECT count(*) FROM marketplace_reviews r WHERE r.item_id = i.id AND r.created_at <= " + ts + ") > 40"},
		{"or over features", `SELECT id FROM item WHERE price < 20 OR genre_from_llm IS NULL ORDER BY id`,
			"SELECT id FROM marketplace_items WHERE list_price < 20 OR genre IS NULL ORDER BY id"},
		{"as of", `SELECT count(*) FROM review WHERE __as_of__ = '2024-05-01T00:00:00Z'`,
			"SELECT count(*) FROM marketplace_reviews WHERE created_at <= TIMESTAMPTZ '2024-05-01 00:00:00+00'"},
		// __as_of__ is a point in time as in a lookup: windows are exact
		// (t − w < time ≤ t), not online serving's aligned window of a
		// materialized feature (review_count has 1-day buckets): a review
		// at exactly t − 7d was counted.
		{"windows as of", `SELECT id, review_count__604800__, review_count__2592000__ FROM "user" WHERE __as_of__ = '` + at.Format(time.RFC3339) + `' ORDER BY id`,
			"SELECT u.hid, (SELECT count(*) FROM marketplace_reviews r WHERE r.user_hid = u.hid AND r.created_at <= " + ts + " AND r.created_at > " + ts + " - INTERVAL 7 DAY), " +
				"(SELECT count(*) FROM marketplace_reviews r WHERE r.user_hid = u.hid AND r.created_at <= " + ts + " AND r.created_at > " + ts + " - INTERVAL 30 DAY) " +
				"FROM marketplace_users u WHERE u.created_at <= " + ts + " ORDER BY u.hid"},
		{"cte and window", `WITH r AS (SELECT item_id, star_rating FROM review) SELECT item_id, sum(star_rating) OVER (PARTITION BY item_id) AS s FROM r ORDER BY s DESC, item_id LIMIT 3`,
			"WITH r AS (SELECT item_id, star_rating FROM marketplace_reviews WHERE created_at <= " + ts + ") SELECT item_id, sum(star_rating) OVER (PARTITION BY item_id) AS s FROM r ORDER BY s DESC, item_id LIMIT 3"},
		{"has-one path", `SELECT id, "item.title" FROM review ORDER BY id LIMIT 4`,
			"SELECT r.id, i.title FROM marketplace_reviews r JOIN marketplace_items i ON i.id = r.item_id WHERE r.created_at <= " + ts + " ORDER BY r.id LIMIT 4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, got, err := run(t, e, c.query)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, got, reference(t, c.want))
		})
	}
}

func TestNotListable(t *testing.T) {
	e := engine(t, memory.NewGoAllocator())
	_, _, err := run(t, e, `SELECT price_fit FROM user_item LIMIT 3`)
	if err == nil || !strings.Contains(err.Error(), "1:23: the rows of user_item cannot be listed") ||
		!strings.Contains(err.Error(), "name the rows in WHERE: user_id = <value> AND item_id = <value>") {
		t.Errorf("got %v, want the key columns to give", err)
	}
}

func TestExplain(t *testing.T) {
	e := engine(t, memory.NewGoAllocator())
	_, graph := markettest.Fixture(t)
	_, rel, err := sql.ParseQuery(graph, `EXPLAIN SELECT genre_from_llm, count(*) FROM item WHERE price > 10 GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	q, err := e.Prepare(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	got := q.Explain()
	for _, want := range []string{
		"SQL over the features (embedded DuckDB):\n  SELECT genre_from_llm, count(*) FROM __fletch_scan_1 item WHERE price > 10 GROUP BY 1",
		"feature computation __fletch_scan_1: scan of item\n  entities listed by resolver items in key order",
		"pushed into the listing: price > [10]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explain lacks %q:\n%s", want, got)
		}
	}
}

// TestCallerErrors: DuckDB's refusals in the caller's terms.
func TestCallerErrors(t *testing.T) {
	e := engine(t, memory.NewGoAllocator())
	for _, c := range []struct{ query, want, not string }{
		{`SELECT fulname FROM "user" ORDER BY 1`, `1:8: unknown column "fulname" of table user (did you mean "full_name"?)`, "__fletch"},
		// At the column's first mention in the client's text.
		{"SELECT id,\n  count(*) FILTER (WHERE emial IS NULL)\nFROM \"user\" GROUP BY id", `2:26: unknown column "emial" of table user (did you mean "email"?)`, "__fletch"},
		{`SELECT u.id FROM "user" u JOIN item i ON u.id = i.nope`, `nope`, "__fletch"},
		// A relation is no column: it was suggested as itself.
		{`SELECT purchases FROM "user" LIMIT 1`, `1:8: unknown column "purchases" of table user`, "did you mean"},
	} {
		_, _, err := run(t, e, c.query)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
			t.Errorf("%s: got %v, want %q", c.query, err, c.want)
		}
	}
}

// TestOnlyFeatures: SQL over features reads the scans and nothing else.
func TestOnlyFeatures(t *testing.T) {
	e := engine(t, memory.NewGoAllocator())
	for _, c := range []struct{ query, want string }{
		{`SELECT * FROM information_schema.tables`, `unknown schema "information_schema"`},
		{`SELECT * FROM pg_catalog.pg_class`, `unknown schema "pg_catalog"`},
		{`SELECT * FROM duckdb_settings`, `unknown table "duckdb_settings"`},
		{`SELECT * FROM read_text('/etc/passwd')`, `table functions are not supported`},
		{`SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) FROM item`, `table functions are not supported`},
		{`WITH x AS (DELETE FROM item RETURNING *) SELECT * FROM x`, `read-only`},
		{`SELECT count(*) FROM item WHERE price > $1`, `parameters are supported in feature lookups only`},
		{`SELECT 1 WHERE __as_of__ = '2024-01-01'`, `1:16: __as_of__: this SELECT reads no feature class`},
		{`SELECT count(*) FROM item i WHERE x.__as_of__ = '2024-01-01'`, `x.__as_of__: this SELECT reads no table "x"`},
		{`SELECT __as_of__ FROM item`, `it is only allowed as __as_of__ = <timestamp> in the WHERE that reads the table`},
		// The embedded DuckDB's settings are the server's: secret_directory
		// is the server's home, allowed_paths its working directory.
		{`SELECT current_setting('secret_directory')`, `1:8: current_setting is not supported`},
		{`SELECT id FROM item WHERE title = pg_catalog.current_setting('allowed_paths')`, `current_setting is not supported`},
	} {
		_, _, err := run(t, e, c.query)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.query, err, c.want)
		}
	}
}
