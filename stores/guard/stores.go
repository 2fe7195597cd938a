package guard

import (
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

// Source is a stores.Source whose fetches go through a Guard.
type Source struct {
	stores.Source
	Guard *Guard
}

// Fetch fetches from the source under the guard.
func (s Source) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (rec arrow.RecordBatch, err error) {
	err = s.Guard.DoKey(ctx, req.Resolver, func() error {
		rec, err = s.Source.Fetch(ctx, mem, req)
		return err
	})
	return rec, err
}

// Ping pings the source itself, past the guard: readiness asks whether it
// answers, not whether the guard lets calls through.
func (s Source) Ping(ctx context.Context) error { return ping(ctx, s.Source) }

// Unwrap is the guarded source, for what asks what it is (its SQL dialect:
// tiles.DialectOf); its calls go through s.
func (s Source) Unwrap() stores.Source { return s.Source }

// OnlineStore is a stores.OnlineStore whose reads and writes go through a
// Guard.
type OnlineStore struct {
	stores.OnlineStore
	Guard *Guard
}

// Get reads under the guard.
func (s OnlineStore) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (v *stores.OnlineValues, err error) {
	err = s.Guard.Do(ctx, func() error {
		v, err = s.OnlineStore.Get(ctx, mem, class, keys, want)
		return err
	})
	return v, err
}

// Set writes under the guard.
func (s OnlineStore) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	return s.Guard.Do(ctx, func() error { return s.OnlineStore.Set(ctx, class, keys, values, observed) })
}

// Ping pings the store itself, past the guard.
func (s OnlineStore) Ping(ctx context.Context) error { return ping(ctx, s.OnlineStore) }

func ping(ctx context.Context, x any) error {
	if p, ok := x.(stores.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
