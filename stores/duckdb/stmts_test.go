package duckdb

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestStmtCacheBound fills a cache of two with three statements: the least
// recently used is dropped and closed, a statement evicted while a query
// holds it runs to the end and is closed on release, and a statement asked
// again is prepared again.
func TestStmtCacheBound(t *testing.T) {
	src := openTest(t)
	ctx := context.Background()
	c := newStmtCache(2)
	defer c.close()
	query := func(i int) string { return fmt.Sprintf("SELECT count(*) + %d FROM people WHERE id <= $1", i) }
	answer := func(i int) (int64, error) {
		st, release, err := c.get(ctx, src.DB(), query(i))
		if err != nil {
			return 0, err
		}
		defer release()
		var n int64
		err = st.QueryRowContext(ctx, 10).Scan(&n)
		return n, err
	}
	first, releaseFirst, err := c.get(ctx, src.DB(), query(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if n, err := answer(i); err != nil || n != int64(10+i) {
			t.Fatalf("statement %d: %d, %v; want %d", i, n, err, 10+i)
		}
	}
	if st := c.stmts.Stats(); st.Entries != 2 || c.hold(query(0), nil) != nil {
		t.Fatalf("%d statements kept, or the first among them; want 2 without it", st.Entries)
	}
	var n int64
	if err := first.QueryRowContext(ctx, 10).Scan(&n); err != nil || n != 10 {
		t.Fatalf("the evicted statement, still held: %d, %v; want 10", n, err)
	}
	releaseFirst()
	if err := first.QueryRowContext(ctx, 10).Scan(&n); err == nil {
		t.Error("the evicted statement runs after its release: it was not closed")
	}
	if n, err := answer(0); err != nil || n != 10 {
		t.Errorf("statement 0 again: %d, %v", n, err)
	}
}

// TestStmtCacheChurn has goroutines share a cache of two statements among
// five queries, so that statements are evicted while others run them:
// every answer is right, and none runs a closed statement.
func TestStmtCacheChurn(t *testing.T) {
	src := openTest(t)
	ctx := context.Background()
	c := newStmtCache(2)
	defer c.close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range 40 {
				i := (g + k) % 5
				st, release, err := c.get(ctx, src.DB(), fmt.Sprintf("SELECT count(*) + %d FROM people WHERE id <= $1", i))
				if err != nil {
					errs <- err
					return
				}
				var n int64
				err = st.QueryRowContext(ctx, 10).Scan(&n)
				release()
				if err != nil || n != int64(10+i) {
					errs <- fmt.Errorf("query %d: %d, %v", i, n, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
