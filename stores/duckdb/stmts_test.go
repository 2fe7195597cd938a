package duckdb

import (
	"context"
	"fmt"
	"testing"
)

// TestStmtCacheBound fills a cache of two with three statements: the least
// recently used is closed and dropped, the others still answer, and a
// statement asked again is prepared again.
func TestStmtCacheBound(t *testing.T) {
	src := openTest(t)
	ctx := context.Background()
	c := newStmtCache(2)
	defer c.close()
	query := func(i int) string { return fmt.Sprintf("SELECT count(*) + %d FROM people WHERE id <= $1", i) }
	answer := func(i int) (int64, error) {
		st, err := c.get(ctx, src.DB(), query(i))
		if err != nil {
			return 0, err
		}
		var n int64
		err = st.QueryRowContext(ctx, 10).Scan(&n)
		return n, err
	}
	first, err := c.get(ctx, src.DB(), query(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n, err := answer(i); err != nil || n != int64(10+i) {
			t.Fatalf("statement %d: %d, %v; want %d", i, n, err, 10+i)
		}
	}
	if c.order.Len() != 2 || c.lookup(query(0)) != nil {
		t.Fatalf("%d statements kept, the first among them: %v; want 2 without it", c.order.Len(), c.lookup(query(0)) != nil)
	}
	if err := first.QueryRowContext(ctx, 10).Scan(new(int64)); err == nil {
		t.Error("the evicted statement still runs: it was not closed")
	}
	if n, err := answer(0); err != nil || n != 10 {
		t.Errorf("statement 0 again: %d, %v", n, err)
	}
}
