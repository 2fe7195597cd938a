package tiles

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/stores"
)

// DefaultCacheBytes is how much memory a Store keeps tiles resident in
// unless told otherwise (WithCacheBytes): about six million tiles of one
// numeric state, the 1-day tiles of 60,000 keys over 100 days.
const DefaultCacheBytes = 256 << 20

// Option configures a Store.
type Option func(*Store)

// WithCacheBytes bounds the memory of resident tiles (0: none are kept,
// every query reads the tiles it needs from the database).
func WithCacheBytes(n int64) Option { return func(st *Store) { st.cache.limit = n } }

// WithAllocator makes resident tiles come from mem (default: the Go
// allocator); Close returns them.
func WithAllocator(mem memory.Allocator) Option { return func(st *Store) { st.cache.mem = mem } }

// Resident is a whole tile table held in memory, grouped by key and
// ordered by bucket within each key, as read at one version of its
// coverage. A training set of 100,000 rows reads the table once and then
// answers from memory: a key's run is a hash lookup, a window two binary
// searches, and a summable window (count, sum, mean) a subtraction of
// running totals (Prefix). It is shared by the runs that use it: each
// holds a reference (Retain, Release).
type Resident struct {
	refs atomic.Int64
	// Keys holds one key per run, in run order; Index finds a key's run.
	Keys  arrow.Array
	Index *operators.KeyIndex
	// Runs[k] .. Runs[k+1] are the tiles of Keys[k].
	Runs    []int32
	Buckets []int64
	States  []arrow.Array
	// Prefix is the states' running totals per run (nil unless the
	// aggregation merges by sums).
	Prefix *aggregate.Prefix
	bytes  int64
}

// Retain adds a reference.
func (r *Resident) Retain() { r.refs.Add(1) }

// Release drops a reference; the last one frees the tiles.
func (r *Resident) Release() {
	if r.refs.Add(-1) == 0 {
		r.Keys.Release()
		for _, s := range r.States {
			s.Release()
		}
	}
}

// Bytes is the memory the tiles hold.
func (r *Resident) Bytes() int64 { return r.bytes }

// residentCache keeps whole tile tables resident, least recently used
// evicted first, within a memory bound.
type residentCache struct {
	limit int64
	mem   memory.Allocator

	mu      sync.Mutex
	used    int64
	entries map[string]*cacheEntry
	lru     *list.List // of *cacheEntry, most recent first
	// loads serializes reading one table, so that concurrent runs read it
	// once.
	loads map[string]*sync.Mutex
	// over is, per table found over the bound once read, that version:
	// not read whole again.
	over map[string]string
}

type cacheEntry struct {
	table, version string
	res            *Resident
	el             *list.Element
}

func newResidentCache() *residentCache {
	return &residentCache{limit: DefaultCacheBytes, mem: memory.DefaultAllocator,
		entries: map[string]*cacheEntry{}, lru: list.New(), loads: map[string]*sync.Mutex{}, over: map[string]string{}}
}

// get returns table's resident tiles at version (retained), nil when not
// held.
func (c *residentCache) get(table, version string) *Resident {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[table]
	if e == nil || e.version != version {
		return nil
	}
	c.lru.MoveToFront(e.el)
	e.res.Retain()
	return e.res
}

// put keeps res as table's tiles at version when it fits, evicting the
// least recently used tables as needed.
func (c *residentCache) put(table, version string, res *Resident) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(table)
	if res.bytes > c.limit {
		c.over[table] = version
		return
	}
	for c.used+res.bytes > c.limit {
		c.dropLocked(c.lru.Back().Value.(*cacheEntry).table)
	}
	res.Retain()
	e := &cacheEntry{table: table, version: version, res: res}
	e.el = c.lru.PushFront(e)
	c.entries[table] = e
	c.used += res.bytes
}

// drop forgets table's tiles (a backfill rewrote them).
func (c *residentCache) drop(table string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(table)
}

func (c *residentCache) dropLocked(table string) {
	e := c.entries[table]
	if e == nil {
		return
	}
	delete(c.entries, table)
	c.lru.Remove(e.el)
	c.used -= e.res.bytes
	e.res.Release()
}

func (c *residentCache) isOver(table, version string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.over[table] == version
}

func (c *residentCache) loadLock(table string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.loads[table]
	if m == nil {
		m = &sync.Mutex{}
		c.loads[table] = m
	}
	return m
}

// Close releases every resident table (those runs still hold are freed
// when they release them).
func (st *Store) Close() {
	c := st.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	for table := range c.entries {
		c.dropLocked(table)
	}
}

// version identifies a tile table's contents by its coverage: every write
// (Replace) records a range with its time, so rewritten tiles — here or by
// another process sharing the database — change it.
func version(covered []Covered) string {
	var b strings.Builder
	for _, c := range covered {
		fmt.Fprintf(&b, "%d:%d:%d:%d;", c.Lo, c.Hi, c.Tiles, c.Written.UnixNano())
	}
	return b.String()
}

// residentTileBytes is at least a resident tile's memory, known before
// reading the table (an int key, its bucket, 8 bytes a state): tables
// surely over the bound are not read; the others are measured once read.
func residentTileBytes(s *Spec) int64 {
	return int64(16 + 8*len(s.States))
}

// Resident returns s's tiles of bucket d, whose coverage is covered
// (Coverage), held in memory: read whole from the database on first use
// and kept while they fit the cache's bound and the coverage is unchanged.
// nil (and no error) when they do not fit (known from the coverage's tile
// count, or from reading them once: that read answers its caller, then
// the table is not read whole again at that coverage): the caller reads
// the range it needs (Read). The caller releases the answer.
func (st *Store) Resident(ctx context.Context, s *Spec, d time.Duration, covered []Covered) (*Resident, error) {
	c := st.cache
	table := s.Table(d)
	var n int64
	for _, cv := range covered {
		n += cv.Tiles
	}
	if n*residentTileBytes(s) > c.limit {
		return nil, nil
	}
	v := version(covered)
	if res := c.get(table, v); res != nil {
		return res, nil
	}
	if c.isOver(table, v) {
		return nil, nil
	}
	lock := c.loadLock(table)
	lock.Lock()
	defer lock.Unlock()
	if res := c.get(table, v); res != nil {
		return res, nil // read by a concurrent run meanwhile
	}
	// No ORDER BY and no filter: the database streams the table as
	// stored, and grouping by key here is a counting sort (cheaper than
	// DuckDB's sort of the same rows, BENCHMARKS.md §22).
	rec, err := st.src.Fetch(ctx, c.mem, stores.FetchRequest{SQL: `SELECT * FROM ` + quote(table), Schema: arrow.NewSchema(s.Fields(), nil)})
	if err != nil {
		return nil, fmt.Errorf("tile store: %w", err)
	}
	defer rec.Release()
	res, err := newResident(c.mem, s.Fn, rec, len(s.States), d)
	if err != nil {
		return nil, err
	}
	c.put(table, v, res)
	return res, nil
}

// newResident groups the tiles of rec (Fields of a spec with nstates
// states, buckets of d) by key, in order of first appearance, and orders
// each key's by bucket: two stable counting sorts, by bucket then by key
// (a database's ORDER BY key, bucket of the same rows cost more).
func newResident(mem memory.Allocator, fn string, rec arrow.RecordBatch, nstates int, d time.Duration) (*Resident, error) {
	keyCol := rec.Column(0)
	buckets := rec.Column(1).(*array.Int64).Int64Values()
	byBucket := bucketOrder(buckets, d.Microseconds())
	gid, firsts, err := groupKeys(keyCol, byBucket)
	if err != nil {
		return nil, err
	}
	nk := len(firsts)
	runs := make([]int32, nk+1)
	for _, g := range gid {
		if g >= 0 {
			runs[g+1]++
		}
	}
	for k := 1; k <= nk; k++ {
		runs[k] += runs[k-1]
	}
	perm := make([]int32, runs[nk])
	at := slices.Clone(runs[:nk])
	for _, i := range byBucket {
		if g := gid[i]; g >= 0 {
			perm[at[g]] = i
			at[g]++
		}
	}
	sorted := make([]int64, len(perm))
	for j, p := range perm {
		sorted[j] = buckets[p]
	}
	res := &Resident{Runs: runs, Buckets: sorted}
	res.refs.Store(1)
	fail := func(err error) (*Resident, error) {
		if res.Keys != nil {
			res.Keys.Release()
		}
		release(res.States)
		return nil, err
	}
	if res.Keys, err = operators.Gather(mem, keyCol, firsts); err != nil {
		return fail(err)
	}
	if res.Index, err = operators.NewKeyIndex(res.Keys); err != nil {
		return fail(err)
	}
	res.States = make([]arrow.Array, nstates)
	for c := range nstates {
		if res.States[c], err = operators.Gather(mem, rec.Column(2+c), perm); err != nil {
			return fail(err)
		}
	}
	res.Prefix = aggregate.NewPrefix(fn, res.States, runs)
	res.bytes = arrayBytes(res.Keys) + 8*int64(len(sorted)) + 4*int64(len(runs)) + 48*int64(nk)
	for _, s := range res.States {
		res.bytes += arrayBytes(s)
	}
	if res.Prefix != nil {
		res.bytes += res.Prefix.Bytes()
	}
	return res, nil
}

func arrayBytes(a arrow.Array) int64 {
	var n int64
	for _, b := range a.Data().Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	return n
}

// bucketOrder returns the rows in order of bucket (stable): a counting sort
// of the bucket numbers when they span at most a few times the rows (the
// usual table: days or hours of history), else a comparison sort.
func bucketOrder(buckets []int64, du int64) []int32 {
	order := make([]int32, len(buckets))
	if len(buckets) == 0 {
		return order
	}
	lo, hi := slices.Min(buckets), slices.Max(buckets)
	aligned := du > 0
	for _, b := range buckets {
		if !aligned || (b-lo)%du != 0 {
			aligned = false
			break
		}
	}
	if span := (hi - lo) / max(du, 1); aligned && span >= 0 && span <= int64(4*len(buckets)+1024) {
		counts := make([]int32, span+2)
		for _, b := range buckets {
			counts[(b-lo)/du+1]++
		}
		for i := 1; i < len(counts); i++ {
			counts[i] += counts[i-1]
		}
		for i, b := range buckets {
			r := (b - lo) / du
			order[counts[r]] = int32(i)
			counts[r]++
		}
		return order
	}
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		if buckets[x] < buckets[y] {
			return -1
		}
		if buckets[x] > buckets[y] {
			return 1
		}
		return 0
	})
	return order
}

// groupKeys numbers the distinct keys of keys by first appearance in
// order: per row its key's number (-1 for a null key), and per number the
// first row holding it.
func groupKeys(keys arrow.Array, order []int32) (gid, firsts []int32, err error) {
	switch k := keys.(type) {
	case *array.Int64:
		if gid, firsts = groupDense(k, order); gid == nil {
			gid, firsts = groupBy(k, k.Value, order)
		}
	case *array.String:
		gid, firsts = groupBy(k, k.Value, order)
	default:
		return nil, nil, fmt.Errorf("key columns must be int64 or string, not %s", keys.DataType())
	}
	return gid, firsts, nil
}

// groupDense is groupKeys for int64 keys that span at most a few times
// the rows (ids numbered from 0 or 1, the usual case): a direct table
// instead of a hash map, several times faster on 10^6 tiles. nil when they
// span more.
func groupDense(keys *array.Int64, order []int32) (gid, firsts []int32) {
	vals := keys.Int64Values()
	if len(vals) == 0 {
		return nil, nil
	}
	lo, hi := int64(1<<63-1), int64(-1<<63)
	for i, v := range vals {
		if keys.IsValid(i) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo > hi || uint64(hi-lo) > uint64(4*len(vals)+1024) {
		return nil, nil
	}
	ids := make([]int32, hi-lo+1) // key - lo → id + 1
	gid = make([]int32, len(vals))
	for _, i := range order {
		if keys.IsNull(int(i)) {
			gid[i] = -1
			continue
		}
		slot := &ids[vals[i]-lo]
		if *slot == 0 {
			firsts = append(firsts, i)
			*slot = int32(len(firsts))
		}
		gid[i] = *slot - 1
	}
	return gid, firsts
}

func groupBy[K comparable](keys arrow.Array, value func(int) K, order []int32) (gid, firsts []int32) {
	gid = make([]int32, keys.Len())
	ids := make(map[K]int32, keys.Len()/8+16)
	for _, i := range order {
		if keys.IsNull(int(i)) {
			gid[i] = -1
			continue
		}
		v := value(int(i))
		g, ok := ids[v]
		if !ok {
			g = int32(len(firsts))
			ids[v] = g
			firsts = append(firsts, i)
		}
		gid[i] = g
	}
	return gid, firsts
}
