package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// TestOfflineStoreAsSource is issue 13 item 4 as a user meets it: `fletch
// serve` over a Postgres source with a Postgres offline store; the Python
// SDK serves accounts at two times (fletch's `now`) while the test changes
// their rows; then offline_query(..., recompute_features=False) over a
// spine must answer the values served at each row's time — equal to what
// was served and to the as-of join computed independently by Postgres SQL
// over the log table —, recomputing must answer the rows as they are now,
// and the etl_offline_to_online feature must reach the online store
// (integration/testdata/offline_source.py runs the SDK).
func TestOfflineStoreAsSource(t *testing.T) {
	need(t, "python3")
	dsn := pgtest.DSN(t) // a private schema; skips without FLETCH_TEST_POSTGRES
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pgExec := func(stmts ...string) {
		t.Helper()
		for _, q := range stmts {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	pgExec(`CREATE TABLE accounts (id bigint, name text, score float8, tier text)`,
		`INSERT INTO accounts VALUES (1, 'ada', 0.5, 'gold'), (2, 'bob', 0.25, NULL), (3, NULL, 0.75, 'silver'), (4, 'dan', 1, 'tin')`,
		`CREATE TABLE payments (id bigint, account_id bigint, amount float8, paid_at timestamptz)`,
		`INSERT INTO payments VALUES (1, 1, 5, '2026-01-09 23:00:00+00'), (2, 2, 1.5, '2026-01-09 12:00:00+00')`)

	dir := accountsRepo(t, "sources:\n  db:\n    kind: postgres\n    dsn: ${FLETCH_IT_OFFSRC_DSN}\n"+
		"offline_store:\n  kind: postgres\n  dsn: ${FLETCH_IT_OFFSRC_DSN}\n  table: served_log\n")
	addr, _ := startServe(t, dir, "FLETCH_IT_OFFSRC_DSN="+dsn)
	root := repoRoot(t)
	runTool(t, root, os.Environ(), "bash", filepath.Join(root, "clients/python/setup.sh"))
	// PYTHONPATH: this checkout's SDK, whatever the shared venv installed.
	env := append(os.Environ(), "FLETCH_URL=grpc://"+addr, "PYTHONPATH="+filepath.Join(root, "clients/python"))
	work := t.TempDir()
	sdk := func(out string, args ...string) map[string]any {
		t.Helper()
		path := filepath.Join(work, out)
		runTool(t, root, env, filepath.Join(root, ".venv/bin/python"),
			append(append([]string{filepath.Join(root, "integration/testdata/offline_source.py")}, args...), path)...)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	outputs := []string{"account.name", "account.score", "account.label", `account.spent["1d"]`}
	logFeature := map[string]string{"account.name": "account.name", "account.score": "account.score",
		"account.label": "account.label", `account.spent["1d"]`: "account.spent__86400__"}

	t1, t2 := "2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"
	served := map[string]map[string]any{t1: sdk("t1.json", "serve", t1, "1,2,3"), t2: nil}
	pgExec(`UPDATE accounts SET name = 'ada2', score = 0.125 WHERE id = 1`, `UPDATE accounts SET score = 2 WHERE id = 2`,
		`INSERT INTO payments VALUES (3, 1, 7, '2026-01-10 23:00:00+00')`)
	served[t2] = sdk("t2.json", "serve", t2, "1,2")
	pgExec(`UPDATE accounts SET name = 'ada3', score = 9, tier = 'platinum' WHERE id IN (1, 3)`)
	// The log is written asynchronously: wait for both queries' values
	// (each query's accounts are one batch, written by one COPY).
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT observed_at) FROM served_log`).Scan(&n); err == nil && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the values served were not logged within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	type row struct {
		id       int64
		at       string
		servedAt string // whose values the row must answer; "" none
		index    int    // in the served answer
	}
	spine := []row{
		{1, "2026-01-09T23:59:59Z", "", 0}, // before anything was logged
		{1, t1, t1, 0},
		{1, "2026-01-10T01:00:00Z", t1, 0},
		{2, "2026-01-10T23:59:59Z", t1, 1},
		{1, t2, t2, 0},
		{3, "2026-01-11T01:00:00Z", t1, 2}, // served at t1 only
		{2, "2026-01-13T00:00:00Z", t2, 1},
		{4, t2, "", 0}, // never served
	}
	spec := map[string][]any{"ids": {}, "times": {}}
	for _, r := range spine {
		spec["ids"] = append(spec["ids"], r.id)
		spec["times"] = append(spec["times"], r.at)
	}
	specJSON, _ := json.Marshal(spec)
	specPath := filepath.Join(work, "spine.json")
	if err := os.WriteFile(specPath, specJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	got := sdk("offline.json", "offline", specPath)

	// The independent reference: per spine row, the latest logged row at
	// or before its time, by a window function over the log table.
	var values []string
	for i, r := range spine {
		values = append(values, fmt.Sprintf("('%d', timestamptz '%s', %d)", r.id, r.at, i))
	}
	reference := func(feature string) []any {
		rows, err := conn.Query(ctx, `WITH spine(k, t, r) AS (VALUES `+strings.Join(values, ", ")+`),
ranked AS (
	SELECT s.r, l.value #>> '{}' AS v, l.value IS NULL AS is_null,
		row_number() OVER (PARTITION BY s.r ORDER BY l.observed_at DESC, l.trace_id DESC) AS n
	FROM spine s JOIN served_log l ON l.entity_key = s.k AND l.observed_at <= s.t
	WHERE l.class = 'account' AND l.feature = $1
)
SELECT r, v FROM ranked WHERE n = 1`, feature)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]any, len(spine))
		for rows.Next() {
			var r int
			var v *string
			if err := rows.Scan(&r, &v); err != nil {
				t.Fatal(err)
			}
			if v != nil {
				out[r] = *v
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(a, b any) bool {
		if af, ok := a.(float64); ok {
			switch bv := b.(type) {
			case float64:
				return math.Abs(af-bv) <= 1e-12*math.Max(1, math.Abs(af))
			case string: // the reference reads JSON text
				return fmt.Sprint(af) == bv || fmt.Sprintf("%g", af) == bv
			}
		}
		return fmt.Sprint(a) == fmt.Sprint(b)
	}
	logged := got["logged"].(map[string]any)
	for _, o := range outputs {
		col := logged[o].([]any)
		ref := reference(logFeature[o])
		for i, r := range spine {
			var want any
			if r.servedAt != "" {
				want = served[r.servedAt][o].([]any)[r.index]
			}
			if !same(col[i], want) {
				t.Errorf("recompute_features=False: %s of account %d at %s: %v, served then: %v", o, r.id, r.at, col[i], want)
			}
			if !same(col[i], ref[i]) && !(col[i] == nil && ref[i] == nil) {
				t.Errorf("recompute_features=False: %s of account %d at %s: %v, the log's as-of answer: %v", o, r.id, r.at, col[i], ref[i])
			}
		}
	}
	if name := logged["account.name"].([]any)[2]; name != "ada" {
		t.Errorf("account 1's name at t1 + 1h: %v, want ada (served then; the source now says ada3)", name)
	}

	// Recomputed: the rows as they are now (a timeless class), the window
	// as of each row.
	current := map[int64][]any{}
	rows, err := conn.Query(ctx, `SELECT id, name, score FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var name *string
		var score float64
		if err := rows.Scan(&id, &name, &score); err != nil {
			t.Fatal(err)
		}
		var n any
		if name != nil {
			n = *name
		}
		current[id] = []any{n, score}
	}
	recomputed := got["recomputed"].(map[string]any)
	nameRecomputed := got["name_recomputed"].(map[string]any)
	for i, r := range spine {
		if g, w := recomputed["account.name"].([]any)[i], current[r.id][0]; !same(g, w) {
			t.Errorf("recomputed name of account %d: %v, the source holds %v", r.id, g, w)
		}
		if g, w := recomputed["account.score"].([]any)[i], current[r.id][1]; !same(g, w) {
			t.Errorf("recomputed score of account %d: %v, the source holds %v", r.id, g, w)
		}
		if g, w := nameRecomputed["account.name"].([]any)[i], current[r.id][0]; !same(g, w) {
			t.Errorf(`recompute_features=["account.name"]: name of account %d: %v, the source holds %v`, r.id, g, w)
		}
		if g, w := nameRecomputed["account.score"].([]any)[i], logged["account.score"].([]any)[i]; !same(g, w) {
			t.Errorf(`recompute_features=["account.name"]: score of account %d: %v, logged %v`, r.id, g, w)
		}
	}
	if e, _ := got["expression_error"].(string); !strings.Contains(e, "cannot be read from the offline store") {
		t.Errorf("an expression output with recompute_features=False: %q", e)
	}

	// Reverse ETL: the recomputing offline query wrote account.tier to the
	// online store, observed at each account's latest spine row; the rows
	// changed since, and an online query accepting any age is served the
	// stored values.
	pgExec(`UPDATE accounts SET tier = 'changed'`)
	online := sdk("online.json", "online", "1,2,3,4")
	tiers, hits := online["account.tier"].([]any), online["account.tier.__hit__"].([]any)
	want := []any{"platinum", nil, "platinum", "tin"}
	for i, w := range want {
		if !same(tiers[i], w) || hits[i] != true {
			t.Errorf("account %d: tier %v (hit %v), want %v from the online store (etl_offline_to_online)", i+1, tiers[i], hits[i], w)
		}
	}
}

// TestQueryServedCLI: `fletch query --served` answers, in process, the
// value served at --now from a DuckDB offline store, after the source row
// changed; without it, the row as it is.
func TestQueryServedCLI(t *testing.T) {
	dir := accountsRepo(t, "sources:\n  db:\n    kind: duckdb\n    path: data.duckdb\noffline_store:\n  kind: duckdb\n  path: log.duckdb\n")
	data := func(stmts ...string) {
		t.Helper()
		db, err := sql.Open("duckdb", filepath.Join(dir, "data.duckdb"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range stmts {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	data(`CREATE TABLE accounts (id BIGINT, name VARCHAR, score DOUBLE, tier VARCHAR)`,
		`INSERT INTO accounts VALUES (1, 'ada', 0.5, 'gold')`,
		`CREATE TABLE payments (id BIGINT, account_id BIGINT, amount DOUBLE, paid_at TIMESTAMPTZ)`)
	query := func(args ...string) string {
		t.Helper()
		out, stderr, err := fletch(t, append([]string{"query", "--repo", dir, "--in", "account.id=1", "--out", "account.name", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("fletch query %v: %v\n%s%s", args, err, out, stderr)
		}
		return out
	}
	query("--now", "2026-01-10T00:00:00Z") // served, and logged when the command ends
	data(`UPDATE accounts SET name = 'ada2'`)
	if out := query("--now", "2026-01-10T01:00:00Z", "--served"); !strings.Contains(out, `"ada"`) {
		t.Errorf("--served at t1 + 1h: %s, want ada (served at t1)", out)
	}
	if out := query("--now", "2026-01-09T00:00:00Z", "--served"); strings.Contains(out, "ada") {
		t.Errorf("--served before anything was served: %s, want null", out)
	}
	if out := query("--now", "2026-01-10T01:00:00Z"); !strings.Contains(out, `"ada2"`) {
		t.Errorf("recomputed: %s, want the source's ada2", out)
	}
}

// accountsRepo is the offline store's test repository
// (stores/offline/testdata/accounts: features of each kind the log serves
// back — a column, an expression, a window — and an etl_offline_to_online
// one) in a new folder, with fletch.yaml.
func accountsRepo(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(t), "stores/offline/testdata/accounts"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
