package planner

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/internal/lru"
	"github.com/fletch-engine/fletch/statement"
)

// Observer is told what runs do, for a server's metrics. Its methods are
// called on the query's path, concurrently: they must be cheap and never
// block. The planner knows no metrics library; cmd/fletch plugs one in.
type Observer interface {
	// Fetched reports one resolver query: its resolver, its source, how
	// long it took and its error (nil when it answered).
	Fetched(resolver, source string, d time.Duration, err error)
	// OnlineRead reports one read of the online store for class: the
	// feature values (rows × features) it served (hits) and those that
	// had to be computed (misses), how long it took and its error.
	OnlineRead(class string, hits, misses int, d time.Duration, err error)
	// OnlineWritten reports one write-back of class to the online store.
	OnlineWritten(class string, d time.Duration, err error)
}

// WithObserver makes the engine report to o.
func WithObserver(o Observer) EngineOption {
	return func(e *Engine) { e.observer = o }
}

// PlanCacheStats returns the plan cache's contents and counters.
func (e *Engine) PlanCacheStats() lru.Stats { return e.plans.Stats() }

// DefaultMaxHasManyRows is the has-many rows one entity may have in a run
// when WithMaxHasManyRows says nothing.
const DefaultMaxHasManyRows = 100_000

// WithMaxHasManyRows bounds the related rows of one entity a has-many
// reads in a run (0: DefaultMaxHasManyRows; negative: no bound): an entity
// beyond it fails the run, rather than an answer taking the server's
// memory (fletch.yaml server.limits.max_has_many_rows).
func WithMaxHasManyRows(n int) EngineOption {
	return func(e *Engine) { e.maxHasMany = n }
}

// checkHasMany refuses a has-many of c whose rows (their parent row each)
// give one entity of keys more than the bound.
func (r *run) checkHasMany(c *frameNode, keys arrow.Array, parents []int32) error {
	if max := r.maxHasMany(); max < 0 || len(parents) <= max {
		return nil
	}
	counts := make([]int, keys.Len())
	for _, p := range parents {
		counts[p]++
	}
	return r.checkHasManyCounts(c, keys, func(i int) int { return counts[i] })
}

// checkHasManyCounts is checkHasMany given how many related rows parent
// row i sees (count(i)).
func (r *run) checkHasManyCounts(c *frameNode, keys arrow.Array, count func(i int) int) error {
	max := r.maxHasMany()
	if max < 0 {
		return nil
	}
	for i := range keys.Len() {
		if count(i) > max {
			return &statement.Error{Kind: statement.ResourceExhausted, Msg: fmt.Sprintf(
				"%s %s has more than %d %s rows; at most %d rows of a has-many are read per entity (server.limits.max_has_many_rows)",
				c.parent.class.Name, keys.ValueStr(i), max, c.class.Name, max)}
		}
	}
	return nil
}

func (r *run) maxHasMany() int {
	if max := r.p.engine.maxHasMany; max != 0 {
		return max
	}
	return DefaultMaxHasManyRows
}
