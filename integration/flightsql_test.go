package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	_ "github.com/apache/arrow-go/v18/arrow/flight/flightsql/driver"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const day = 24 * time.Hour

// spineRow is one input row: a key and the time it is evaluated at.
type spineRow struct {
	key string
	at  time.Time
}

// spineSQL is rows as a CTE `s(i, id, t)`, i the input order.
func spineSQL(rows []spineRow) string {
	vals := make([]string, len(rows))
	for i, r := range rows {
		vals[i] = fmt.Sprintf("(%d, '%s', %s)", i, r.key, sqlTime(r.at))
	}
	return "WITH s(i, id, t) AS (VALUES " + strings.Join(vals, ", ") + ")\n"
}

// userSelect are the user columns checked, and userReference computes the
// same for each spine row with DuckDB SQL over the demo's tables.
const userSelect = `id, full_name, review_count__604800__, "review_count[30d]", lower(full_name) AS lower_name, average_rating_given`

var userColumns = []string{"id", "full_name", "review_count__604800__", "review_count[30d]", "lower_name", "average_rating_given"}

func userReference(t *testing.T, rows []spineRow) [][]any {
	t.Helper()
	return userReferenceOf(t, rows, false)
}

// onlineUserReference is userReference for a query served online at one
// time (the native query's now): review_count is materialized in 1-day
// buckets, so its windows start at the start of the UTC day their exact
// start falls in (DESIGN.md §4, tiles: B(t − w) ≤ time ≤ t).
func onlineUserReference(t *testing.T, rows []spineRow) [][]any {
	t.Helper()
	return userReferenceOf(t, rows, true)
}

func userReferenceOf(t *testing.T, rows []spineRow, online bool) [][]any {
	t.Helper()
	reviews := func(agg, cond string) string {
		return "(SELECT " + agg + " FROM marketplace_reviews r WHERE r.user_hid = s.id AND r.created_at <= s.t" + cond + ")"
	}
	since := func(w string) string {
		if online {
			return " AND r.created_at >= to_timestamp(floor(epoch(s.t - INTERVAL " + w + ") / 86400) * 86400)"
		}
		return " AND r.created_at > s.t - INTERVAL " + w
	}
	return referenceRows(t, spineSQL(rows)+`SELECT s.id, u.first_name || ' ' || u.last_name,
		`+reviews("count(*)", since("7 DAY"))+`,
		`+reviews("count(*)", since("30 DAY"))+`,
		lower(u.first_name || ' ' || u.last_name),
		`+reviews("avg(star_rating)", "")+`
		FROM s LEFT JOIN marketplace_users u ON u.hid = s.id AND u.created_at <= s.t ORDER BY s.i`)
}

func TestStatement(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()

	keys := []string{"50", "1", "nobody", "1000", "50", "9"}
	info, err := cl.Execute(ctx, `SELECT `+userSelect+` FROM user WHERE id IN ('50', '1', 'nobody', '1000', '50', '9') AND __as_of__ = '`+anchor.Format(time.RFC3339)+`'`)
	if err != nil {
		t.Fatal(err)
	}
	schema, got := fetch(t, ctx, cl, info)
	checkNames(t, schema, userColumns)
	var rows []spineRow
	for _, k := range keys {
		rows = append(rows, spineRow{k, anchor})
	}
	compareRows(t, userColumns, got, userReference(t, rows))

	// Has-one paths from reviews, at a time before some of them exist: a
	// review written after __as_of__ is not there yet (user "1"'s edge-case
	// reviews lie exactly on and around the window edges, and after the
	// anchor).
	at := anchor.Add(-7 * day)
	info, err = cl.Execute(ctx, `SELECT id, "user.full_name", item.title, "item.price", star_rating FROM review WHERE id IN (1, 5, 6, 7, 18, 100, 5000, 999999) AND __as_of__ = '`+at.Format(time.RFC3339)+`'`)
	if err != nil {
		t.Fatal(err)
	}
	schema, got = fetch(t, ctx, cl, info)
	names := []string{"id", "user.full_name", "item.title", "item.price", "star_rating"}
	checkNames(t, schema, names)
	want := referenceRows(t, `WITH s(i, id) AS (VALUES (0, 1), (1, 5), (2, 6), (3, 7), (4, 18), (5, 100), (6, 5000), (7, 999999))
		SELECT s.id, u.first_name || ' ' || u.last_name, it.title, it.list_price, r.star_rating
		FROM s LEFT JOIN marketplace_reviews r ON r.id = s.id AND r.created_at <= `+sqlTime(at)+`
		LEFT JOIN marketplace_users u ON u.hid = r.user_hid AND u.created_at <= `+sqlTime(at)+` LEFT JOIN marketplace_items it ON it.id = r.item_id ORDER BY s.i`)
	compareRows(t, names, got, want)
}

func checkNames(t *testing.T, schema *arrow.Schema, names []string) {
	t.Helper()
	var got []string
	for _, f := range schema.Fields() {
		got = append(got, f.Name)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("result columns %q, want %q", got, names)
	}
}

// userKeys are "1".."1000" shuffled, with a missing id and duplicates.
func userKeys() []string {
	keys := make([]string, 1000)
	for i, p := range rand.New(rand.NewPCG(1, 2)).Perm(1000) {
		keys[i] = fmt.Sprint(p + 1)
	}
	keys[7] = "no-such-user"
	keys[100] = keys[200]
	keys[500], keys[501] = "50", "50"
	return keys
}

// params builds a parameter batch for schema, the statement's parameter
// schema as the server reports it: column name → one value per row.
func params(t *testing.T, mem memory.Allocator, schema *arrow.Schema, cols map[string][]any) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, f := range schema.Fields() {
		vals, ok := cols[f.Name]
		if !ok {
			t.Fatalf("the server asks for parameter %q (schema %s)", f.Name, schema)
		}
		for _, v := range vals {
			switch fb := b.Field(i).(type) {
			case *array.StringBuilder:
				fb.Append(v.(string))
			case *array.Int64Builder:
				fb.Append(v.(int64))
			case *array.TimestampBuilder:
				ts, err := arrow.TimestampFromTime(v.(time.Time), f.Type.(*arrow.TimestampType).Unit)
				if err != nil {
					t.Fatal(err)
				}
				fb.Append(ts)
			default:
				t.Fatalf("parameter %s has type %s, which this test does not fill", f.Name, f.Type)
			}
		}
	}
	return b.NewRecordBatch()
}

func TestPreparedBatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()

	keys := userKeys()
	rows := make([]spineRow, len(keys))
	ids, times := make([]any, len(keys)), make([]any, len(keys))
	for i, k := range keys {
		// Alternate rows at the anchor and ten days before it: the windows
		// are whole days, so their edges fall exactly on generated events.
		at := anchor
		if i%2 == 1 {
			at = anchor.Add(-10 * day)
		}
		rows[i] = spineRow{k, at}
		ids[i], times[i] = k, at
	}

	t.Run("user", func(t *testing.T) {
		stmt, err := cl.Prepare(ctx, `SELECT `+userSelect+` FROM user WHERE id = ? AND __as_of__ = ?`)
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close(ctx)
		p := params(t, mem, stmt.ParameterSchema(), map[string][]any{"id": ids, "__as_of__": times})
		stmt.SetParameters(p)
		p.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, got := fetch(t, ctx, cl, info)
		checkNames(t, schema, userColumns)
		want := userReference(t, rows)
		compareRows(t, userColumns, got, want)
		// The comparison means something only if the data does: most rows
		// have recent reviews, and the missing user has no name.
		recent := 0
		for _, r := range want {
			if n, _ := number(r[3]); n > 0 {
				recent++
			}
		}
		if recent < 500 || want[7][1] != nil {
			t.Errorf("reference data looks empty: %d of %d rows with reviews in 30 days, missing user's name %v", recent, len(want), want[7][1])
		}
	})

	t.Run("user_item", func(t *testing.T) {
		stmt, err := cl.Prepare(ctx, `SELECT id, "user.full_name", "item.title", price_diff FROM user_item WHERE user_id = ? AND item_id = ? AND __as_of__ = ?`)
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close(ctx)
		items := make([]any, len(keys))
		pairs := make([]spineRow, len(keys))
		for i, k := range keys {
			items[i] = fmt.Sprint(1 + (i*13)%500)
			pairs[i] = spineRow{k + "|" + items[i].(string), rows[i].at}
		}
		p := params(t, mem, stmt.ParameterSchema(), map[string][]any{"user_id": ids, "item_id": items, "__as_of__": times})
		stmt.SetParameters(p)
		p.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatal(err)
		}
		schema, got := fetch(t, ctx, cl, info)
		names := []string{"id", "user.full_name", "item.title", "price_diff"}
		checkNames(t, schema, names)
		compareRows(t, names, got, userItemReference(t, pairs))
	})
}

// userItemReference computes id, user.full_name, item.title and
// price_diff = |most recent price − user's average purchase price| for
// spine rows keyed "user|item". Tied most recent prices make several
// answers right.
func userItemReference(t *testing.T, pairs []spineRow) [][]any {
	t.Helper()
	ref := referenceRows(t, spineSQL(pairs)+`, p AS (SELECT i, split_part(id, '|', 1) AS u, split_part(id, '|', 2) AS it, t FROM s)
		SELECT p.u || '-' || p.it, u.first_name || ' ' || u.last_name, i.title,
			(SELECT list(x.value) FROM marketplace_item_prices x WHERE x.item_id = p.it AND x.value IS NOT NULL AND x.created_at =
				(SELECT max(created_at) FROM marketplace_item_prices y WHERE y.item_id = p.it AND y.value IS NOT NULL AND y.created_at <= p.t)),
			(SELECT avg(value) FROM marketplace_item_prices z WHERE z.buyer_hid = p.u AND z.kind = 'purchase' AND z.created_at <= p.t)
		FROM p LEFT JOIN marketplace_users u ON u.hid = p.u AND u.created_at <= p.t LEFT JOIN marketplace_items i ON i.id = p.it ORDER BY p.i`)
	out := make([][]any, len(ref))
	for i, r := range ref {
		var diff any
		if recent, ok := r[3].([]any); ok && r[4] != nil {
			var cands oneOf
			for _, v := range recent {
				cands = append(cands, math.Abs(v.(float64)-r[4].(float64)))
			}
			diff = cands
		}
		out[i] = []any{r[0], r[1], r[2], diff}
	}
	return out
}

func TestDatabaseSQLDriver(t *testing.T) {
	db, err := sql.Open("flightsql", "flightsql://"+addr+"?timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	scan := func(rows *sql.Rows, err error) [][]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			var id, name sql.NullString
			var n sql.NullInt64
			if err := rows.Scan(&id, &name, &n); err != nil {
				t.Fatal(err)
			}
			row := []any{id.String, nil, n.Int64}
			if name.Valid {
				row[1] = name.String
			}
			out = append(out, row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ref := func(keys ...string) [][]any {
		var rows []spineRow
		for _, k := range keys {
			rows = append(rows, spineRow{k, anchor})
		}
		var out [][]any
		for _, r := range userReference(t, rows) {
			out = append(out, []any{r[0], r[1], r[2]})
		}
		return out
	}
	names := []string{"id", "full_name", "review_count[7d]"}
	asOf := anchor.Format(time.RFC3339)

	got := scan(db.Query(`SELECT id, full_name, "review_count[7d]" FROM user WHERE id IN ('3', '50', 'x', '3') AND __as_of__ = '` + asOf + `'`))
	compareRows(t, names, got, ref("3", "50", "x", "3"))

	got = scan(db.Query(`SELECT id, full_name, "review_count[7d]" FROM user WHERE id = ? AND __as_of__ = '`+asOf+`'`, "50"))
	compareRows(t, names, got, ref("50"))
}

// TestBadInput sends what a user gets wrong and checks the error and that
// the server still answers afterwards.
func TestBadInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := client(t, mem)
	ctx := context.Background()

	stillServing := func(t *testing.T) {
		t.Helper()
		info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id = '50'`)
		if err != nil {
			t.Fatalf("after the bad query, a good one fails: %v", err)
		}
		_, rows := fetch(t, ctx, cl, info)
		want := referenceRows(t, `SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '50'`)
		compareRows(t, []string{"full_name"}, rows, want)
	}
	expect := func(t *testing.T, err error, code codes.Code, pattern string) {
		t.Helper()
		st, _ := status.FromError(err)
		if err == nil || st.Code() != code || !regexp.MustCompile(pattern).MatchString(st.Message()) {
			t.Errorf("got %v, want %s matching %q", err, code, pattern)
		}
	}

	for _, c := range []struct {
		name, sql string
		code      codes.Code
		pattern   string
	}{
		{"unknown table", `SELECT full_name FROM usr WHERE id = '1'`, codes.InvalidArgument, `^1:23: unknown table "usr" \(did you mean "user"\?\)`},
		{"unknown column", `SELECT ful_name FROM user WHERE id = '1'`, codes.InvalidArgument, `^1:8: unknown column "ful_name".*\(did you mean "full_name"\?\)`},
		{"malformed", "SELECT full_name\nFROM user WHERE id = = '1'", codes.InvalidArgument, `^2:22: syntax error`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cl.Execute(ctx, c.sql)
			expect(t, err, c.code, c.pattern)
			stillServing(t)
		})
	}

	t.Run("parameter batch of the wrong schema", func(t *testing.T) {
		stmt, err := cl.Prepare(ctx, `SELECT full_name FROM user WHERE id = ? AND __as_of__ = ?`)
		if err != nil {
			t.Fatal(err)
		}
		defer stmt.Close(ctx)
		b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "user_key", Type: arrow.PrimitiveTypes.Float64}}, nil))
		b.Field(0).(*array.Float64Builder).Append(1.5)
		bad := b.NewRecordBatch()
		b.Release()
		stmt.SetParameters(bad)
		bad.Release()
		_, err = stmt.Execute(ctx)
		expect(t, err, codes.InvalidArgument, `parameter|field|column`)
		stillServing(t)

		// The handle itself still works with a good batch.
		p := params(t, mem, stmt.ParameterSchema(), map[string][]any{"id": {"50"}, "__as_of__": {anchor}})
		stmt.SetParameters(p)
		p.Release()
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Fatalf("rebinding a good batch after a bad one: %v", err)
		}
		_, rows := fetch(t, ctx, cl, info)
		if len(rows) != 1 || rows[0][0] == nil {
			t.Errorf("rebinding a good batch after a bad one: %v", rows)
		}
	})
}
