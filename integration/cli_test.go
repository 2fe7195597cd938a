package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// resultTable parses the CLI's Name/Hit?/Value table (one input row).
func resultTable(t *testing.T, out string) map[string]string {
	t.Helper()
	cells, _ := resultTableHits(t, out)
	return cells
}

// resultTableHits parses the table and its Hit? column: the names of the
// features served from the online store.
func resultTableHits(t *testing.T, out string) (map[string]string, map[string]bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || strings.Join(strings.Fields(lines[0]), " ") != "Name Hit? Value" || !strings.HasPrefix(lines[1], "─") {
		t.Fatalf("not a result table:\n%s", out)
	}
	cells, hits := map[string]string{}, map[string]bool{}
	for _, l := range lines[2:] {
		name, value, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok {
			t.Fatalf("result line %q has no value", l)
		}
		value = strings.TrimSpace(value)
		if rest, hit := strings.CutPrefix(value, "yes "); hit {
			hits[name], value = true, strings.TrimSpace(rest)
		}
		cells[name] = value
	}
	return cells, hits
}

// A feature with max_staleness is computed once, then served from the
// online store, and the Hit? column says so. The server is the test's own:
// other tests' queries (a scan of every item) fill the demo's store.
func TestCLIQueryHit(t *testing.T) {
	repo, _ := marketplaceCopy(t)
	addr, _ := startServe(t, repo)
	want := strconv.Quote(referenceRows(t, `SELECT genre FROM marketplace_items WHERE id = '137'`)[0][0].(string))
	query := func() (map[string]string, map[string]bool, string) {
		out, stderr, err := fletch(t, "query", "--server", addr, "--in", "item.id=137", "--out", "item.genre_from_llm", "--out", "item.title")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		cells, hits := resultTableHits(t, out)
		if cells["item.genre_from_llm"] != want || hits["item.title"] {
			t.Fatalf("genre %s (want %s), title must be computed:\n%s", cells["item.genre_from_llm"], want, out)
		}
		return cells, hits, out
	}
	if _, hits, out := query(); hits["item.genre_from_llm"] {
		t.Fatalf("the first query was a hit:\n%s", out)
	}
	// The write-back is asynchronous: the value reaches the store shortly.
	for range 100 {
		if _, hits, _ := query(); hits["item.genre_from_llm"] {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("item.genre_from_llm (max_staleness=infinity) was never served from the online store")
}

func TestCLIQueryServer(t *testing.T) {
	out, stderr, err := fletch(t, "query", "--server", addr, "--in", "user.id=50", "--out", "user.full_name")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	cells := resultTable(t, out)
	want := referenceRows(t, `SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '50'`)
	if len(cells) != 1 || cells["user.full_name"] != strconv.Quote(want[0][0].(string)) {
		t.Errorf("fletch query user.full_name:\n%s\nwant the value %q", out, want[0][0])
	}

	out, stderr, err = fletch(t, "query", "--server", addr, "--in", "user_item.user_id=50", "--in", "user_item.item_id=200", "--now", anchor.Format(time.RFC3339))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	cells = resultTable(t, out)
	wantCells := map[string]string{"user_item.id": `"50-200"`, "user_item.user_id": `"50"`, "user_item.item_id": `"200"`}
	numeric := []string{"user_item.price_diff", "user_item.price_diff_ratio", "user_item.affordability_cap", "user_item.price_fit"}
	if len(cells) != len(wantCells)+len(numeric) {
		t.Errorf("%d features of user_item, want %d:\n%s", len(cells), len(wantCells)+len(numeric), out)
	}
	for k, v := range wantCells {
		if cells[k] != v {
			t.Errorf("%s = %s, want %s", k, cells[k], v)
		}
	}
	for _, k := range numeric {
		if _, err := strconv.ParseFloat(cells[k], 64); err != nil {
			t.Errorf("%s = %q, want a number", k, cells[k])
		}
	}
	ref := userItemReference(t, []spineRow{{"50|200", anchor}})
	if got, _ := strconv.ParseFloat(cells["user_item.price_diff"], 64); !matches(got, ref[0][3]) {
		t.Errorf("user_item.price_diff = %v, DuckDB says %v", got, ref[0][3])
	}
}

// TestCLIQueryInProcess runs the same query through the server and
// in-process on a copy of the repository whose fletch.yaml points at the
// same data generated here, and expects the same JSON.
func TestCLIQueryInProcess(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "marketplace")
	copyRepo(t, filepath.Join(demoDir, "marketplace"), repo)
	dbPath := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, dbPath)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %s\n", strconv.Quote(dbPath))
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, in := range [][]string{
		{"--in", "user_item.user_id=50", "--in", "user_item.item_id=200"},
		{"--in", "user.id=50", "--in", "user.id=1", "--in", "user.id=nobody", "--out", "full_name,review_count[30d],average_rating_given,total_spend__2592000__"},
	} {
		args := append([]string{"query", "--json", "--now", anchor.Add(-10 * day).Format(time.RFC3339)}, in...)
		remote := queryJSON(t, append(args, "--server", addr)...)
		local := queryJSON(t, append(args, "--repo", repo)...)
		if !reflect.DeepEqual(remote, local) {
			t.Errorf("fletch %s:\nserver:     %v\nin-process: %v", strings.Join(in, " "), remote, local)
		}
	}
}

func queryJSON(t *testing.T, args ...string) any {
	t.Helper()
	out, stderr, err := fletch(t, args...)
	if err != nil {
		t.Fatalf("fletch %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("fletch %s --json printed no JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
	if m, ok := v.(map[string]any); ok && len(m) == 0 {
		t.Fatalf("fletch %s: empty JSON object", strings.Join(args, " "))
	}
	return v
}

// copyRepo copies the feature definitions (.py, .sql) of repo from to to.
func copyRepo(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); e.IsDir() || (ext != ".py" && ext != ".sql") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCLIValidate(t *testing.T) {
	out, stderr, err := fletch(t, "validate", "--repo", "../examples/marketplace")
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("validate on the example: %v\n%s%s", err, out, stderr)
	}

	// A typo'd feature reference: the error names the file, line and
	// column of the reference and the feature meant.
	repo := t.TempDir()
	copyRepo(t, "../examples/marketplace", repo)
	py := filepath.Join(repo, "marketplace.py")
	src, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	const good, typo = `full_name: str = _.first_name + " " + _.last_name`, `full_name: str = _.first_nme + " " + _.last_name`
	before, _, ok := strings.Cut(string(src), good)
	if !ok {
		t.Fatalf("%s no longer defines %s", py, good)
	}
	if err := os.WriteFile(py, []byte(strings.Replace(string(src), good, typo, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	line := strings.Count(before, "\n") + 1
	col := len(before) - strings.LastIndex(before, "\n") + len(`full_name: str = `)
	out, stderr, err = fletch(t, "validate", "--repo", repo)
	if err == nil {
		t.Fatalf("validate accepted a typo'd reference:\n%s", out)
	}
	// The position is the reference's `_` or its name.
	var at []string
	for _, c := range []int{col, col + 2} {
		at = append(at, fmt.Sprintf("%s:%d:%d: ", py, line, c))
	}
	if !(strings.Contains(stderr, at[0]) || strings.Contains(stderr, at[1])) || !strings.Contains(stderr, `first_nme`) || !strings.Contains(stderr, `did you mean "first_name"?`) {
		t.Errorf("validate on a typo: got\n%s\nwant %q or %q, naming first_nme and suggesting first_name", stderr, at[0], at[1])
	}

	// A resolver column that fills no feature (the tutorial's users.chalk.sql
	// before User declares email) is a located warning: ok, unless --strict.
	if err := os.WriteFile(py, src, 0o644); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(repo, "users.chalk.sql")
	usersSQL, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	extra := strings.Replace(string(usersSQL), "select\n", "select\n    1 as shoe_size,\n", 1)
	if extra == string(usersSQL) {
		t.Fatalf("%s has no select to add a column to", users)
	}
	if err := os.WriteFile(users, []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = fletch(t, "validate", "--repo", repo)
	if err != nil || !strings.HasPrefix(out, "ok: ") || !strings.Contains(stderr, "warning: "+users+":") || !strings.Contains(stderr, "column shoe_size matches no feature of User, so it is ignored") {
		t.Errorf("validate with an unmatched column: %v\n%s%s\nwant ok and a located warning", err, out, stderr)
	}
	if _, _, err := fletch(t, "validate", "--strict", "--repo", repo); err == nil {
		t.Error("validate --strict passed a warning")
	}

	// An error does not hide the warnings nor fletch.yaml's errors: all
	// are printed at once (the warnings were not printed, nor fletch.yaml
	// read, while a definition failed).
	yaml := filepath.Join(repo, "fletch.yaml")
	if err := os.WriteFile(py, []byte(strings.Replace(string(src), good, typo, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yaml, []byte("sources:\n  marketplace:\n    kind: bigquery\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = fletch(t, "validate", "--repo", repo)
	for _, want := range []string{"first_nme", "warning: " + users + ":", "column shoe_size matches no feature of User", yaml + `:3:11: unknown kind "bigquery"`} {
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("validate with an error, a warning and a bad fletch.yaml: %v\n%s%s\nlacks %s", err, out, stderr, want)
		}
	}
	if err := os.WriteFile(py, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, usersSQL, 0o644); err != nil {
		t.Fatal(err)
	}

	// fletch.yaml is checked as serve reads it (validate said ok for a
	// source serve refused), and so are the sources resolvers name.
	for _, c := range []struct{ text, want string }{
		{"sources:\n  marketplace:\n    kind: bigquery\n", yaml + `:3:11: unknown kind "bigquery"`},
		{"sources:\n  marketplce:\n    kind: duckdb\n", `reads source "marketplace", which ` + yaml + ` does not define (sources: marketplce)`},
		{"sources:\n  marketplace:\n    kind: duckdb\nonline_store:\n  kind: postgres\n", yaml + `:5:3: the postgres online store has no dsn`},
	} {
		if err := os.WriteFile(yaml, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, stderr, err = fletch(t, "validate", "--repo", repo)
		if err == nil || !strings.Contains(stderr, c.want) {
			t.Errorf("validate with fletch.yaml %q: %v\n%s%s\nwant an error containing %s", c.text, err, out, stderr, c.want)
		}
	}
	// The PostgreSQL online store is a kind validate knows; validate
	// connects to nothing (nothing listens on port 1).
	pgStore := "sources:\n  marketplace:\n    kind: duckdb\nonline_store:\n  kind: postgres\n  dsn: postgres://nobody@127.0.0.1:1/x\n"
	if err := os.WriteFile(yaml, []byte(pgStore), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err = fletch(t, "validate", "--repo", repo); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("validate with a postgres online store: %v\n%s%s", err, out, stderr)
	}
}

// TestCLIPlanReadsOnly: planning reads the definitions only. It writes
// nothing into the repository (it created .fletch/fletch.duckdb) and works
// while another process holds the repository's database (it failed with
// DuckDB's "Could not set lock on file").
func TestCLIPlanReadsOnly(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "marketplace")
	copyRepo(t, "../examples/marketplace", repo)
	dbPath := filepath.Join(dir, "held.duckdb")
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %s\n", strconv.Quote(dbPath))
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	held, err := sql.Open("duckdb", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.Exec("CREATE TABLE IF NOT EXISTS t (i INT)"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"plan", "--repo", repo, "--in", "user.id=50", "--out", "user.full_name"},
		{"plan", "--repo", repo, "--in", "user.id=50", "--out", "user.full_name", "--format", "mermaid"},
		{"plan", "--repo", repo, "--sql", "SELECT genre_from_llm, count(*) FROM item GROUP BY 1"},
		{"features", "--repo", repo},
		{"validate", "--repo", repo},
	} {
		out, stderr, err := fletch(t, args...)
		if err != nil || out == "" {
			t.Errorf("fletch %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	}
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("the tools wrote %s into the repository", e.Name())
		}
	}
}

// TestCLIPlanSQL is `fletch plan --sql`: which part of a query is feature
// computation and which is SQL over its result.
func TestCLIPlanSQL(t *testing.T) {
	out, stderr, err := fletch(t, "plan", "--repo", "../examples/marketplace", "--sql",
		"SELECT i.title, count(*) FROM review r JOIN item i ON r.item_id = i.id WHERE i.price > 10 GROUP BY 1")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{
		"SQL over the features (embedded DuckDB):\n  SELECT i.title, count(*) FROM __fletch_scan_1 r JOIN __fletch_scan_2 i ON r.item_id = i.id WHERE i.price > 10 GROUP BY 1",
		"feature computation __fletch_scan_1: scan of review",
		"feature computation __fletch_scan_2: scan of item",
		"fetch reviews [source marketplace]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	out, _, err = fletch(t, "plan", "--repo", "../examples/marketplace", "--sql", "SELECT full_name FROM user WHERE id = '1'")
	if err != nil || strings.Contains(out, "DuckDB") || !strings.Contains(out, "query user -> full_name") {
		t.Errorf("a lookup's plan: %v\n%s", err, out)
	}
}

// marketplaceCopy writes the marketplace example with its generated data in
// a DuckDB file of its own into a new folder, for a test that serves it
// alone. It returns the repository and the database's path.
func marketplaceCopy(t *testing.T) (repo, dbPath string) {
	t.Helper()
	repo = filepath.Join(t.TempDir(), "marketplace")
	copyRepo(t, "../examples/marketplace", repo)
	dbPath = filepath.Join(repo, "marketplace.duckdb")
	generateDuckDB(t, dbPath)
	if err := os.WriteFile(filepath.Join(repo, "fletch.yaml"), []byte("sources:\n  marketplace:\n    kind: duckdb\n    path: marketplace.duckdb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo, dbPath
}

// TestServedRepositoryTools: the read-only tools work on a repository that
// `fletch serve` is serving, and write nothing into it; `query --repo`,
// which would run the queries itself, says the repository is in use and
// how to query it (it failed with DuckDB's "Could not set lock on file").
func TestServedRepositoryTools(t *testing.T) {
	repo, dbPath := marketplaceCopy(t)
	// The server keeps its own state (the write-ahead log, <repo>/.fletch/
	// for tiles): what it wrote before answering is not the tools' doing.
	addr, _ := startServe(t, repo)
	before := files(t, repo)
	for _, args := range [][]string{
		{"plan", "--repo", repo, "--in", "user.id=50", "--out", "user.full_name"},
		{"features", "--repo", repo},
		{"features", "--repo", repo, "--server", addr},
		{"validate", "--repo", repo},
		{"query", "--server", addr, "--in", "user.id=50", "--out", "user.full_name"},
	} {
		if out, stderr, err := fletch(t, args...); err != nil || out == "" {
			t.Errorf("fletch %s, the repository served: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
	}
	_, stderr, err := fletch(t, "query", "--repo", repo, "--in", "user.id=50", "--out", "user.full_name")
	if want := "the repository " + repo + " is in use: its database " + dbPath + " is open in another process (a fletch serve of it?)"; err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, "query that server with --server ADDR") {
		t.Errorf("query --repo on a served repository: %v\n%s\nwant an error containing %q", err, stderr, want)
	}
	if after := files(t, repo); !reflect.DeepEqual(after, before) {
		t.Errorf("the repository had %v, has %v", before, after)
	}
}

// files lists the files under dir (recursively, relative to it), the
// server's write-ahead logs left out.
func files(t *testing.T, dir string) (out []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".wal") {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
