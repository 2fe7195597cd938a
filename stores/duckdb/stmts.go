package duckdb

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxStatements bounds the prepared statements a Source keeps: a lookup's
// text differs by resolver and by number of keys (1 to maxInlineKeys), so
// 256 holds the online lookups of a few resolvers at every batch size.
const maxStatements = 256

// stmtCache keeps the most recently used statements prepared, evicting the
// least recently used beyond its bound. database/sql prepares a statement
// again on each pooled connection it runs on, and closing an evicted one
// waits for the queries still reading it.
type stmtCache struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*list.Element // of order, value *cachedStmt
	order *list.List               // most recently used first
}

type cachedStmt struct {
	query string
	stmt  *sql.Stmt
}

func newStmtCache(limit int) *stmtCache {
	return &stmtCache{max: limit, byKey: map[string]*list.Element{}, order: list.New()}
}

// get returns query prepared on db, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	if st := c.lookup(query); st != nil {
		return st, nil
	}
	// Prepared outside the lock: a slow prepare holds up no other lookup.
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[query]; ok { // prepared concurrently: keep the first
		st.Close()
		c.order.MoveToFront(e)
		return e.Value.(*cachedStmt).stmt, nil
	}
	c.byKey[query] = c.order.PushFront(&cachedStmt{query: query, stmt: st})
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(*cachedStmt)
		delete(c.byKey, old.query)
		old.stmt.Close()
	}
	return st, nil
}

func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[query]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedStmt).stmt
}

// close closes every statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for e := c.order.Front(); e != nil; e = e.Next() {
		errs = append(errs, e.Value.(*cachedStmt).stmt.Close())
	}
	c.byKey, c.order = map[string]*list.Element{}, list.New()
	return errors.Join(errs...)
}
