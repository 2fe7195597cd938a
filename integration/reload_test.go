package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestReloadWatch: with --watch, saving a definition file reloads the
// repository without a signal.
func TestReloadWatch(t *testing.T) {
	dir := t.TempDir()
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	data := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, data)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %q\n", data)
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, []string{"--watch"})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, srv.addr, mem)
	ctx := context.Background()

	py := filepath.Join(dir, "marketplace.py")
	src, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	const anchorLine = `    full_name: str = _.first_name + " " + _.last_name` + "\n"
	added := strings.Replace(string(src), anchorLine, anchorLine+`    first_name_bang: str = _.first_name + "!"`+"\n", 1)
	if err := os.WriteFile(py, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, srv, "trigger=\"changed marketplace.py\"", 0)
	info, err := cl.Execute(ctx, `SELECT id, first_name_bang FROM user WHERE id IN ('50', '1') AND __as_of__ = '`+anchor.Format(time.RFC3339)+`'`)
	if err != nil {
		t.Fatalf("after the watch reloaded: %v\n%s", err, srv.log.String())
	}
	_, got := fetch(t, ctx, cl, info)
	want := referenceRows(t, `WITH s(i, id) AS (VALUES (0, '50'), (1, '1'))
		SELECT s.id, u.first_name || '!' FROM s LEFT JOIN marketplace_users u ON u.hid = s.id AND u.created_at <= `+sqlTime(anchor)+` ORDER BY s.i`)
	compareRows(t, []string{"id", "first_name_bang"}, got, want)
}

// TestReloadSIGHUP serves a copy of the marketplace, adds a feature to its
// Python definitions and sends SIGHUP: the new feature answers, checked
// against DuckDB. A prepared statement made before the reload is refused
// with FailedPrecondition (its plan belongs to the replaced engine). Then
// the file is broken and SIGHUP sent again: the log names the error's
// position, and the previous repository (with the new feature) still
// answers.
func TestReloadSIGHUP(t *testing.T) {
	dir := t.TempDir()
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	data := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, data)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %q\n", data)
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, []string{"--http-listen", httpAddr})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, srv.addr, mem)
	ctx := context.Background()

	asOf := anchor.Format(time.RFC3339)
	query := `SELECT id, first_name_bang FROM user WHERE id IN ('50', '1', 'nobody') AND __as_of__ = '` + asOf + `'`
	if _, err := cl.Execute(ctx, query); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("before the reload: %v, want InvalidArgument (no such feature)", err)
	}
	prep, err := cl.Prepare(ctx, `SELECT id, full_name FROM user WHERE id IN ('50') AND __as_of__ = '`+asOf+`'`)
	if err != nil {
		t.Fatal(err)
	}
	defer prep.Close(ctx)
	// A second plan in the first engine's cache (the gauges below must
	// not read that engine after the reloads).
	info, err := cl.Execute(ctx, `SELECT id, email FROM user WHERE id IN ('1') AND __as_of__ = '`+asOf+`'`)
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, ctx, cl, info)

	py := filepath.Join(dir, "marketplace.py")
	src, err := os.ReadFile(py)
	if err != nil {
		t.Fatal(err)
	}
	const anchorLine = `    full_name: str = _.first_name + " " + _.last_name` + "\n"
	if !strings.Contains(string(src), anchorLine) {
		t.Fatalf("marketplace.py has no line %q", anchorLine)
	}
	added := strings.Replace(string(src), anchorLine, anchorLine+`    first_name_bang: str = _.first_name + "!"`+"\n", 1)
	if err := os.WriteFile(py, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	reload(t, srv, "reloaded")

	info, err = cl.Execute(ctx, query)
	if err != nil {
		t.Fatalf("after the reload: %v\n%s", err, srv.log.String())
	}
	_, got := fetch(t, ctx, cl, info)
	want := referenceRows(t, `WITH s(i, id) AS (VALUES (0, '50'), (1, '1'), (2, 'nobody'))
		SELECT s.id, u.first_name || '!' FROM s LEFT JOIN marketplace_users u ON u.hid = s.id AND u.created_at <= `+sqlTime(anchor)+` ORDER BY s.i`)
	compareRows(t, []string{"id", "first_name_bang"}, got, want)
	// The console reads the repository serving now: the new feature is in
	// its catalogue and has its lineage.
	var cat struct {
		Classes []struct {
			Table    string `json:"table"`
			Features []struct {
				Name string `json:"name"`
			} `json:"features"`
		} `json:"classes"`
	}
	getJSON(t, "http://"+httpAddr+"/console/api/catalogue", "", &cat)
	found := false
	for _, c := range cat.Classes {
		for _, f := range c.Features {
			found = found || c.Table == "user" && f.Name == "first_name_bang"
		}
	}
	var lin struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
	}
	getJSON(t, "http://"+httpAddr+"/console/api/lineage?feature=user.first_name_bang", "", &lin)
	if !found || len(lin.Nodes) == 0 {
		t.Errorf("after the reload, the console's catalogue has first_name_bang: %v; its lineage: %v", found, lin.Nodes)
	}
	if _, err := prep.Execute(ctx); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "prepare it again") {
		t.Fatalf("a statement prepared before the reload: %v, want FailedPrecondition asking to prepare it again", err)
	}

	// A bulkhead on the source: its series appear on /metrics once the
	// reload reopened the source (they were those of the first sources).
	if got := metric(t, httpAddr, `fletch_guard_refused_total{name="source marketplace"}`); got != -1 {
		t.Fatalf("a guard series before any source has a guard: %v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml+"    max_concurrent: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A changed fletch.yaml is opened anew (the same DuckDB file, in the
	// same process, beside the old environment until it drains).
	reload(t, srv, "config=reopened")
	info, err = cl.Execute(ctx, query)
	if err != nil {
		t.Fatalf("after fletch.yaml was reopened: %v\n%s", err, srv.log.String())
	}
	_, got = fetch(t, ctx, cl, info)
	compareRows(t, []string{"id", "first_name_bang"}, got, want)

	// Broken: an unclosed parenthesis on a line of its own at the end.
	lines := strings.Count(added, "\n")
	if err := os.WriteFile(py, []byte(added+"oops = (\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload(t, srv, "reload refused")
	if at := fmt.Sprintf("marketplace.py:%d:", lines+1); !strings.Contains(srv.log.String(), at) {
		t.Fatalf("the refused reload's log names no %s:\n%s", at, srv.log.String())
	}
	info, err = cl.Execute(ctx, query)
	if err != nil {
		t.Fatalf("after a refused reload: %v", err)
	}
	_, got = fetch(t, ctx, cl, info)
	compareRows(t, []string{"id", "first_name_bang"}, got, want)
	for series, want := range map[string]float64{`fletch_reloads_total{result="ok"}`: 2, `fletch_reloads_total{result="refused"}`: 1,
		// The gauges read the engine serving now: it planned the query
		// once since the last reload.
		"fletch_plan_cache_entries": 1,
		// The guards of the sources serving now.
		`fletch_guard_refused_total{name="source marketplace"}`: 0, `fletch_guard_running{name="source marketplace"}`: 0} {
		if got := metric(t, httpAddr, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// reload sends SIGHUP to srv and waits until its log has one more line
// containing marker.
func reload(t *testing.T, srv *serveProcess, marker string) {
	t.Helper()
	before := strings.Count(srv.log.String(), marker)
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, srv, marker, before)
}

// waitLog waits until srv's log has more than before lines containing
// marker.
func waitLog(t *testing.T, srv *serveProcess, marker string, before int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for strings.Count(srv.log.String(), marker) == before {
		select {
		case <-deadline:
			t.Fatalf("no %q logged:\n%s", marker, srv.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
