package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// biQueries are what a BI tool sends beyond feature lookups (issue 15),
// each with DuckDB SQL over the demo's tables that computes the same.
func biQueries() []struct{ name, query, want string } {
	asOf := "'" + anchor.Format(time.RFC3339) + "'"
	ts := sqlTime(anchor)
	// A user's reviews and purchases up to ts, within window w when given.
	within := func(w string) string {
		if w == "" {
			return ""
		}
		return " AND x.created_at > " + ts + " - INTERVAL " + w
	}
	reviews := func(agg, w string) string {
		return "(SELECT " + agg + " FROM marketplace_reviews x WHERE x.user_hid = u.hid AND x.created_at <= " + ts + within(w) + ")"
	}
	purchases := func(agg, w string) string {
		return "(SELECT " + agg + " FROM marketplace_item_prices x WHERE x.buyer_hid = u.hid AND x.kind = 'purchase' AND x.created_at <= " + ts + within(w) + ")"
	}
	return []struct{ name, query, want string }{
		{"browse user", `SELECT id, full_name, email, birthday FROM "user" WHERE __as_of__ = ` + asOf + ` LIMIT 200`,
			"SELECT hid, first_name || ' ' || last_name, email, birthday FROM marketplace_users WHERE created_at <= " + ts + " ORDER BY hid LIMIT 200"},
		// DBeaver's Data tab: every column, the computed ones as their
		// definitions in marketplace.py say.
		{"browse user, every column", `SELECT * FROM "user" WHERE __as_of__ = ` + asOf + ` LIMIT 200`,
			"SELECT u.hid, u.created_at, u.first_name, u.last_name, u.email, u.birthday, u.first_name || ' ' || u.last_name, " +
				reviews("avg(star_rating)", "") + ", " + reviews("count(*)", "7 DAY") + ", " + reviews("count(*)", "30 DAY") + ", " + reviews("count(*)", "60 DAY") + ", " +
				purchases("avg(value)", "") + ", coalesce(" + purchases("sum(value)", "30 DAY") + ", 0), coalesce(" + purchases("sum(value)", "90 DAY") + ", 0), " +
				"jaccard(lower(u.first_name || ' ' || u.last_name), lower(u.email)) " +
				"FROM marketplace_users u WHERE u.created_at <= " + ts + " ORDER BY u.hid LIMIT 200"},
		{"group by genre", `SELECT genre_from_llm, COUNT(*), AVG(price) FROM item GROUP BY genre_from_llm ORDER BY 2 DESC, 1`,
			"SELECT genre, count(*), avg(list_price) FROM marketplace_items GROUP BY genre ORDER BY 2 DESC, 1"},
		{"join review to item", `SELECT i.title, count(*) AS n, avg(r.star_rating) AS stars FROM review r JOIN item i ON r.item_id = i.id WHERE r.__as_of__ = ` + asOf + ` GROUP BY i.title ORDER BY n DESC, i.title LIMIT 20`,
			"SELECT i.title, count(*) AS n, avg(r.star_rating) FROM marketplace_reviews r JOIN marketplace_items i ON r.item_id = i.id WHERE r.created_at <= " + ts + " GROUP BY i.title ORDER BY n DESC, i.title LIMIT 20"},
		{"superset virtual table", `SELECT * FROM (SELECT id, title, price FROM item WHERE price > 100) AS virtual_table ORDER BY id LIMIT 1000`,
			"SELECT id, title, list_price FROM marketplace_items WHERE list_price > 100 ORDER BY id LIMIT 1000"},
		{"computed features", `SELECT id, total_reviews, average_rating FROM item WHERE __as_of__ = ` + asOf + ` AND total_reviews > 40 ORDER BY total_reviews DESC, id LIMIT 10`,
			"SELECT * FROM (SELECT i.id, (SELECT count(*) FROM marketplace_reviews r WHERE r.item_id = i.id AND r.created_at <= " + ts + ") AS n, (SELECT avg(star_rating) FROM marketplace_reviews r WHERE r.item_id = i.id AND r.created_at <= " + ts + ") AS a FROM marketplace_items i) WHERE n > 40 ORDER BY n DESC, id LIMIT 10"},
		{"select 1", `SELECT 1`, `SELECT 1`},
	}
}

func TestBISQLFlight(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()
	for _, c := range biQueries() {
		t.Run(c.name, func(t *testing.T) {
			info, err := cl.Execute(ctx, c.query)
			if err != nil {
				t.Fatal(err)
			}
			schema, got := fetch(t, ctx, cl, info)
			var names []string
			for _, f := range schema.Fields() {
				names = append(names, f.Name)
			}
			compareRows(t, names, got, referenceRows(t, c.want))
		})
	}
}

// TestSchemaProbe is Tableau's `WHERE 1=0`: the columns and no rows, in
// one empty batch (with none, the JDBC driver lists every column twice).
func TestSchemaProbe(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()
	for _, q := range []string{
		`SELECT * FROM "user" WHERE 1=0`,
		`SELECT * FROM (SELECT id, title FROM item) AS t WHERE 1 = 0`,
		`SELECT id, title FROM item WHERE id = 'no such item' AND 1=0`,
	} {
		info, err := cl.Execute(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		batches := 0
		for rdr.Next() {
			batches++
			if n := rdr.RecordBatch().NumRows(); n != 0 {
				t.Errorf("%s: %d rows", q, n)
			}
		}
		if rdr.Schema().NumFields() == 0 {
			t.Errorf("%s: no columns", q)
		}
		rdr.Release()
		if batches != 1 {
			t.Errorf("%s: %d batches, want one empty batch", q, batches)
		}
	}
}

// TestExplainFlight: EXPLAIN answers the plan, a line a row: for SQL over
// features, which part is feature computation and which is SQL over its
// result; for a lookup, the lookup's plan (no DuckDB).
func TestExplainFlight(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()
	for _, c := range []struct{ query, want, not string }{
		{`EXPLAIN SELECT genre_from_llm, count(*) FROM item GROUP BY 1`, "SQL over the features (embedded DuckDB):", ""},
		{`EXPLAIN SELECT genre_from_llm, count(*) FROM item GROUP BY 1`, "feature computation __fletch_scan_1: scan of item", ""},
		{`EXPLAIN SELECT full_name FROM user WHERE id = '1'`, "query user -> full_name", "DuckDB"},
	} {
		info, err := cl.Execute(ctx, c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		schema, rows := fetch(t, ctx, cl, info)
		if schema.NumFields() != 1 || schema.Field(0).Name != "plan" {
			t.Fatalf("%s: schema %s", c.query, schema)
		}
		var text string
		for _, r := range rows {
			text += r[0].(string) + "\n"
		}
		if !strings.Contains(text, c.want) || (c.not != "" && strings.Contains(text, c.not)) {
			t.Errorf("%s: plan lacks %q (or has %q):\n%s", c.query, c.want, c.not, text)
		}
	}
}

// TestDerivedKeyErrors: user_item's key is derived (user_id + "-" +
// item_id); naming it, or browsing the class, says which columns to give,
// at the definition's position relative to the repository (the message
// showed the server's absolute path and never named user_id and item_id).
func TestDerivedKeyErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	for _, c := range []struct{ query, want string }{
		{`SELECT price_fit FROM user_item WHERE id = '1998000498'`, `1:39: user_item.id is derived from user_id and item_id (`},
		{`SELECT * FROM user_item LIMIT 100`, `1:15: the rows of user_item cannot be listed`},
	} {
		_, err := cl.Execute(context.Background(), c.query)
		st := status.Convert(err)
		if err == nil || st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), c.want) ||
			!strings.Contains(st.Message(), "user_id = <value> AND item_id = <value>") || strings.Contains(st.Message(), demoDir) {
			t.Errorf("%s: %v; want InvalidArgument with %q naming user_id and item_id, without %s", c.query, err, c.want, demoDir)
		}
	}
	_, err := cl.Execute(context.Background(), `SELECT price_fit FROM user_item WHERE id = '1998000498'`)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, ", marketplace.py:") {
		t.Errorf("the key's definition is not at marketplace.py:line:col: %s", msg)
	}
}
