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
// again on each pooled connection it runs on. An evicted statement is
// closed once no query holds it (see get).
type stmtCache struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*list.Element // of order, value *cachedStmt
	order *list.List               // most recently used first
}

type cachedStmt struct {
	query   string
	stmt    *sql.Stmt
	users   int  // queries holding it, guarded by the cache's mu
	evicted bool // out of the cache: closed when the last user releases it
}

func newStmtCache(limit int) *stmtCache {
	return &stmtCache{max: limit, byKey: map[string]*list.Element{}, order: list.New()}
}

// get returns query prepared on db, preparing it on first use, and the
// function that releases it: the caller's query runs between the two, so
// an eviction meanwhile cannot close the statement under it.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, func(), error) {
	if cs := c.lookup(query); cs != nil {
		return cs.stmt, func() { c.release(cs) }, nil
	}
	// Prepared outside the lock: a slow prepare holds up no other lookup.
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[query]; ok { // prepared concurrently: keep the first
		st.Close()
		c.order.MoveToFront(e)
		cs := e.Value.(*cachedStmt)
		cs.users++
		return cs.stmt, func() { c.release(cs) }, nil
	}
	cs := &cachedStmt{query: query, stmt: st, users: 1}
	c.byKey[query] = c.order.PushFront(cs)
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(*cachedStmt)
		delete(c.byKey, old.query)
		old.evicted = true
		if old.users == 0 {
			old.stmt.Close()
		}
	}
	return st, func() { c.release(cs) }, nil
}

// lookup returns the cached statement of query, held, or nil.
func (c *stmtCache) lookup(query string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[query]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	cs := e.Value.(*cachedStmt)
	cs.users++
	return cs
}

func (c *stmtCache) release(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs.users--; cs.users == 0 && cs.evicted {
		cs.stmt.Close()
	}
}

// close closes every statement; the Source is closing, no query runs.
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
