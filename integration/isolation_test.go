package integration

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
)

// TestIsolation locks the table of one class in Postgres while its queries
// pile up, and checks that the bulkheads of fletch.yaml keep the rest of
// the server answering: a class on the same source (max_per_resolver
// leaves it connections) and a class on another source answer while the
// locked class's queries are all still blocked; the locked class's
// queries beyond max_queued are refused at once (Unavailable, naming the
// key), not queued without end; once the lock goes, the waiting ones
// answer. Then /metrics counts what happened. Before the bulkheads, the
// four blocked queries held the source's four connections and the other
// class waited for the lock too.
func TestIsolation(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"slow_things", "fast_things", "other_things"} {
		if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id bigint, v text); INSERT INTO "+table+" VALUES (1, '"+table+"')"); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(workDir, "isolation")
	files := map[string]string{
		"things.py": "from chalk.features import features\n\n\n@features\nclass Slow:\n    id: int\n    v: str | None\n\n\n@features\nclass Fast:\n    id: int\n    v: str | None\n\n\n@features\nclass Other:\n    id: int\n    v: str | None\n",
		"slow.sql":  "-- resolves: Slow\n-- source: pg\nselect id, v from slow_things\n",
		"fast.sql":  "-- resolves: Fast\n-- source: pg\nselect id, v from fast_things\n",
		"other.sql": "-- resolves: Other\n-- source: pg2\nselect id, v from other_things\n",
		"fletch.yaml": `sources:
  pg:
    kind: postgres
    dsn: ${FLETCH_IT_ISO_DSN}
    max_conns: 4
    max_per_resolver: 2
    max_queued: 3
  pg2:
    kind: postgres
    dsn: ${FLETCH_IT_ISO_DSN}
    max_conns: 2
`,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	httpAddr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, []string{"--http-listen", httpAddr}, "FLETCH_IT_ISO_DSN="+dsn)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, srv.addr, mem)
	query := func(ctx context.Context, cl *flightsql.Client, class string) error {
		info, err := cl.Execute(ctx, "SELECT v FROM "+class+" WHERE id = 1")
		if err != nil {
			return err
		}
		_, rows, err := readAll(ctx, cl, info)
		if err == nil && (len(rows) != 1 || rows[0][0] != class+"_things") {
			t.Errorf("%s answered %v", class, rows)
		}
		return err
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE slow_things IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// Six queries of the locked class: two hold connections (max_per_
	// resolver), three wait for a turn (max_queued), one is refused.
	const slow = 6
	results := make(chan error, slow)
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			results <- query(ctx, dial(t, srv.addr, mem), "slow")
		})
	}
	refused := <-results
	if status.Code(refused) != codes.Unavailable || !strings.Contains(refused.Error(), "sources.pg.max_per_resolver") {
		t.Fatalf("the query beyond the queue: %v, want Unavailable naming sources.pg.max_per_resolver", refused)
	}
	for metric(t, httpAddr, `fletch_queries_in_flight{path="sql"}`) != slow-1 {
		time.Sleep(10 * time.Millisecond)
	}
	// The other classes answer while every query of the locked one waits.
	for _, class := range []string{"fast", "other"} {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := query(qctx, cl, class); err != nil {
			t.Errorf("%s while slow_things is locked: %v", class, err)
		}
		cancel()
	}
	select {
	case err := <-results:
		t.Fatalf("a query of the locked class returned while it was locked: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("a waiting query of the locked class, after the lock: %v", err)
		}
	}
	for series, want := range map[string]float64{
		`fletch_queries_total{code="OK",path="sql"}`:          slow - 1 + 2,
		`fletch_queries_total{code="Unavailable",path="sql"}`: 1,
		`fletch_queries_in_flight{path="sql"}`:                0,
		`fletch_source_duration_seconds_count{source="pg2"}`:  1,
		`fletch_guard_refused_total{name="source pg"}`:        1,
	} {
		if got := metric(t, httpAddr, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if resp, err := http.Get("http://" + httpAddr + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz: %v %v", resp, err)
	}
}

// metric is the value of one series on the server's /metrics (-1 when
// absent).
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
