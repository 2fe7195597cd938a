package lru

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// op is one step of a scripted test: Add (size >= 0 given), Get, Remove or
// Purge.
type op struct {
	do   string // "add", "get", "remove", "purge"
	k    string
	v    int
	size int64
}

func add(k string, v int, size int64) op { return op{do: "add", k: k, v: v, size: size} }
func get(k string) op                    { return op{do: "get", k: k} }
func remove(k string) op                 { return op{do: "remove", k: k} }
func purge() op                          { return op{do: "purge"} }

// recorder is an onEvict that remembers what it was given, in order.
type recorder struct {
	mu  sync.Mutex
	got []string // "k=v"
}

func (r *recorder) onEvict(k string, v int) {
	r.mu.Lock()
	r.got = append(r.got, k+"="+strconv.Itoa(v))
	r.mu.Unlock()
}

// keysOldestFirst reads the recency order without disturbing it.
func keysOldestFirst(c *Cache[string, int]) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Keys()
}

func TestCache(t *testing.T) {
	tests := []struct {
		name        string
		maxEntries  int
		maxBytes    int64
		ops         []op
		wantKeys    []string // oldest first
		wantEvicted []string // onEvict calls, in order
		wantStats   Stats
	}{
		{
			name:       "entry bound evicts the least recently added",
			maxEntries: 2, maxBytes: 0,
			ops:         []op{add("a", 1, 10), add("b", 2, 10), add("c", 3, 10)},
			wantKeys:    []string{"b", "c"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 2, Bytes: 20, Evictions: 1},
		},
		{
			name:       "byte bound evicts as many as needed, oldest first",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 30), add("b", 2, 30), add("c", 3, 30), add("d", 4, 60)},
			wantKeys:    []string{"c", "d"},
			wantEvicted: []string{"a=1", "b=2"},
			wantStats:   Stats{Entries: 2, Bytes: 90, Evictions: 2},
		},
		{
			name:       "both bounds: bytes bind first",
			maxEntries: 10, maxBytes: 50,
			ops:         []op{add("a", 1, 20), add("b", 2, 20), add("c", 3, 20)},
			wantKeys:    []string{"b", "c"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 2, Bytes: 40, Evictions: 1},
		},
		{
			name:       "both bounds: entries bind first",
			maxEntries: 2, maxBytes: 1000,
			ops:         []op{add("a", 1, 1), add("b", 2, 1), add("c", 3, 1)},
			wantKeys:    []string{"b", "c"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 2, Bytes: 2, Evictions: 1},
		},
		{
			name:       "exactly at the byte bound keeps everything",
			maxEntries: 0, maxBytes: 60,
			ops:       []op{add("a", 1, 30), add("b", 2, 30)},
			wantKeys:  []string{"a", "b"},
			wantStats: Stats{Entries: 2, Bytes: 60},
		},
		{
			name:       "Get refreshes recency",
			maxEntries: 2, maxBytes: 0,
			ops:         []op{add("a", 1, 1), add("b", 2, 1), get("a"), add("c", 3, 1)},
			wantKeys:    []string{"a", "c"},
			wantEvicted: []string{"b=2"},
			wantStats:   Stats{Entries: 2, Bytes: 2, Hits: 1, Evictions: 1},
		},
		{
			name:       "Get refreshes recency under the byte bound",
			maxEntries: 0, maxBytes: 30,
			ops:         []op{add("a", 1, 10), add("b", 2, 10), add("c", 3, 10), get("a"), get("b"), add("d", 4, 10)},
			wantKeys:    []string{"a", "b", "d"},
			wantEvicted: []string{"c=3"},
			wantStats:   Stats{Entries: 3, Bytes: 30, Hits: 2, Evictions: 1},
		},
		{
			name:       "a miss is counted and changes nothing",
			maxEntries: 2, maxBytes: 0,
			ops:       []op{add("a", 1, 1), get("zz")},
			wantKeys:  []string{"a"},
			wantStats: Stats{Entries: 1, Bytes: 1, Misses: 1},
		},
		{
			name:       "replacing a key updates its size and refreshes it",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 10), add("b", 2, 10), add("a", 11, 50)},
			wantKeys:    []string{"b", "a"},
			wantEvicted: []string{"a=1"}, // the replaced value
			wantStats:   Stats{Entries: 2, Bytes: 60},
		},
		{
			name:       "replacing a key with a larger size evicts others",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 40), add("b", 2, 40), add("b", 22, 70)},
			wantKeys:    []string{"b"},
			wantEvicted: []string{"b=2", "a=1"},
			wantStats:   Stats{Entries: 1, Bytes: 70, Evictions: 1},
		},
		{
			name:       "replacing with a smaller size frees bytes",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 90), add("a", 2, 5), add("b", 3, 90)},
			wantKeys:    []string{"a", "b"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 2, Bytes: 95},
		},
		{
			name:       "replacing with the same value still hands the old one back",
			maxEntries: 2, maxBytes: 0,
			ops:         []op{add("a", 1, 1), add("a", 1, 1)},
			wantKeys:    []string{"a"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 1, Bytes: 1},
		},
		{
			name:       "an oversize entry is not kept and goes to onEvict",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 50), add("big", 2, 101)},
			wantKeys:    []string{"a"},
			wantEvicted: []string{"big=2"},
			wantStats:   Stats{Entries: 1, Bytes: 50, Evictions: 1},
		},
		{
			name:       "an oversize replacement removes the stale value too",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 50), add("b", 2, 10), add("a", 3, 500), get("a")},
			wantKeys:    []string{"b"},
			wantEvicted: []string{"a=1", "a=3"},
			wantStats:   Stats{Entries: 1, Bytes: 10, Misses: 1, Evictions: 1},
		},
		{
			name:       "no byte bound: any size is kept",
			maxEntries: 1, maxBytes: 0,
			ops:       []op{add("a", 1, 1<<40)},
			wantKeys:  []string{"a"},
			wantStats: Stats{Entries: 1, Bytes: 1 << 40},
		},
		{
			name:       "a negative size counts as 0",
			maxEntries: 0, maxBytes: 10,
			ops:       []op{add("a", 1, -5), add("b", 2, 10)},
			wantKeys:  []string{"a", "b"},
			wantStats: Stats{Entries: 2, Bytes: 10},
		},
		{
			name:       "Remove gives the value back once and frees its bytes",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 10), add("b", 2, 20), remove("a"), remove("a"), remove("zz")},
			wantKeys:    []string{"b"},
			wantEvicted: []string{"a=1"},
			wantStats:   Stats{Entries: 1, Bytes: 20},
		},
		{
			name:       "Purge gives every value back once and keeps the counters",
			maxEntries: 0, maxBytes: 100,
			ops:         []op{add("a", 1, 10), add("b", 2, 20), get("a"), get("x"), purge(), purge(), get("a")},
			wantKeys:    []string{},
			wantEvicted: []string{"a=1", "b=2"}, // compared unordered: Purge's order is the map's
			wantStats:   Stats{Hits: 1, Misses: 2},
		},
		{
			name:       "usable after Purge",
			maxEntries: 1, maxBytes: 0,
			ops:         []op{add("a", 1, 1), purge(), add("b", 2, 1), add("c", 3, 1)},
			wantKeys:    []string{"c"},
			wantEvicted: []string{"a=1", "b=2"},
			wantStats:   Stats{Entries: 1, Bytes: 1, Evictions: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			c := New(tt.maxEntries, tt.maxBytes, r.onEvict)
			for _, o := range tt.ops {
				switch o.do {
				case "add":
					c.Add(o.k, o.v, o.size)
				case "get":
					v, ok := c.Get(o.k)
					if ok && v != valueOf(tt.ops, o.k) {
						t.Fatalf("Get(%q) = %d, want the last value added", o.k, v)
					}
				case "remove":
					c.Remove(o.k)
				case "purge":
					c.Purge()
				}
			}
			if got := keysOldestFirst(c); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("keys (oldest first) = %q, want %q", got, tt.wantKeys)
			}
			got := r.got
			if slices.ContainsFunc(tt.ops, func(o op) bool { return o.do == "purge" }) {
				got, tt.wantEvicted = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.wantEvicted))
			}
			if !slices.Equal(got, tt.wantEvicted) {
				t.Errorf("onEvict got %q, want %q", got, tt.wantEvicted)
			}
			if s := c.Stats(); s != tt.wantStats {
				t.Errorf("Stats() = %+v, want %+v", s, tt.wantStats)
			}
		})
	}
}

// valueOf is the last value the script added under k.
func valueOf(ops []op, k string) int {
	v := -1
	for _, o := range ops {
		if o.do == "add" && o.k == k {
			v = o.v
		}
	}
	return v
}

func TestNewBounds(t *testing.T) {
	tests := []struct {
		maxEntries int
		maxBytes   int64
		wantPanic  bool
	}{
		{0, 0, true},
		{-1, -1, true},
		{0, 1, false},
		{1, 0, false},
		{-1, 1, false},
		{1, -1, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxEntries, tt.maxBytes), func(t *testing.T) {
			defer func() {
				if p := recover(); (p != nil) != tt.wantPanic {
					t.Errorf("panic = %v, want panic %v", p, tt.wantPanic)
				}
			}()
			New[string, int](tt.maxEntries, tt.maxBytes, nil)
		})
	}
}

func TestNilOnEvict(t *testing.T) {
	c := New[string, int](1, 10, nil)
	c.Add("a", 1, 5)
	c.Add("a", 2, 5)
	c.Add("b", 3, 5)
	c.Add("big", 4, 11)
	c.Remove("b")
	c.Purge()
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Errorf("Stats() = %+v, want empty", s)
	}
}

// TestOnEvictOutsideLock: a callback that uses the cache would deadlock if
// it ran under the lock.
func TestOnEvictOutsideLock(t *testing.T) {
	var c *Cache[string, int]
	var seen []Stats
	c = New(1, 0, func(k string, v int) {
		seen = append(seen, c.Stats())
		c.Get(k)
	})
	c.Add("a", 1, 1)
	c.Add("b", 2, 1) // evicts a
	c.Remove("b")
	c.Add("c", 3, 1)
	c.Purge()
	if len(seen) != 3 {
		t.Fatalf("onEvict called %d times, want 3", len(seen))
	}
}

// TestConcurrent runs Add, Get, Remove and Purge from many goroutines (run
// with -race) and checks, at the end, that every value added was handed to
// onEvict exactly once and that the bounds held throughout.
func TestConcurrent(t *testing.T) {
	const (
		goroutines = 8
		perG       = 5000
		maxEntries = 50
		maxBytes   = 2000
	)
	type val struct{ g, i int }
	var mu sync.Mutex
	released := make(map[val]int)
	c := New(maxEntries, maxBytes, func(_ string, v val) {
		mu.Lock()
		released[v]++
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				k := "key-" + strconv.Itoa((g*7+i)%200)
				switch i % 10 {
				case 0:
					c.Remove(k)
				case 1, 2, 3:
					c.Get(k)
				default:
					c.Add(k, val{g, i}, int64(i%100))
				}
				if i%1000 == 999 && g == 0 {
					c.Purge()
				}
				if s := c.Stats(); s.Entries > maxEntries || s.Bytes > maxBytes || s.Bytes < 0 {
					t.Errorf("bounds broken: %+v", s)
					return
				}
			}
		})
	}
	wg.Wait()
	c.Purge()
	added := 0
	for g := range goroutines {
		for i := range perG {
			if i%10 < 4 {
				continue
			}
			added++
			if n := released[val{g, i}]; n != 1 {
				t.Fatalf("value %v released %d times, want 1", val{g, i}, n)
			}
		}
	}
	if len(released) != added {
		t.Errorf("%d values released, %d added", len(released), added)
	}
	if s := c.Stats(); !reflect.DeepEqual(Stats{Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions}, s) {
		t.Errorf("after Purge: %+v, want no entries nor bytes", s)
	}
}
