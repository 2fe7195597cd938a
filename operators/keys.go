package operators

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// KeyIndex is a hash index over a key column (int64 or string): for each
// distinct key, the rows holding it, in row order.
type KeyIndex struct {
	ints map[int64]int32
	strs map[string]int32
	// next chains rows with the same key: head row → next row → ... → -1.
	next []int32
}

// NewKeyIndex indexes keys. Null keys are not indexed.
func NewKeyIndex(keys arrow.Array) (*KeyIndex, error) {
	ix := &KeyIndex{next: make([]int32, keys.Len())}
	switch k := keys.(type) {
	case *array.Int64:
		ix.ints = index(k, k.Value, ix.next)
	case *array.String:
		ix.strs = index(k, k.Value, ix.next)
	default:
		return nil, fmt.Errorf("key columns must be int64 or string, not %s", keys.DataType())
	}
	return ix, nil
}

// sizeHint is the initial capacity of a map over n rows: the rows of a
// has-many relation repeat few keys many times (50,000 prices of 500
// items), so presizing for n would clear and scan a table 100× too big.
func sizeHint(n int) int { return min(n, 1024) }

// index maps each key to its first row and chains the rest through next.
// Rows are inserted back to front so each chain lists rows in ascending
// order.
func index[K comparable](keys arrow.Array, value func(int) K, next []int32) map[K]int32 {
	heads := make(map[K]int32, sizeHint(keys.Len()))
	for i := keys.Len() - 1; i >= 0; i-- {
		if keys.IsNull(i) {
			continue
		}
		v := value(i)
		if h, ok := heads[v]; ok {
			next[i] = h
		} else {
			next[i] = -1
		}
		heads[v] = int32(i)
	}
	return heads
}

// probe returns a function giving the first indexed row for row i of probe
// keys (-1 when absent or null). probe must have the index's key type.
func (ix *KeyIndex) probe(keys arrow.Array) (func(i int) int32, error) {
	switch k := keys.(type) {
	case *array.Int64:
		if ix.ints == nil {
			return nil, fmt.Errorf("probing a string key index with int64 keys")
		}
		return prober(k, k.Value, ix.ints), nil
	case *array.String:
		if ix.strs == nil {
			return nil, fmt.Errorf("probing an int64 key index with string keys")
		}
		return prober(k, k.Value, ix.strs), nil
	}
	return nil, fmt.Errorf("key columns must be int64 or string, not %s", keys.DataType())
}

func prober[K comparable](keys arrow.Array, value func(int) K, heads map[K]int32) func(i int) int32 {
	return func(i int) int32 {
		if keys.IsNull(i) {
			return -1
		}
		if h, ok := heads[value(i)]; ok {
			return h
		}
		return -1
	}
}

// Visibility decides which indexed rows a probe row may see: with event
// times, only rows whose event time is at or before the probe row's time
// (point in time). Nil slices mean timeless: every row is visible.
type Visibility struct {
	EventTimes *array.Timestamp // per indexed row; null event time = never visible
	ProbeTimes []int64          // per probe row, same unit as EventTimes
}

func (v Visibility) visible(row int32, probe int) bool {
	if v.EventTimes == nil {
		return true
	}
	if v.EventTimes.IsNull(int(row)) {
		return false
	}
	return int64(v.EventTimes.Value(int(row))) <= v.ProbeTimes[probe]
}

// LookupLatest finds, for each probe row, the indexed row with its key that
// is visible and latest by event time (the last in row order on ties, or
// for timeless rows). It returns -1 where there is none.
func (ix *KeyIndex) LookupLatest(probe arrow.Array, vis Visibility) ([]int32, error) {
	first, err := ix.probe(probe)
	if err != nil {
		return nil, err
	}
	out := make([]int32, probe.Len())
	for i := range out {
		best := int32(-1)
		for r := first(i); r >= 0; r = ix.next[r] {
			if !vis.visible(r, i) {
				continue
			}
			if best < 0 || vis.EventTimes == nil || vis.EventTimes.Value(int(r)) >= vis.EventTimes.Value(int(best)) {
				best = r
			}
		}
		out[i] = best
	}
	return out, nil
}

// Expand is the has-many join: for each probe row, every visible indexed row
// with its key. It returns the pairs grouped by probe row, in probe order
// then indexed-row order, and offsets so that probe row i owns pairs
// offsets[i]..offsets[i+1].
func (ix *KeyIndex) Expand(probe arrow.Array, vis Visibility) (probeRows, indexRows []int32, offsets []int32, err error) {
	first, err := ix.probe(probe)
	if err != nil {
		return nil, nil, nil, err
	}
	offsets = make([]int32, probe.Len()+1)
	for i := 0; i < probe.Len(); i++ {
		for r := first(i); r >= 0; r = ix.next[r] {
			if vis.visible(r, i) {
				probeRows = append(probeRows, int32(i))
				indexRows = append(indexRows, r)
			}
		}
		offsets[i+1] = int32(len(probeRows))
	}
	return probeRows, indexRows, offsets, nil
}
