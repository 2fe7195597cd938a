package planner

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestBudget: the budget counts live bytes through allocations,
// reallocations and frees, and calls over once, when they first pass the
// bound.
func TestBudget(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var overs []error
	b := newBudget(mem, 100, func(err error) { overs = append(overs, err) })
	x := b.Allocate(60)
	x = b.Reallocate(90, x)
	if got := b.held.Load(); got != 90 || len(overs) != 0 {
		t.Fatalf("held %d, overs %v", got, overs)
	}
	y := b.Allocate(20) // 110 > 100
	z := b.Allocate(20)
	b.Free(x)
	b.Free(y)
	b.Free(z)
	if got := b.held.Load(); got != 0 || len(overs) != 1 || !b.exceeded.Load() {
		t.Fatalf("held %d, overs %v", got, overs)
	}
	if msg := overs[0].Error(); msg != "the query needs more than 100 bytes of memory; at most that is held by one query (server.limits.max_query_memory): ask for fewer rows or features, or raise the limit" {
		t.Errorf("error %q", msg)
	}
	if s := bytesString(256 << 20); s != "256 MiB" {
		t.Errorf("bytesString = %q", s)
	}
}

// BenchmarkBudget is the budget's cost per allocation: an Allocate and a
// Free of 64 bytes through Go's allocator, bare and counted.
//
//	go test -run '^$' -bench Budget -count 4 ./planner/
func BenchmarkBudget(b *testing.B) {
	for _, mode := range []struct {
		name string
		mem  memory.Allocator
	}{{"go", memory.NewGoAllocator()}, {"budget", newBudget(memory.NewGoAllocator(), 1<<40, func(error) {})}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mode.mem.Free(mode.mem.Allocate(64))
			}
		})
	}
}
