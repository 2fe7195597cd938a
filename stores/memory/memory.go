// Package memory is the in-process online store: per class, a map from
// entity key to the entity's packed entity (stores/packed, the layout the
// Redis store keeps), so that it behaves as the other stores do. It is the
// default online store and the one tests use; it keeps nothing across
// restarts.
//
// One string per entity, rather than a value per feature, keeps the heap
// the garbage collector marks on every cycle at a few objects per entity
// (100,000 entities × 250 features: ~200,000 objects instead of 25 M), and
// a Get does one map lookup per key.
//
// It knows nothing of feature classes beyond their names, nor of
// staleness: the planner decides what is fresh enough.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/packed"
)

// Store is a stores.OnlineStore in memory. It is safe for concurrent use.
type Store struct {
	mu sync.RWMutex
	// entities[class][entity key] is a packed entity. A Set replaces it
	// with another string, never changes it: a Get may read it after
	// letting go of the lock.
	entities map[string]map[string]string
	// dirs[class] numbers the class's features (packed.Directory), in
	// this process only, as its entities are
	dirs map[string]*packed.Directory
}

var _ stores.OnlineStore = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{entities: map[string]map[string]string{}, dirs: map[string]*packed.Directory{}}
}

// dir is class's directory, made on first use.
func (s *Store) dir(class string) *packed.Directory {
	s.mu.RLock()
	d := s.dirs[class]
	s.mu.RUnlock()
	if d != nil {
		return d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d = s.dirs[class]; d == nil {
		d = packed.NewDirectory(nil)
		s.dirs[class] = d
	}
	return d
}

// Close empties the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entities = map[string]map[string]string{}
	s.dirs = map[string]*packed.Directory{}
	return nil
}

// Get looks every key up under one read lock, then decodes the asked
// features of the entities found outside it.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stores.CheckKeys(keys); err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	f, err := s.dir(class).Fields(ctx, want, false)
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	blobs := make([]string, keys.Len())
	var key []byte
	s.mu.RLock()
	entities := s.entities[class]
	for r := range blobs {
		var ok bool
		key, ok, _ = stores.AppendEntityKey(key[:0], keys, r) // the keys' type is checked
		if ok {
			blobs[r] = entities[string(key)] // "" for an unknown key
		}
	}
	s.mu.RUnlock()

	vb, err := stores.NewValuesBuilder(mem, want, keys.Len())
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	defer vb.Release()
	u := packed.NewUnpacker(f)
	for r, blob := range blobs {
		if err := u.Unpack(vb, r, blob); err != nil {
			key, _, _ := stores.EntityKey(keys, r)
			return nil, fmt.Errorf("memory store: %s %s: %w", class, key, err)
		}
	}
	return vb.Finish(), nil
}

// Set packs each row first, then merges them into the stored entities
// under one write lock.
func (s *Store) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(keys.Len()) != values.NumRows() || len(observed) != keys.Len() {
		return fmt.Errorf("memory store: %d keys, %d rows of values and %d observation times; want as many of each", keys.Len(), values.NumRows(), len(observed))
	}
	f, err := s.dir(class).Fields(ctx, values.Schema(), true)
	if err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	type write struct{ key, blob string }
	writes := make([]write, 0, keys.Len())
	var buf []byte
	for r := range keys.Len() {
		key, ok, err := stores.EntityKey(keys, r)
		if err != nil {
			return fmt.Errorf("memory store: %w", err)
		}
		if !ok {
			continue
		}
		if buf, err = packed.Append(buf[:0], observed[r], f, values, r); err != nil {
			return fmt.Errorf("memory store: %w", err)
		}
		writes = append(writes, write{key, string(buf)})
	}
	if len(writes) == 0 {
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	entities := s.entities[class]
	if entities == nil {
		entities = make(map[string]string, len(writes))
		s.entities[class] = entities
	}
	for _, w := range writes { // in order: a key written twice keeps the newer row
		merged, err := packed.Merge(entities[w.key], w.blob)
		if err != nil {
			return fmt.Errorf("memory store: %s %s: %w", class, w.key, err)
		}
		entities[w.key] = merged
	}
	return nil
}
