package console

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Slowest keeps the slowest recent queries: the slowest slowPerBucket of
// each minute, for the last slowBuckets minutes. Record is on every query's
// path: once the current minute holds slowPerBucket queries, a query no
// slower than the fastest of them costs two atomic loads and returns; only
// a slower one takes the lock.
type Slowest struct {
	// minute is the current bucket's minute (Unix seconds / 60) and floor
	// the time a query must beat to enter it (0 until it is full).
	minute atomic.Int64
	floor  atomic.Int64

	mu      sync.Mutex
	buckets [slowBuckets]slowBucket
}

const (
	slowBuckets   = 10
	slowPerBucket = 8
)

type slowBucket struct {
	minute  int64
	queries []SlowQuery // slowest first
}

// SlowQuery is one recorded query. Plan renders what it ran, when someone
// looks.
type SlowQuery struct {
	Path    string
	Code    string
	Took    time.Duration
	End     time.Time
	Trace   string
	Plan    func() string // nil: it failed before it was planned
	Classes []string
}

// NewSlowest returns an empty ring.
func NewSlowest() *Slowest { return &Slowest{} }

// Record offers a finished query. classes and plan are only called, and
// q built, when the query enters the ring.
func (s *Slowest) Record(end time.Time, took time.Duration, q func() SlowQuery) {
	m := end.Unix() / 60
	if m == s.minute.Load() && int64(took) <= s.floor.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.buckets[m%slowBuckets]
	if b.minute != m {
		if m < b.minute { // a query that ended long ago, reported late
			return
		}
		b.minute, b.queries = m, b.queries[:0]
	}
	if len(b.queries) == slowPerBucket && took <= b.queries[slowPerBucket-1].Took {
		return
	}
	sq := q()
	sq.Took, sq.End = took, end
	i := sort.Search(len(b.queries), func(i int) bool { return b.queries[i].Took < took })
	if len(b.queries) < slowPerBucket {
		b.queries = append(b.queries, SlowQuery{})
	}
	copy(b.queries[i+1:], b.queries[i:])
	b.queries[i] = sq
	if m >= s.minute.Load() {
		s.minute.Store(m)
		floor := int64(0)
		if len(b.queries) == slowPerBucket {
			floor = int64(b.queries[slowPerBucket-1].Took)
		}
		s.floor.Store(floor)
	}
}

// recent returns the slowest queries of the last slowBuckets minutes
// before now, slowest first, those keep says yes to only.
func (s *Slowest) recent(now time.Time, keep func(SlowQuery) bool) []SlowQuery {
	m := now.Unix() / 60
	var out []SlowQuery
	s.mu.Lock()
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.minute <= m-slowBuckets || b.minute > m {
			continue
		}
		for _, q := range b.queries {
			if keep(q) {
				out = append(out, q)
			}
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Took > out[j].Took })
	return out
}
