package planner

import (
	"time"

	"github.com/fletch-engine/fletch/internal/lru"
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
