package planner

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/statement"
)

// WithMaxQueryMemory bounds the Arrow memory one run holds at once (0 or
// negative: no bound; fletch.yaml server.limits.max_query_memory). A run
// beyond it fails with ResourceExhausted naming the limit, and whatever
// it allocated is released as on any failure.
func WithMaxQueryMemory(n int64) EngineOption {
	return func(e *Engine) { e.maxMemory = n }
}

// budget is the allocator of a run with a memory bound: it counts the
// bytes the run holds (allocated and not yet freed, the answer's included
// until it is released) and, the first time they pass max, calls over
// (which cancels the run). Arrow's allocators cannot fail an allocation,
// so the one that passes the bound is made and the run stops at its next
// step: the overshoot is one allocation. Counting is an atomic add per
// allocation.
type budget struct {
	memory.Allocator
	max      int64
	held     atomic.Int64
	exceeded atomic.Bool
	over     func(error)
}

func newBudget(mem memory.Allocator, max int64, over func(error)) *budget {
	return &budget{Allocator: mem, max: max, over: over}
}

func (b *budget) Allocate(size int) []byte {
	b.count(int64(size))
	return b.Allocator.Allocate(size)
}

func (b *budget) Reallocate(size int, buf []byte) []byte {
	b.count(int64(size - len(buf)))
	return b.Allocator.Reallocate(size, buf)
}

func (b *budget) Free(buf []byte) {
	b.held.Add(-int64(len(buf)))
	b.Allocator.Free(buf)
}

func (b *budget) count(n int64) {
	if b.held.Add(n) > b.max && !b.exceeded.Load() && b.exceeded.CompareAndSwap(false, true) {
		b.over(b.err())
	}
}

// err is the run's error once the bound was passed.
func (b *budget) err() error {
	return &statement.Error{Kind: statement.ResourceExhausted, Msg: fmt.Sprintf(
		"the query needs more than %s of memory; at most that is held by one query (server.limits.max_query_memory): ask for fewer rows or features, or raise the limit",
		bytesString(b.max))}
}

// bytesString is n in the largest binary unit that keeps it whole
// (256 MiB), as fletch.yaml takes it.
func bytesString(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
