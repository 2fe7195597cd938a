// Package lru is the bounded cache of fletch's long-lived caches (the plan
// cache, the caches of flight/): it holds at most maxEntries entries and
// maxBytes bytes, and when either bound would be passed it evicts the least
// recently used entries rather than growing (an unbounded sync.Map grew a
// server from 106 MB to 901 MB on 40,000 distinct statements) or emptying
// itself whole.
//
// It wraps simplelru.LRU of github.com/hashicorp/golang-lru/v2, which keeps
// the recency order and bounds the entry count but knows nothing of sizes;
// this package adds the byte bound (the library's eviction callback keeps the
// byte count), a mutex, hit and miss counts, and calls onEvict outside the
// lock.
//
// It knows nothing of what it caches: not plans, statements nor Arrow
// records. A size is whatever the caller says an entry costs; releasing a
// value is the caller's onEvict.
package lru

import (
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Stats are the counters a metrics exporter reads. Entries and Bytes are
// the current contents; Hits, Misses and Evictions count since New (Purge
// does not reset them, so that rates computed from them never go negative).
type Stats struct {
	Entries   int64
	Bytes     int64
	Hits      int64
	Misses    int64
	Evictions int64 // entries dropped to keep a bound, oversize entries included; not Remove, Purge nor replacement
}

// Cache is a least-recently-used cache bounded by entry count and by bytes.
// It is safe for concurrent use.
//
// Bounds: a bound <= 0 is no bound on that dimension (maxEntries <= 0 bounds
// by bytes only, maxBytes <= 0 by count only). New panics when both are off,
// since an unbounded cache is the leak this package exists to prevent; a
// caller that wants no caching should not build a cache.
//
// onEvict: each Add hands the cache one value; onEvict gives it back exactly
// once, when the cache stops holding it, whatever the reason: evicted by
// either bound, rejected on arrival as larger than maxBytes, removed by
// Remove, released by Purge, or replaced by a later Add of the same key. It
// is called for a replaced value even when the new value is the same one
// (V need not be comparable, and a caller that adds a reference-counted
// value twice has handed over two references, of which the cache now keeps
// one). onEvict is called after the cache's lock is released, by the
// goroutine whose call dropped the value and before that call returns (so
// everything is released when Purge returns); a slow callback thus never
// blocks other readers and may itself use the cache, and callbacks of
// different goroutines may run concurrently and in any order.
type Cache[K comparable, V any] struct {
	mu        sync.Mutex
	lru       *simplelru.LRU[K, entry[V]]
	maxBytes  int64 // <= 0: no byte bound
	bytes     int64
	onEvict   func(K, V)
	dropped   []kv[K, V] // values dropped under the lock, handed to onEvict after it
	hits      int64
	misses    int64
	evictions int64
}

// entry is what simplelru holds: the value with the size it was added with,
// so that the bytes it freed are known when it leaves.
type entry[V any] struct {
	v    V
	size int64
}

type kv[K comparable, V any] struct {
	k K
	v V
}

// New returns an empty cache. See Cache for the bounds and for onEvict,
// which may be nil.
func New[K comparable, V any](maxEntries int, maxBytes int64, onEvict func(K, V)) *Cache[K, V] {
	if maxEntries <= 0 && maxBytes <= 0 {
		panic("lru.New: maxEntries and maxBytes both <= 0: the cache would be unbounded")
	}
	c := &Cache[K, V]{maxBytes: maxBytes, onEvict: onEvict}
	if maxEntries <= 0 {
		// simplelru has no "unbounded"; MaxInt is never reached, and the
		// byte bound does the evicting.
		maxEntries = math.MaxInt
	}
	// Called by simplelru under c.mu for every entry that leaves it
	// (eviction by count, Remove, RemoveOldest, Purge), so that the byte
	// count cannot drift from the contents. A value replaced in place does
	// not leave simplelru: Add accounts for that one.
	lru, err := simplelru.NewLRU(maxEntries, func(k K, e entry[V]) {
		c.bytes -= e.size
		c.drop(k, e.v)
	})
	if err != nil { // only for a size <= 0, which is excluded above
		panic("lru.New: " + err.Error())
	}
	c.lru = lru
	return c
}

// drop queues v for onEvict; c.mu is held.
func (c *Cache[K, V]) drop(k K, v V) {
	if c.onEvict != nil {
		c.dropped = append(c.dropped, kv[K, V]{k, v})
	}
}

// unlock releases c.mu, then calls onEvict for what was dropped under it.
func (c *Cache[K, V]) unlock() {
	d := c.dropped
	c.dropped = nil
	c.mu.Unlock()
	for _, e := range d {
		c.onEvict(e.k, e.v)
	}
}

// Get returns the value of k and marks k most recently used.
//
// The value stays the cache's: another goroutine's Add may evict it, and
// run onEvict on it, as soon as Get returns. For a value that onEvict frees
// (an Arrow record's Release), a Retain after Get races with that Release:
// Get takes no reference for its caller under the lock, so such a caller
// needs its own guarantee that the value outlives its use.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	e, ok := c.lru.Get(k)
	if ok {
		c.hits++
	} else {
		c.misses++
	}
	c.mu.Unlock() // Get drops nothing: no onEvict to call
	return e.v, ok
}

// Add puts v under k, most recently used, as costing size bytes (the key
// included; a negative size counts as 0), replacing any value k had, then
// evicts the least recently used entries until both bounds hold. An entry
// larger than maxBytes is not kept: it goes to onEvict at once, and k's
// previous value, now stale, is removed too.
func (c *Cache[K, V]) Add(k K, v V, size int64) {
	size = max(size, 0)
	c.mu.Lock()
	defer c.unlock()
	if c.maxBytes > 0 && size > c.maxBytes {
		// Keeping it would evict everything else and still not fit. k's
		// previous value, if any, is stale: serving it would be wrong.
		c.lru.Remove(k)
		c.evictions++
		c.drop(k, v)
		return
	}
	if old, ok := c.lru.Peek(k); ok {
		// simplelru overwrites a value in place without its callback, so
		// the replaced value's bytes and onEvict are accounted here.
		c.bytes -= old.size
		c.drop(k, old.v)
	}
	c.bytes += size
	if c.lru.Add(k, entry[V]{v, size}) {
		c.evictions++ // simplelru dropped the oldest to keep the count bound
	}
	for c.maxBytes > 0 && c.bytes > c.maxBytes {
		// Cannot reach k itself: size <= maxBytes.
		c.lru.RemoveOldest()
		c.evictions++
	}
}

// Remove removes k, if present, and gives its value to onEvict.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.unlock()
	c.lru.Remove(k)
}

// Purge removes every entry, giving each to onEvict (server shutdown, or a
// change that makes every entry stale). The counters of Stats are kept.
func (c *Cache[K, V]) Purge() {
	c.mu.Lock()
	defer c.unlock()
	c.lru.Purge()
}

// Stats returns the current contents and the counters since New.
func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{
		Entries:   int64(c.lru.Len()),
		Bytes:     c.bytes,
		Hits:      c.hits,
		Misses:    c.misses,
		Evictions: c.evictions,
	}
}
