package marketplace

import (
	"context"
	"database/sql"
	"io/fs"
	"slices"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

func generated(t testing.TB, opts Options) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := Generate(context.Background(), db, opts); err != nil {
		t.Fatal(err)
	}
	return db
}

var tables = []string{"marketplace_users", "marketplace_sellers", "marketplace_items", "marketplace_reviews", "marketplace_item_prices"}

// digest is a hash of every row of every table, in a fixed order.
func digest(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var out []string
	for _, table := range tables {
		var n int
		var h string
		err := db.QueryRow(`SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR), '')) FROM `+table+` t`).Scan(&n, &h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, table+":"+h)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := digest(t, generated(t, Options{Seed: 7}))
	b := digest(t, generated(t, Options{Seed: 7}))
	if !slices.Equal(a, b) {
		t.Errorf("same options, different data:\n%v\n%v", a, b)
	}
	// Generating again into the same database replaces the data.
	db := generated(t, Options{Seed: 8})
	if err := Generate(context.Background(), db, Options{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if c := digest(t, db); !slices.Equal(a, c) {
		t.Errorf("regenerated over other data:\n%v\n%v", a, c)
	}
	if d := digest(t, generated(t, Options{Seed: 8})); slices.Equal(a, d) {
		t.Error("another seed gives the same data")
	}
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestShapeAndEdgeCases(t *testing.T) {
	db := generated(t, Options{Seed: 1})
	anchor := DefaultAnchor
	sizes := map[string]int{"marketplace_users": 1000, "marketplace_sellers": 50, "marketplace_items": 500}
	for table, want := range sizes {
		if got := count(t, db, "SELECT count(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	if got := count(t, db, "SELECT count(*) FROM marketplace_users WHERE hid IN ('1', '1000') AND hid NOT IN ('0', '1001')"); got != 2 {
		t.Errorf("user ids are not 1..1000")
	}
	reviewsPerUser := float64(count(t, db, "SELECT count(*) FROM marketplace_reviews")) / 1000
	pricesPerItem := float64(count(t, db, "SELECT count(*) FROM marketplace_item_prices")) / 500
	if reviewsPerUser < 15 || reviewsPerUser > 25 || pricesPerItem < 80 || pricesPerItem > 120 {
		t.Errorf("%.1f reviews per user, %.1f prices per item; want about 20 and 100", reviewsPerUser, pricesPerItem)
	}

	checks := []struct {
		name  string
		query string
		want  func(int) bool
	}{
		{"users without email", "SELECT count(*) FROM marketplace_users WHERE email IS NULL", positive},
		{"users without birthday", "SELECT count(*) FROM marketplace_users WHERE birthday IS NULL", positive},
		{"items without genre", "SELECT count(*) FROM marketplace_items WHERE genre IS NULL", positive},
		{"reviews without body", "SELECT count(*) FROM marketplace_reviews WHERE review_body IS NULL", positive},
		{"prices without value", "SELECT count(*) FROM marketplace_item_prices WHERE value IS NULL", positive},
		{"prices without buyer", "SELECT count(*) FROM marketplace_item_prices WHERE buyer_hid IS NULL", positive},
		{"purchases without buyer", "SELECT count(*) FROM marketplace_item_prices WHERE kind = 'purchase' AND buyer_hid IS NULL", zero},
		{"kinds", "SELECT count(DISTINCT kind) FROM marketplace_item_prices WHERE kind IN ('purchase', 'list', 'discount')", equals(3)},
		{"other kinds", "SELECT count(*) FROM marketplace_item_prices WHERE kind NOT IN ('purchase', 'list', 'discount')", zero},
		{"star ratings outside 1..5", "SELECT count(*) FROM marketplace_reviews WHERE star_rating NOT BETWEEN 1 AND 5", zero},
		{"users without reviews", "SELECT count(*) FROM marketplace_users u WHERE NOT EXISTS (SELECT 1 FROM marketplace_reviews r WHERE r.user_hid = u.hid)", equals(100)},
		{"users without purchases", "SELECT count(*) FROM marketplace_users u WHERE NOT EXISTS (SELECT 1 FROM marketplace_item_prices p WHERE p.buyer_hid = u.hid)", positive},
		{"items without prices", "SELECT count(*) FROM marketplace_items i WHERE NOT EXISTS (SELECT 1 FROM marketplace_item_prices p WHERE p.item_id = i.id)", equals(25)},
		{"items without reviews", "SELECT count(*) FROM marketplace_items i WHERE NOT EXISTS (SELECT 1 FROM marketplace_reviews r WHERE r.item_id = i.id)", equals(20)},
		{"sellers without items", "SELECT count(*) FROM marketplace_sellers s WHERE NOT EXISTS (SELECT 1 FROM marketplace_items i WHERE i.seller_id = s.id)", equals(2)},
		{"dangling item references", "SELECT count(*) FROM marketplace_reviews r WHERE r.item_id NOT IN (SELECT id FROM marketplace_items)", zero},
		{"reviews older than 120 days", "SELECT count(*) FROM marketplace_reviews WHERE created_at < $1::TIMESTAMPTZ - INTERVAL 120 DAY", zero},
		{"reviews after the anchor", "SELECT count(*) FROM marketplace_reviews WHERE created_at > $1", equals(len(AfterAnchor))},
		{"purchases after the anchor", "SELECT count(*) FROM marketplace_item_prices WHERE created_at > $1", equals(len(AfterAnchor))},
		{"reviews exactly at the anchor", "SELECT count(*) FROM marketplace_reviews WHERE created_at = $1", positive},
		{"review ties", "SELECT count(*) FROM (SELECT item_id, created_at FROM marketplace_reviews GROUP BY ALL HAVING count(*) > 1)", positive},
		{"purchase ties with different values", "SELECT count(*) FROM (SELECT item_id, created_at FROM marketplace_item_prices WHERE kind = 'purchase' GROUP BY ALL HAVING count(DISTINCT value) > 1)", positive},
		{"item 3's latest price is null", "SELECT count(*) FROM marketplace_item_prices WHERE item_id = '3' AND value IS NULL AND created_at = (SELECT max(created_at) FROM marketplace_item_prices WHERE item_id = '3' AND created_at <= $1)", equals(1)},
	}
	for _, c := range checks {
		var args []any
		if slices.Contains([]byte(c.query), '$') {
			args = append(args, anchor)
		}
		if got := count(t, db, c.query, args...); !c.want(got) {
			t.Errorf("%s: %d", c.name, got)
		}
	}

	for _, w := range EdgeWindows {
		for _, table := range []struct{ name, who string }{
			{"marketplace_reviews", "user_hid = '1' AND item_id = '1'"},
			{"marketplace_item_prices", "buyer_hid = '1' AND item_id = '1' AND kind = 'purchase'"},
		} {
			edge := anchor.Add(-w)
			for _, at := range []time.Time{edge, edge.Add(time.Microsecond), edge.Add(-time.Microsecond)} {
				if got := count(t, db, "SELECT count(*) FROM "+table.name+" WHERE "+table.who+" AND created_at = $1", at); got != 1 {
					t.Errorf("%s: %d events at anchor − %v %+v, want 1", table.name, got, w, at.Sub(edge))
				}
			}
		}
	}
}

func positive(n int) bool { return n > 0 }
func zero(n int) bool     { return n == 0 }
func equals(want int) func(int) bool {
	return func(n int) bool { return n == want }
}

func TestFiles(t *testing.T) {
	var names []string
	fs.WalkDir(Files, ".", func(path string, d fs.DirEntry, err error) error {
		if !d.IsDir() {
			names = append(names, path)
		}
		return err
	})
	want := []string{"item_prices.chalk.sql", "items.chalk.sql", "marketplace.py", "reviews.chalk.sql", "sellers.chalk.sql", "users.chalk.sql"}
	if !slices.Equal(names, want) {
		t.Errorf("embedded %v, want %v", names, want)
	}
}

// BenchmarkGenerate measures generating the default size (the demo's).
func BenchmarkGenerate(b *testing.B) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if err := Generate(context.Background(), db, Options{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}
