package flight

import (
	"container/list"
	"sync"
)

// planCache keeps the most recently planned SQL texts: a statement is
// planned at GetFlightInfo and again at DoGet (its ticket carries the
// text, so that any server can answer it), and clients repeat the same
// texts. Parsing dominates a wide statement (pg_query's parse of a
// 250-column select list); planning itself is cached by the engine.
// Only successes are kept; authorization is checked on every use.
type planCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cachedPlan, most recently used first
	byKey map[planKey]*list.Element
}

type planKey struct {
	sql      string
	prepared bool
	// template marks a statement's template (see Server.planTemplate);
	// its query has no statement when the template cannot be parsed.
	template bool
}

type cachedPlan struct {
	key planKey
	q   *query
}

func newPlanCache(max int) *planCache {
	return &planCache{max: max, order: list.New(), byKey: map[planKey]*list.Element{}}
}

func (c *planCache) get(k planKey) *query {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil
	}
	c.order.MoveToFront(e)
	return e.Value.(*cachedPlan).q
}

func (c *planCache) put(k planKey, q *query) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(&cachedPlan{key: k, q: q})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cachedPlan).key)
	}
}
