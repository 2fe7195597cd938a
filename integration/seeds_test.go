package integration

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The acceptance of issue 14: the seeds' examples as written
// (testdata/seeds: the tutorial's User and Review, seed 004's
// Document/Revision, failed logins and transactions), each a repository
// over generated DuckDB tables. validate lists what fletch does not take,
// by location; served, every answer matches DuckDB SQL over the same rows.

// seedNow is the query time of every seed query; rows after it exist in
// the tables and must not be seen (DESIGN.md §4).
const seedNow = "2026-01-01T12:00:00Z"

// seedRepo copies testdata/seeds/name into a temporary repository whose
// fletch.yaml names a DuckDB file (as source) holding the tables made by
// setup, and returns the repository and the open reference database; the
// caller closes it before serving.
func seedRepo(t *testing.T, name, source string, setup ...string) (string, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	repo := filepath.Join(dir, name)
	copyRepo(t, filepath.Join("testdata", "seeds", name), repo)
	dbPath := filepath.Join(dir, name+".duckdb")
	db, err := sql.Open("duckdb", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range setup {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	yaml := fmt.Sprintf("sources:\n  %s:\n    kind: duckdb\n    path: %s\n", source, strconv.Quote(dbPath))
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo, db
}

// seedReference runs query (one row per id, ordered by id; the id column
// first) and returns each row's cells keyed by the names given.
func seedReference(t *testing.T, db *sql.DB, query string, names ...string) map[string][]any {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	out := map[string][]any{}
	for rows.Next() {
		cells := make([]any, len(names)+1)
		ptrs := make([]any, len(cells))
		for i := range cells {
			ptrs[i] = &cells[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprint(cells[0])] = cells[1:]
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// seedCompare queries the server for every id of want and compares each
// named output with the reference cell.
func seedCompare(t *testing.T, addr, class string, outs []string, want map[string][]any) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("empty reference")
	}
	for id, cells := range want {
		args := []string{"query", "--server", addr, "--now", seedNow, "--json", "--in", class + ".id=" + id}
		for _, o := range outs {
			args = append(args, "--out", o)
		}
		got, ok := queryJSON(t, args...).(map[string]any)
		if !ok {
			t.Fatalf("%s.id=%s: not one row", class, id)
		}
		for i, o := range outs {
			g := got[class+"."+o]
			w := cells[i]
			if tm, ok := w.(time.Time); ok {
				w = tm.UTC()
				if s, ok := g.(string); ok {
					if p, err := time.Parse(time.RFC3339Nano, s); err == nil {
						g = p
					}
				}
			}
			if !matches(g, w) {
				t.Errorf("%s.id=%s %s = %v (%T), DuckDB says %v", class, id, o, g, g, w)
			}
		}
	}
}

// validateSeeds runs `fletch validate` on the seed repository name as
// written and returns what it printed.
func validateSeeds(t *testing.T, name string) (string, error) {
	t.Helper()
	out, stderr, err := fletch(t, "validate", "--repo", filepath.Join("testdata", "seeds", name))
	return out + stderr, err
}

// wantLines checks that got holds every line of want, and no warning
// besides: what validate lists of a seed is exactly what the test knows.
func wantLines(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s:\n%s\nlacks %q", what, got, w)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		warning, ok := strings.CutPrefix(l, "warning: ")
		if !ok {
			continue
		}
		known := false
		for _, w := range want {
			known = known || strings.HasPrefix(warning, w)
		}
		if !known {
			t.Errorf("%s: an unexpected warning: %s", what, warning)
		}
	}
}

// TestSeedsLogins: seed 004's num_failed_logins (10m, 30m, 1d, default 0)
// over attempts whose status is failed, ok or null, some after the query
// time.
func TestSeedsLogins(t *testing.T) {
	out, err := validateSeeds(t, "logins")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/logins/logins.py:11:5: class LoginAttempt has no FeatureTime: its only datetime feature, at, is its event time")
	repo, db := seedRepo(t, "logins", "db",
		`CREATE TABLE users AS SELECT i AS id FROM range(1, 6) t(i)`,
		// user 5 has no attempts: the default 0
		`CREATE TABLE login_attempts AS SELECT i AS id, 1 + i % 4 AS user_id,
			CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN 'failed' ELSE 'ok' END AS status,
			TIMESTAMP '2026-01-01 12:00:00' - to_minutes(i * 7 - 40) AS "at"
			FROM range(1, 300) t(i)`)
	want := seedReference(t, db, `SELECT u.id,
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 10 MINUTE),
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 30 MINUTE),
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 1 DAY)
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN users u
		LEFT JOIN login_attempts a ON a.user_id = u.id AND a."at" <= n
		GROUP BY u.id, n ORDER BY u.id`, "10m", "30m", "1d")
	db.Close()
	addr, _ := startServe(t, repo)
	windows := []string{"num_failed_logins__600__", "num_failed_logins__1800__", "num_failed_logins__86400__"}
	seedCompare(t, addr, "user", windows, want)
	// Asked for by its group name (every window), as the seed's table
	// says, at the current time: max_staleness="10m" serves every window
	// from the online store once written back, with the values computed.
	query := func() (map[string]string, map[string]bool) {
		out, stderr, err := fletch(t, "query", "--server", addr, "--in", "user.id=2", "--out", "num_failed_logins")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		return resultTableHits(t, out)
	}
	first, _ := query()
	for range 100 {
		cells, hits := query()
		all := true
		for _, w := range windows {
			if cells["user."+w] != first["user."+w] || cells["user."+w] == "" {
				t.Fatalf("user.id=2 %s: %q from the store, %q computed", w, cells["user."+w], first["user."+w])
			}
			all = all && hits["user."+w]
		}
		if all {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("num_failed_logins (max_staleness=10m), asked for by its group name, was never served from the online store")
}

// TestSeedsTransactions: seed 004's total_spend (30d, 60d, 90d, default 0)
// over amounts with nulls, some after the query time; materialized in 1d
// buckets, so served online each window starts at midnight UTC.
func TestSeedsTransactions(t *testing.T) {
	out, err := validateSeeds(t, "transactions")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/transactions/transactions.py:11:5: class Transaction has no FeatureTime: its only datetime feature, at, is its event time")
	repo, db := seedRepo(t, "transactions", "db",
		`CREATE TABLE users AS SELECT i AS id FROM range(1, 6) t(i)`,
		`CREATE TABLE transactions AS SELECT i AS id, 1 + i % 4 AS user_id,
			CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 37 % 1000) / 4.0 END::DOUBLE AS amount,
			TIMESTAMP '2026-01-01 12:00:00' - to_hours(i * 5 - 30) AS "at"
			FROM range(1, 600) t(i)`)
	want := seedReference(t, db, `SELECT u.id,
		coalesce(sum(a.amount) FILTER (a."at" >= `+alignedSince("30 DAY", 86400)+`), 0),
		coalesce(sum(a.amount) FILTER (a."at" >= `+alignedSince("60 DAY", 86400)+`), 0),
		coalesce(sum(a.amount) FILTER (a."at" >= `+alignedSince("90 DAY", 86400)+`), 0)
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN users u
		LEFT JOIN transactions a ON a.user_id = u.id AND a."at" <= n
		GROUP BY u.id, n ORDER BY u.id`, "30d", "60d", "90d")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "user", []string{"total_spend__2592000__", "total_spend__5184000__", "total_spend__7776000__"}, want)
}

// TestSeedsDocuments: seed 004's Document/Revision. As written, its filter
// `_.size_bytes > 100,000,000` is Python for the filters `_.size_bytes >
// 100`, `0`, `0`: validate refuses it at the `0`. With the literal written
// 100_000_000 (as the seed means), num_revisions, max_revision_size over
// sizes with nulls and earliest_large_revision_ts match DuckDB, revisions
// after the query time unseen.
func TestSeedsDocuments(t *testing.T) {
	out, err := validateSeeds(t, "documents")
	if err == nil {
		t.Fatalf("validate accepted 100,000,000:\n%s", out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/documents/documents.py:13:75: filter 0 is int64, not a condition",
		"testdata/seeds/documents/documents.py:21:5: class Revision has no FeatureTime: its only datetime feature, timestamp, is its event time")
	if strings.Contains(out, "class Document has no FeatureTime") {
		t.Errorf("validate takes the computed earliest_large_revision_ts for Document's event time:\n%s", out)
	}
	repo, db := seedRepo(t, "documents", "db",
		`CREATE TABLE documents AS SELECT i AS id FROM range(1, 6) t(i)`,
		// document 5 has no revisions
		`CREATE TABLE revisions AS SELECT i AS id, 1 + i % 4 AS document_id,
			CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 7919 % 300) * 1000000.0 END::DOUBLE AS size_bytes,
			TIMESTAMP '2026-01-01 12:00:00' - to_hours(i * 3 - 20) AS "timestamp"
			FROM range(1, 200) t(i)`)
	py := filepath.Join(repo, "documents.py")
	src, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(src), "100,000,000", "100_000_000", 1)
	if fixed == string(src) {
		t.Fatal("documents.py no longer writes 100,000,000")
	}
	if err := os.WriteFile(py, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	want := seedReference(t, db, `SELECT d.id, count(r.id), max(r.size_bytes),
		min(r."timestamp") FILTER (r.size_bytes > 100000000)
		FROM documents d LEFT JOIN revisions r ON r.document_id = d.id AND r."timestamp" <= TIMESTAMP '2026-01-01 12:00:00'
		GROUP BY d.id ORDER BY d.id`, "num", "max", "earliest")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "document", []string{"num_revisions", "max_revision_size", "earliest_large_revision_ts"}, want)
}

// TestSeedsTutorial: seed 000's User (full_name, reviews,
// average_rating_given, review_count 7d/30d/60d) and Review as written,
// over its SQL resolver as written (created_at, email and birthday match no
// feature of this User: located warnings). Ratings with nulls; reviews
// after the query time unseen (Review.created_at is its event time).
func TestSeedsTutorial(t *testing.T) {
	out, err := validateSeeds(t, "tutorial")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/tutorial/users.chalk.sql:5:1: column created_at matches no feature of User, so it is ignored",
		"testdata/seeds/tutorial/users.chalk.sql:8:1: column email matches no feature of User, so it is ignored",
		"testdata/seeds/tutorial/users.chalk.sql:9:1: column birthday matches no feature of User, so it is ignored",
		"testdata/seeds/tutorial/marketplace.py:12:5: class Review has no FeatureTime: its only datetime feature, created_at, is its event time")
	repo, db := seedRepo(t, "tutorial", "postgres",
		`CREATE TABLE marketplace_users AS SELECT i::VARCHAR AS hid, TIMESTAMP '2025-01-01' + to_days(i) AS created_at,
			'First' || i AS first_name, 'Last' || (i % 7) AS last_name, 'u' || i || '@example.com' AS email,
			DATE '1990-01-01' + i::INTEGER AS birthday FROM range(1, 61) t(i)`,
		// users 56..60 have no reviews
		`CREATE TABLE reviews AS SELECT i AS id, TIMESTAMP '2026-01-01 12:00:00' - to_hours(i * 5 - 100) AS created_at,
			'headline ' || i AS review_headline, 'body ' || i AS review_body,
			CASE WHEN i % 9 = 0 THEN NULL ELSE 1 + i * 7 % 5 END AS star_rating,
			(i % 50) / 10.0 AS normalized_rating, (1 + i * 13 % 55)::VARCHAR AS user_id
			FROM range(1, 400) t(i)`)
	want := seedReference(t, db, `SELECT u.hid, u.first_name || ' ' || u.last_name, u.first_name, avg(r.star_rating),
		count(r.id) FILTER (r.created_at > n - INTERVAL 7 DAY),
		count(r.id) FILTER (r.created_at > n - INTERVAL 30 DAY),
		count(r.id) FILTER (r.created_at > n - INTERVAL 60 DAY)
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN marketplace_users u
		LEFT JOIN reviews r ON r.user_id = u.hid AND r.created_at <= n
		WHERE u.hid IN ('1', '2', '50', '54', '58')
		GROUP BY u.hid, u.first_name, u.last_name, n`, "full_name", "first_name", "avg", "7d", "30d", "60d")
	// A review after the query time is not seen: its user is null.
	reviewUser := seedReference(t, db, `SELECT r.id, CASE WHEN r.created_at <= TIMESTAMP '2026-01-01 12:00:00' THEN u.hid END,
		CASE WHEN r.created_at <= TIMESTAMP '2026-01-01 12:00:00' THEN u.first_name || ' ' || u.last_name END
		FROM reviews r JOIN marketplace_users u ON u.hid = r.user_id WHERE r.id IN (1, 9, 241, 399)`, "id", "full_name")
	userReviews := seedReference(t, db, `SELECT id, star_rating, normalized_rating FROM reviews
		WHERE user_id = '50' AND created_at <= TIMESTAMP '2026-01-01 12:00:00'`, "star_rating", "normalized_rating")
	db.Close()
	addr, _ := startServe(t, repo)
	// chalk query --in user.id=50 --out full_name (and --out first_name)
	seedCompare(t, addr, "user", []string{"full_name", "first_name", "average_rating_given",
		"review_count__604800__", "review_count__2592000__", "review_count__5184000__"}, want)
	// chalk query --in review.id=241 --out user
	for id, cells := range reviewUser {
		got := queryJSON(t, "query", "--server", addr, "--now", seedNow, "--json", "--in", "review.id="+id, "--out", "user").(map[string]any)
		for i, name := range []string{"review.user.id", "review.user.full_name"} {
			if !matches(got[name], cells[i]) {
				t.Errorf("review.id=%s %s = %v, DuckDB says %v", id, name, got[name], cells[i])
			}
		}
	}
	// chalk query --in user.id=50 --out reviews
	got := queryJSON(t, "query", "--server", addr, "--now", seedNow, "--json", "--in", "user.id=50", "--out", "reviews").(map[string]any)
	reviews, _ := got["user.reviews"].([]any)
	if len(reviews) != len(userReviews) {
		t.Fatalf("user 50 has %d reviews, DuckDB says %d: %v", len(reviews), len(userReviews), got)
	}
	for _, r := range reviews {
		r := r.(map[string]any)
		cells, ok := userReviews[fmt.Sprint(r["id"])]
		if !ok {
			t.Errorf("user 50's review %v is not in DuckDB's", r["id"])
			continue
		}
		for i, name := range []string{"star_rating", "normalized_rating"} {
			if !matches(r[name], cells[i]) {
				t.Errorf("user 50's review %v: %s = %v, DuckDB says %v", r["id"], name, r[name], cells[i])
			}
		}
	}
}

// alignedSince is DuckDB SQL for where the window w of a feature
// materialized in buckets of the given seconds starts when it is served
// online at the seeds' query time n: B(n − w), the start of the epoch-
// aligned bucket holding n − w (DESIGN.md §4, tiles: online serving sees
// B(t − w) ≤ time ≤ t).
func alignedSince(w string, bucket int) string {
	return fmt.Sprintf("make_timestamp((floor(epoch(n - INTERVAL %s) / %d) * %d * 1000000)::BIGINT)", w, bucket, bucket)
}

// seedFix rewrites the first old of file in repo to new: a seed's slip,
// located by validate as written, corrected as the seed means it.
func seedFix(t *testing.T, repo, file, old, new string) {
	t.Helper()
	path := filepath.Join(repo, file)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(src), old, new, 1)
	if fixed == string(src) {
		t.Fatalf("%s no longer writes %s", file, old)
	}
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
}

// transactionRows are seed 004's transactions: amounts with nulls, some
// after the query time, user 5 with none.
var transactionRows = []string{
	`CREATE TABLE users AS SELECT i AS id FROM range(1, 6) t(i)`,
	`CREATE TABLE transactions AS SELECT i AS id, 1 + i % 4 AS user_id,
		CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 37 % 1000) / 4.0 END::DOUBLE AS amount,
		TIMESTAMP '2026-01-01 12:00:00' - to_hours(i * 5 - 30) AS "at"
		FROM range(1, 600) t(i)`,
}

// TestSeedsAverages: seed 004's avg_transaction_amount, a windowed feature
// over two windowed features. As written, count_transactions filters on
// _.ts, which its Transaction does not declare: validate says so where.
// With _.at (as the seed means), sum (nulls skipped), count of rows and
// their quotient per window match DuckDB.
func TestSeedsAverages(t *testing.T) {
	out, err := validateSeeds(t, "averages")
	if err == nil {
		t.Fatalf("validate accepted _.ts:\n%s", out)
	}
	wantLines(t, "validate", out, `testdata/seeds/averages/transactions.py:29:13: Transaction has no feature ts`,
		"testdata/seeds/averages/transactions.py:13:5: class Transaction has no FeatureTime: its only datetime feature, at, is its event time")
	repo, db := seedRepo(t, "averages", "db", transactionRows...)
	seedFix(t, repo, "transactions.py", "_.ts > _.chalk_window", "_.at > _.chalk_window")
	var cols []string
	var outs []string
	for _, w := range []struct{ label, secs string }{{"30d", "2592000"}, {"60d", "5184000"}, {"90d", "7776000"}} {
		in := fmt.Sprintf(`a."at" > n - INTERVAL %s DAY`, strings.TrimSuffix(w.label, "d"))
		// sum over no rows is 0 (DESIGN.md); x / 0 is null.
		cols = append(cols, fmt.Sprintf(`coalesce(sum(a.amount) FILTER (%[1]s), 0), count(a.id) FILTER (%[1]s),
			coalesce(sum(a.amount) FILTER (%[1]s), 0) / nullif(count(a.id) FILTER (%[1]s), 0)`, in))
		for _, f := range []string{"sum_transactions", "count_transactions", "avg_transaction_amount"} {
			outs = append(outs, f+"__"+w.secs+"__")
		}
	}
	want := seedReference(t, db, `SELECT u.id, `+strings.Join(cols, ", ")+`
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN users u
		LEFT JOIN transactions a ON a.user_id = u.id AND a."at" <= n
		GROUP BY u.id, n`, outs...)
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "user", outs, want)
}

// TestSeedsMaterialized: seed 000's caching and materialization snippets
// as written (MaterializationWindowConfig with bucket_duration and
// backfill_schedule, bucket_durations, max_staleness="infinity") load, and
// the windowed counts answer as DuckDB counts the rows of each window's
// aligned span: served online, a materialized window starts at the start
// of its own bucket duration's bucket (3d; 10m for 1d; 5d for 365d).
func TestSeedsMaterialized(t *testing.T) {
	out, err := validateSeeds(t, "materialized")
	if err != nil || !strings.Contains(out, "ok: ") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/materialized/marketplace.py:12:5: class Review has no FeatureTime: its only datetime feature, created_at, is its event time")
	repo, db := seedRepo(t, "materialized", "db",
		`CREATE TABLE users AS SELECT i::VARCHAR AS id FROM range(1, 6) t(i)`,
		`CREATE TABLE reviews AS SELECT i AS id, TIMESTAMP '2026-01-01 12:00:00' - to_hours(i * 13 - 50) AS created_at,
			(1 + i % 4)::VARCHAR AS user_id, 'body ' || i AS body,
			CASE WHEN i % 3 = 0 THEN NULL ELSE 'positive' END AS sentiment_from_llm
			FROM range(1, 900) t(i)`)
	want := seedReference(t, db, `SELECT u.id,
		count(r.id) FILTER (r.created_at >= `+alignedSince("7 DAY", 3*86400)+`),
		count(r.id) FILTER (r.created_at >= `+alignedSince("30 DAY", 3*86400)+`),
		count(r.id) FILTER (r.created_at >= `+alignedSince("60 DAY", 3*86400)+`),
		count(r.id) FILTER (r.created_at >= `+alignedSince("1 DAY", 600)+`),
		count(r.id) FILTER (r.created_at >= `+alignedSince("365 DAY", 5*86400)+`)
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN users u
		LEFT JOIN reviews r ON r.user_id = u.id AND r.created_at <= n
		GROUP BY u.id, n`, "7d", "30d", "60d", "1d", "365d")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "user", []string{"review_count__604800__", "review_count__2592000__", "review_count__5184000__",
		"review_count_fine__86400__", "review_count_fine__31536000__"}, want)
}

// TestSeedsAttack: seed 004's account_under_attack, a Python resolver over
// two windows of num_failed_logins. As written it returns `-> ...`, which
// names no feature: validate says where. Returning a declared
// User.under_attack, it answers as the same test in DuckDB SQL.
func TestSeedsAttack(t *testing.T) {
	out, err := validateSeeds(t, "attack")
	if err == nil {
		t.Fatalf("validate accepted -> ...:\n%s", out)
	}
	wantLines(t, "validate", out, "testdata/seeds/attack/logins.py:32:6: resolver account_under_attack: `-> ...` names no feature",
		"testdata/seeds/attack/logins.py:12:5: class LoginAttempt has no FeatureTime: its only datetime feature, at, is its event time")
	repo, db := seedRepo(t, "attack", "db",
		`CREATE TABLE users AS SELECT i AS id FROM range(1, 6) t(i)`,
		// users 1 and 3 fail often, 2 and 4 never, 5 has no attempts
		`CREATE TABLE login_attempts AS SELECT i AS id, 1 + i % 4 AS user_id,
			CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN 'failed' ELSE 'ok' END AS status,
			TIMESTAMP '2026-01-01 12:00:00' - to_seconds(i * 20 - 300) AS "at"
			FROM range(1, 2000) t(i)`)
	seedFix(t, repo, "logins.py", ") -> ...:", ") -> User.under_attack:")
	seedFix(t, repo, "logins.py", "    login_attempts: DataFrame[LoginAttempt]\n", "    login_attempts: DataFrame[LoginAttempt]\n    under_attack: bool\n")
	want := seedReference(t, db, `SELECT u.id,
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 30 MINUTE),
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 1 DAY),
		count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 30 MINUTE) > 10
			OR count(*) FILTER (a.status = 'failed' AND a."at" > n - INTERVAL 1 DAY) > 100
		FROM (SELECT TIMESTAMP '2026-01-01 12:00:00' AS n) CROSS JOIN users u
		LEFT JOIN login_attempts a ON a.user_id = u.id AND a."at" <= n
		GROUP BY u.id, n`, "30m", "1d", "under_attack")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "user", []string{"num_failed_logins__1800__", "num_failed_logins__86400__", "under_attack"}, want)
	if !matches(want["1"][2], true) || !matches(want["2"][2], false) {
		t.Errorf("the generated rows do not put user 1 under attack and user 2 not: %v", want)
	}
}

// TestSeedsItems: seed 000's Item (times_purchased, average_price and
// most_recent_price over prices with nulls and rows after the query time,
// is_discounted) and UserItem (price_diff, price_diff_ratio,
// affordability_cap, price_fit) as written, queried as the seed queries
// them: chalk query --in user_item.user_id=50 --in user_item.item_id=200.
func TestSeedsItems(t *testing.T) {
	out, err := validateSeeds(t, "items")
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	wantLines(t, "validate", out,
		"testdata/seeds/items/items.py:17:5: class ItemPrice has no FeatureTime: its only datetime feature, created_at, is its event time")
	repo, db := seedRepo(t, "items", "db",
		`CREATE TABLE users AS SELECT i::VARCHAR AS id, 10 + (i * 13 % 90) * 1.5 AS average_purchase_price FROM range(1, 61) t(i)`,
		`CREATE TABLE items AS SELECT i::VARCHAR AS id, 'item ' || i AS title, 'genre ' || (i % 5) AS genre_from_llm,
			5 + (i * 7 % 120) * 1.25 AS price FROM range(190, 211) t(i)`,
		// item 210 has no prices
		`CREATE TABLE item_prices AS SELECT i AS id, (190 + i % 20)::VARCHAR AS item_id,
			CASE WHEN i % 3 = 0 THEN 'purchase' ELSE 'list' END AS type,
			CASE WHEN i % 11 = 0 THEN NULL ELSE 4 + (i * 31 % 200) * 0.75 END::DOUBLE AS value,
			TIMESTAMP '2026-01-01 12:00:00' - to_minutes(i * 17 - 600) AS created_at
			FROM range(1, 1000) t(i)`)
	const visible = `created_at <= TIMESTAMP '2026-01-01 12:00:00'`
	items := seedReference(t, db, `SELECT i.id, count(p.id) FILTER (p.type = 'purchase'), avg(p.value),
		arg_max(p.value, p.created_at) FILTER (p.value IS NOT NULL), i.price < avg(p.value)
		FROM items i LEFT JOIN item_prices p ON p.item_id = i.id AND p.`+visible+`
		GROUP BY i.id, i.price`, "times_purchased", "average_price", "most_recent_price", "is_discounted")
	pairs := seedReference(t, db, `WITH m AS (SELECT item_id, arg_max(value, created_at) AS recent FROM item_prices
			WHERE value IS NOT NULL AND `+visible+` GROUP BY item_id),
		d AS (SELECT u.id || '-' || m.item_id AS id, abs(m.recent - u.average_purchase_price) AS diff, u.average_purchase_price AS avgp
			FROM users u, m WHERE u.id IN ('50', '7') AND m.item_id IN ('200', '191'))
		SELECT id, diff, diff / avgp, 1 / (1 + exp(-(diff / avgp))), 1 / (1 + (diff / avgp) ** 2) FROM d`,
		"price_diff", "price_diff_ratio", "affordability_cap", "price_fit")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "item", []string{"times_purchased", "average_price", "most_recent_price", "is_discounted"}, items)
	if len(pairs) != 4 {
		t.Fatalf("%d user-item pairs in the reference", len(pairs))
	}
	outs := []string{"price_diff", "price_diff_ratio", "affordability_cap", "price_fit"}
	for id, cells := range pairs {
		user, item, _ := strings.Cut(id, "-")
		got := queryJSON(t, "query", "--server", addr, "--now", seedNow, "--json",
			"--in", "user_item.user_id="+user, "--in", "user_item.item_id="+item).(map[string]any)
		if got["user_item.id"] != id {
			t.Errorf("user_item.id = %v, want %s", got["user_item.id"], id)
		}
		for i, o := range outs {
			if g := got["user_item."+o]; !matches(g, cells[i]) {
				t.Errorf("user_item %s %s = %v, DuckDB says %v", id, o, g, cells[i])
			}
		}
	}
}

// TestSeedsDesign: seed 002's Transaction and User. As written, `id: id`
// names no type: validate says where and what was meant. With `id: int`,
// is_expensive, total_spend (nulls skipped) and F.max_by(frame,
// sort=...) answer as DuckDB.
func TestSeedsDesign(t *testing.T) {
	out, err := validateSeeds(t, "design")
	if err == nil {
		t.Fatalf("validate accepted id: id:\n%s", out)
	}
	// User declares no id as written, so its resolver's id fills nothing.
	wantLines(t, "validate", out, `testdata/seeds/design/features.py:23:9: unknown type id (did you mean "str" or "int"?)`,
		"testdata/seeds/design/features.py:19:5: class Transaction has no FeatureTime: its only datetime feature, created_at, is its event time",
		"testdata/seeds/design/users.chalk.sql:3:8: column id matches no feature of User, so it is ignored")
	repo, db := seedRepo(t, "design", "db",
		`CREATE TABLE users AS SELECT i AS id, 'user ' || i AS name FROM range(1, 6) t(i)`,
		`CREATE TABLE transactions AS SELECT i AS id, 1 + i % 4 AS user_id,
			CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 53 % 150) * 10.0 END::DOUBLE AS total,
			TIMESTAMP '2026-01-01 12:00:00' - to_minutes(i * 11 - 100) AS created_at
			FROM range(1, 300) t(i)`)
	seedFix(t, repo, "features.py", "    id: id\n", "    id: int\n")
	const visible = `t.created_at <= TIMESTAMP '2026-01-01 12:00:00'`
	users := seedReference(t, db, `SELECT u.id, coalesce(sum(t.total), 0), arg_max(t.total, t.created_at) FILTER (t.total IS NOT NULL)
		FROM users u LEFT JOIN transactions t ON t.user_id = u.id AND `+visible+` GROUP BY u.id`,
		"total_spend", "most_recent_transaction")
	txns := seedReference(t, db, `SELECT id, CASE WHEN `+visible+` THEN total > 1000 END FROM transactions t WHERE id IN (1, 7, 14, 30, 31, 250)`, "is_expensive")
	db.Close()
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "user", []string{"total_spend", "most_recent_transaction"}, users)
	seedCompare(t, addr, "transaction", []string{"is_expensive"}, txns)
}

// TestSeedsTotals: seed 002's compute_total, the talk's Python resolver,
// as written there (line numbers left out): its `→` is refused where it
// is, and corrected to `->` the resolver is compiled to an expression
// (`fletch plan` says so) whose answers match DuckDB SQL written from the
// Python body: discounts clamped at 0, untaxed or rate-less transactions
// at their subtotal, a locale missing from its table (no tax rate).
func TestSeedsTotals(t *testing.T) {
	out, err := validateSeeds(t, "totals")
	if err == nil {
		t.Fatalf("validate accepted →:\n%s", out)
	}
	wantLines(t, "validate", out, `testdata/seeds/totals/totals.py:29:3: syntax error: unexpected "→ Transaction.total" (→ is not Python: write ->)`)
	repo, db := seedRepo(t, "totals", "db",
		// locale l3 has no tax rate; l4 is not in the table
		`CREATE TABLE locales AS SELECT 'l' || i AS id, CASE WHEN i = 3 THEN NULL ELSE i * 0.0125 END::DOUBLE AS sales_tax_rate
			FROM range(0, 4) t(i)`,
		`CREATE TABLE transactions AS SELECT i AS id, (i * 37 % 200) * 0.5 AS subtotal,
			CASE WHEN i % 3 = 0 THEN NULL ELSE (i * 11 % 60) * 1.25 END::DOUBLE AS discount,
			i % 5 <> 0 AS taxable, 'l' || (i % 5) AS locale_id
			FROM range(1, 41) t(i)`)
	seedFix(t, repo, "totals.py", ") → Transaction.total:", ") -> Transaction.total:")
	want := seedReference(t, db, `WITH d AS (SELECT t.id, t.taxable, l.sales_tax_rate AS rate,
			CASE WHEN t.discount IS NOT NULL THEN greatest(t.subtotal - t.discount, 0.0) ELSE t.subtotal END AS s
			FROM transactions t LEFT JOIN locales l ON l.id = t.locale_id)
		SELECT id, CASE WHEN NOT taxable OR rate IS NULL THEN s ELSE s * (1.0 + rate) END FROM d ORDER BY id`, "total")
	db.Close()
	plan, stderr, err := fletch(t, "plan", "--repo", repo, "--in", "transaction.id=1", "--out", "total")
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, stderr)
	}
	if !strings.Contains(plan, "compute total <- python compute_total as an expression") {
		t.Errorf("plan does not show compute_total as an expression:\n%s", plan)
	}
	addr, _ := startServe(t, repo)
	seedCompare(t, addr, "transaction", []string{"total"}, want)
}
