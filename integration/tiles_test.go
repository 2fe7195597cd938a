package integration

import (
	"database/sql"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The aggregation tiles' acceptance (issue 13, docs/TILES.md): a repository
// with two materialized aggregations over three windows, its events
// backfilled into tiles by `fletch aggregate backfill`, served, and a
// training set of 100,000 spine rows built with the Python SDK, exact and
// tiled, each checked against DuckDB SQL (integration/testdata/tiles_training_set.py).

const tilesAcceptanceRepo = `from chalk.features import features, DataFrame, FeatureTime, _
from chalk import Windowed, windowed

@features
class Txn:
    id: int
    user_id: "User.id"
    amount: float | None
    at: FeatureTime

@features
class User:
    id: int
    txns: DataFrame[Txn]
    total: Windowed[float] = windowed("7d", "30d", "90d", expression=_.txns[_.amount, _.at > _.chalk_window].sum(), materialization={"bucket_duration": "1d"})
    cnt: Windowed[int] = windowed("7d", "30d", "90d", expression=_.txns[_.at > _.chalk_window].count(),
        materialization=MaterializationWindowConfig(bucket_duration="1d", backfill_schedule="0 0 * * *"))
`

// writeTilesRepo writes the repository and events events of which go to users 0 and 1
// (heavy hitters), the rest to 5,000 users, over 2026-01-01 .. 2026-04-01.
func writeTilesRepo(t *testing.T, events int) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"m.py":           tilesAcceptanceRepo,
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, ts as \"at\" from txns\n",
		"fletch.yaml":    "sources:\n  events:\n    kind: duckdb\n    path: events.duckdb\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("duckdb", filepath.Join(dir, "events.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`SET TimeZone = 'UTC';
		SELECT setseed(0.13);
		CREATE TABLE txns AS SELECT i AS id,
			CASE WHEN i % 20 = 0 THEN i % 2 ELSE 2 + (hash(i) % 5000) END AS user_id,
			CASE WHEN i % 13 = 0 THEN NULL ELSE (hash(i * 7) % 10000) / 100.0 END AS amount,
			CASE WHEN i % 1000 = 0 THEN TIMESTAMPTZ '2026-01-01' + to_days(CAST(i % 90 AS INTEGER))
			     ELSE TIMESTAMPTZ '2026-01-01' + to_microseconds(CAST(hash(i * 3) % (90 * 86400000000) AS BIGINT)) END AS ts
		FROM range(` + itoa(events) + `) r(i)`)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTilesTrainingSet(t *testing.T) {
	need(t, "python3")
	root := repoRoot(t)
	dir := writeTilesRepo(t, 300_000)
	ref := filepath.Join(t.TempDir(), "reference.duckdb")
	copyFile(t, filepath.Join(dir, "events.duckdb"), ref)

	// A backfill interrupted by the clock is resumed: here, the first run
	// stops at February, the second completes the range.
	out, err := exec.Command(bin, "aggregate", "backfill", "--repo", dir, "--end", "2026-02-01T00:00:00Z").CombinedOutput()
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "aggregate", "backfill", "--repo", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	t.Logf("fletch aggregate backfill:\n%s", out)
	if !strings.Contains(string(out), "already covered") {
		t.Errorf("the second backfill did not skip the chunks of the first:\n%s", out)
	}
	status, err := exec.Command(bin, "aggregate", "status", "--repo", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "user.total") || !strings.Contains(string(status), "current") {
		t.Fatalf("status: %v\n%s", err, status)
	}
	t.Logf("fletch aggregate status:\n%s", status)

	addr, _ := startServe(t, dir)
	runTool(t, root, os.Environ(), "bash", filepath.Join(root, "clients/python/setup.sh"))
	env := append(os.Environ(), "PYTHONPATH="+filepath.Join(root, "clients/python"), "FLETCH_URL=grpc://"+addr, "FLETCH_REFERENCE_DB="+ref, "SPINE_ROWS=100000")
	runTool(t, root, env, filepath.Join(root, ".venv/bin/python"), filepath.Join(root, "integration/testdata/tiles_training_set.py"))
}

// TestValidateTiles: a materialized feature whose tiles cannot be computed
// at the source is a located error of fletch validate, not a surprise at
// the first backfill.
func TestValidateTiles(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(tilesAcceptanceRepo, `_.txns[_.at > _.chalk_window].count()`, `_.txns[F.abs(_.amount) > 3, _.at > _.chalk_window].count()`, 1)
	bad = strings.Replace(bad, "from chalk import Windowed, windowed", "from chalk import Windowed, windowed\nimport chalk.functions as F", 1)
	for name, text := range map[string]string{"m.py": bad,
		"txns.chalk.sql": "-- resolves: Txn\n-- source: events\nselect id, user_id, amount, ts as \"at\" from txns\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin, "validate", "--repo", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "user.cnt: cannot tile: filter") || !strings.Contains(string(out), filepath.Join(dir, "m.py")+":") {
		t.Errorf("validate: %v\n%s\nwant a located 'cannot tile' error", err, out)
	}
}

// TestTilesOnlineServe: fletch serve publishes the backfilled tiles to its
// online store when it starts, and answers a materialized feature online
// with the aligned window B(t − w) ≤ at ≤ t (DESIGN §4 "Tiles"): tiles up
// to the backfill's end, raw events after it (five days and the open
// bucket here). The answers equal DuckDB SQL over the same events, and
// the same query in-process (no tiles online: every event raw).
func TestTilesOnlineServe(t *testing.T) {
	dir := writeTilesRepo(t, 60_000)
	ref := filepath.Join(t.TempDir(), "reference.duckdb")
	copyFile(t, filepath.Join(dir, "events.duckdb"), ref)
	if out, err := exec.Command(bin, "aggregate", "backfill", "--repo", dir, "--end", "2026-03-10T00:00:00Z").CombinedOutput(); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	addr, log := startServe(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(log.String(), "entities online") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("fletch serve did not publish the tiles of user.total and user.cnt:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	now := time.Date(2026, 3, 15, 13, 17, 5, 0, time.UTC)
	outs := []string{"total[7d]", "total[30d]", "total[90d]", "cnt[7d]", "cnt[30d]", "cnt[90d]"}
	args := []string{"query", "--json", "--now", now.Format(time.RFC3339), "--out", strings.Join(outs, ",")}
	users := []int{0, 1, 2, 3, 77, 4999, 123456}
	for _, u := range users {
		args = append(args, "--in", "user.id="+itoa(u))
	}
	remote := queryJSON(t, append(args, "--server", addr)...)
	db, err := sql.Open("duckdb", ref)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, ok := remote.([]any)
	if !ok || len(rows) != len(users) {
		t.Fatalf("fletch query --json: want %d rows, got %v", len(users), remote)
	}
	day := int64(86400_000_000)
	for i, u := range users {
		row := rows[i].(map[string]any)
		for _, w := range []int64{7, 30, 90} {
			// B(t - w) <= at <= t, buckets of one day.
			lo := (now.UnixMicro() - w*day) / day * day
			var total float64
			var cnt int64
			if err := db.QueryRow(`SELECT coalesce(sum(amount), 0), count(*) FROM txns WHERE user_id = ? AND epoch_us(ts) >= ? AND epoch_us(ts) <= ?`,
				u, lo, now.UnixMicro()).Scan(&total, &cnt); err != nil {
				t.Fatal(err)
			}
			label := itoa(int(w)) + "d"
			gotTotal, gotCnt := row["user.total["+label+"]"], row["user.cnt["+label+"]"]
			if f, ok := gotTotal.(float64); !ok || math.Abs(f-total) > 1e-6*math.Max(1, math.Abs(total)) {
				t.Errorf("user %d total[%s]: served %v, DuckDB says %v (row %v)", u, label, gotTotal, total, row)
			}
			if f, ok := gotCnt.(float64); !ok || int64(f) != cnt {
				t.Errorf("user %d cnt[%s]: served %v, DuckDB says %v", u, label, gotCnt, cnt)
			}
		}
	}
}

// TestTilesScheduleFromConfig: fletch.yaml's tiles.schedules runs a
// feature's backfill inside fletch serve, over its definition (user.total
// has no backfill_schedule; user.cnt's daily one is not due), and a name
// that is no materialized feature is refused with the nearest one.
func TestTilesScheduleFromConfig(t *testing.T) {
	dir := writeTilesRepo(t, 20_000)
	yaml := filepath.Join(dir, "fletch.yaml")
	base, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yaml, append(base, "tiles:\n  schedules:\n    user.totl: '@every 1s'\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "validate", "--repo", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `fletch.yaml:7:5: tiles.schedules names "user.totl", which is not a materialized windowed feature of the repository (did you mean "user.total"?)`) {
		t.Fatalf("validate: %v\n%s\nwant the unknown feature located, with the nearest name", err, out)
	}

	if err := os.WriteFile(yaml, append(base, "tiles:\n  schedules:\n    user.total: '@every 1s'\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, nil)
	waitLog(t, srv, "scheduled backfill", 0)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	status, err := exec.Command(bin, "aggregate", "status", "--repo", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, status)
	}
	if !regexp.MustCompile(`(?m)^user\.total\s+1d\s.*\s20000\s+\d+\s+current$`).Match(status) || !strings.Contains(string(status), "user.cnt (1d buckets): not materialized") {
		t.Errorf("after fletch serve ran user.total's schedule, want its tiles over all 20,000 events and none of user.cnt:\n%s\n%s", status, srv.log.String())
	}
}

// TestTilesAddedWindow is the acceptance "adding a 14d window to a feature
// with 7d and 30d tiles answers without reading the raw event table" as a
// user runs it: tiles backfilled, "14d" added to user.total's windows in
// m.py. The tiles stay current (the windows are no part of what they
// depend on), fletch plan says the events are not read, and with the
// events table gone the materialized 14d answers what DuckDB computes from
// the events over B(t − 14d) ≤ at < B(t): any query at the source would fail.
func TestTilesAddedWindow(t *testing.T) {
	dir := writeTilesRepo(t, 20_000)
	if out, err := exec.Command(bin, "aggregate", "backfill", "--repo", dir).CombinedOutput(); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	py := filepath.Join(dir, "m.py")
	src, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	declared := strings.Replace(string(src), `total: Windowed[float] = windowed("7d", "30d", "90d",`, `total: Windowed[float] = windowed("7d", "14d", "30d", "90d",`, 1)
	if declared == string(src) {
		t.Fatal("the repository's user.total changed: update the test")
	}
	if err := os.WriteFile(py, []byte(declared), 0o644); err != nil {
		t.Fatal(err)
	}
	status, err := exec.Command(bin, "aggregate", "status", "--repo", dir).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^user\.total\s+1d\s.*\s20000\s+\d+\s+current$`).Match(status) {
		t.Fatalf("after adding 14d, want user.total's tiles current: %v\n%s", err, status)
	}
	plan, stderr, err := fletch(t, "plan", "--repo", dir, "--in", "user.id=0", "--out", "total[14d]")
	if err != nil || !strings.Contains(plan, "with use_materialized_offline_query: not read") ||
		!strings.Contains(plan, "merge tiles fletch_tiles__user__total__86400 (1d buckets, B(t - 14d) <= time < B(t))") {
		t.Errorf("fletch plan: %v %s\n%s\nwant the events not read and 14d merged from the 1d tiles", err, stderr, plan)
	}

	now := time.Date(2026, 3, 15, 13, 17, 5, 0, time.UTC)
	users := []int{0, 1, 2, 77, 4999, 123456}
	day := int64(86400_000_000)
	lo, hi := (now.UnixMicro()-14*day)/day*day, now.UnixMicro()/day*day
	db, err := sql.Open("duckdb", filepath.Join(dir, "events.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]float64{}
	for _, u := range users {
		var total float64
		if err := db.QueryRow(`SELECT coalesce(sum(amount), 0) FROM txns WHERE user_id = ? AND epoch_us(ts) >= ? AND epoch_us(ts) < ?`, u, lo, hi).Scan(&total); err != nil {
			t.Fatal(err)
		}
		want[u] = total
	}
	_, err = db.Exec(`ALTER TABLE txns RENAME TO txns_hidden`)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"query", "--repo", dir, "--materialized", "--json", "--now", now.Format(time.RFC3339), "--out", "total[14d]"}
	for _, u := range users {
		args = append(args, "--in", "user.id="+itoa(u))
	}
	rows, ok := queryJSON(t, args...).([]any)
	if !ok || len(rows) != len(users) {
		t.Fatalf("fletch query --json: want %d rows, got %v", len(users), rows)
	}
	for i, u := range users {
		got, ok := rows[i].(map[string]any)["user.total[14d]"].(float64)
		if !ok || math.Abs(got-want[u]) > 1e-6*math.Max(1, math.Abs(want[u])) {
			t.Errorf("user %d total[14d]: %v, DuckDB says %v", u, rows[i], want[u])
		}
	}
}
