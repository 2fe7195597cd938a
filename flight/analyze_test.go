package flight

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestExplainAnalyze runs EXPLAIN ANALYZE over SQL and the native query's
// analyze: the plan comes back with each stage's rows, checked against
// DuckDB over the same data (the reviews the two users have, seen at the
// query's time), and no answer rows.
func TestExplainAnalyze(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	var reviews int
	if err := db.DB().QueryRow(`SELECT count(*) FROM marketplace_reviews WHERE user_hid IN ('u1', 'u2') AND created_at <= ?`, e2eNow).Scan(&reviews); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"query user -> full_name, average_rating_given",
		"analyze: 2 rows in ",
		": fetch users [source marketplace] of user: 2 in, 2 out",
		fmt.Sprintf(": has-many of review: 2 in, %d out", reviews),
		": frame of user: 2 in, 2 out",
	}
	info, err := cl.Execute(ctx, `EXPLAIN ANALYZE SELECT full_name, average_rating_given FROM user WHERE id IN ('u1', 'u2')`)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	text := strings.Join(column(recs, 0), "\n")
	releaseAll(recs)
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("EXPLAIN ANALYZE lacks %q:\n%s", w, text)
		}
	}

	in := stringBatch(mem, "user.id", "u1", "u2")
	defer in.Release()
	a, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["full_name", "average_rating_given"], "analyze": true}}`, in.Schema(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	if len(resultRows(a.recs)) != 0 {
		t.Errorf("native analyze answered %d rows", len(resultRows(a.recs)))
	}
	for _, w := range want[1:] {
		if !strings.Contains(a.summary.Plan, w) {
			t.Errorf("native analyze lacks %q:\n%s", w, a.summary.Plan)
		}
	}

	if _, err := cl.Execute(ctx, `EXPLAIN (ANALYZE, VERBOSE) SELECT full_name FROM user WHERE id = 'u1'`); err == nil || !strings.Contains(err.Error(), "but ANALYZE") {
		t.Errorf("EXPLAIN VERBOSE: %v", err)
	}
}
