// Package memory is the in-process online store: cached feature values in a
// map, encoded as the other online stores encode them (stores.AppendValue),
// so that it behaves as they do. It is the default online store and the one
// tests use; it keeps nothing across restarts.
//
// It knows nothing of feature classes beyond their names, nor of staleness:
// the planner decides what is fresh enough.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

// Store is a stores.OnlineStore in memory. It is safe for concurrent use.
type Store struct {
	mu sync.RWMutex
	// values[class][entity key][feature] is one encoded value.
	values map[string]map[string]map[string][]byte
}

var _ stores.OnlineStore = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{values: map[string]map[string]map[string][]byte{}}
}

// Close empties the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = map[string]map[string]map[string][]byte{}
	return nil
}

// Get answers the stored values of all keys under one read lock.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := stores.CheckKeys(keys); err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	vb, err := stores.NewValuesBuilder(mem, want, keys.Len())
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	defer vb.Release()
	var key []byte
	s.mu.RLock()
	defer s.mu.RUnlock()
	entities := s.values[class]
	for r := range keys.Len() {
		var ok bool
		if key, ok, err = stores.AppendEntityKey(key[:0], keys, r); err != nil {
			return nil, fmt.Errorf("memory store: %w", err)
		}
		stored := entities[string(key)] // nil for a null or unknown key
		if !ok || stored == nil {
			continue
		}
		for i := range want.NumFields() {
			if enc, ok := stored[want.Field(i).Name]; ok {
				if err := vb.PutValue(r, i, enc); err != nil {
					return nil, fmt.Errorf("memory store: %s %s: %w", class, key, err)
				}
			}
		}
	}
	return vb.Finish(), nil
}

// Set encodes all values first, then stores them under one write lock.
func (s *Store) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(keys.Len()) != values.NumRows() || len(observed) != keys.Len() {
		return fmt.Errorf("memory store: %d keys, %d rows of values and %d observation times; want as many of each", keys.Len(), values.NumRows(), len(observed))
	}
	type entry struct {
		key     string
		feature string
		enc     []byte
	}
	entries := make([]entry, 0, keys.Len()*int(values.NumCols()))
	for r := range keys.Len() {
		key, ok, err := stores.EntityKey(keys, r)
		if err != nil {
			return fmt.Errorf("memory store: %w", err)
		}
		if !ok {
			continue
		}
		for c, col := range values.Columns() {
			enc, err := stores.AppendValue(nil, col, r, observed[r])
			if err != nil {
				return fmt.Errorf("memory store: feature %s: %w", values.ColumnName(c), err)
			}
			entries = append(entries, entry{key, values.ColumnName(c), enc})
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	entities := s.values[class]
	if entities == nil {
		entities = map[string]map[string][]byte{}
		s.values[class] = entities
	}
	for _, e := range entries {
		stored := entities[e.key]
		if stored == nil {
			stored = map[string][]byte{}
			entities[e.key] = stored
		}
		if old, ok := stored[e.feature]; ok && newer(old, e.enc) {
			continue
		}
		stored[e.feature] = e.enc
	}
	return nil
}

// newer reports whether encoded value a was observed after b.
func newer(a, b []byte) bool {
	ta, errA := stores.ObservedAt(a)
	tb, errB := stores.ObservedAt(b)
	return errA == nil && errB == nil && ta.After(tb)
}
