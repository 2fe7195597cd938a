package duckdb

import (
	"context"
	"database/sql"
	"sync"

	"github.com/fletch-engine/fletch/internal/lru"
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
	// mu guards every use of stmts and the users of its statements: the
	// cache's eviction callback runs inside Add, so under mu too.
	mu    sync.Mutex
	stmts *lru.Cache[string, *cachedStmt]
}

type cachedStmt struct {
	stmt    *sql.Stmt
	users   int  // queries holding it
	evicted bool // out of the cache: closed when the last user releases it
}

func newStmtCache(limit int) *stmtCache {
	return &stmtCache{stmts: lru.New[string, *cachedStmt](limit, 0, func(_ string, cs *cachedStmt) {
		cs.evicted = true
		if cs.users == 0 {
			cs.stmt.Close()
		}
	})}
}

// get returns query prepared on db, preparing it on first use, and the
// function that releases it: the caller's query runs between the two, so
// an eviction meanwhile cannot close the statement under it.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, func(), error) {
	if cs := c.hold(query, nil); cs != nil {
		return cs.stmt, func() { c.release(cs) }, nil
	}
	// Prepared outside the lock: a slow prepare holds up no other lookup.
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	cs := c.hold(query, st)
	return cs.stmt, func() { c.release(cs) }, nil
}

// hold returns the cached statement of query, held by one more user. When
// none is cached it keeps st (nil: it keeps nothing and returns nil); a
// statement prepared concurrently meanwhile wins, and st is closed.
func (c *stmtCache) hold(query string, st *sql.Stmt) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.stmts.Get(query)
	switch {
	case ok:
		if st != nil {
			st.Close()
		}
	case st == nil:
		return nil
	default:
		cs = &cachedStmt{stmt: st}
		c.stmts.Add(query, cs, 1)
	}
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
	c.stmts.Purge()
	return nil
}
