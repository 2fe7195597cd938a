package console

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// plan is a recorded query's plan in tests.
type plan struct{ classes []string }

func (p plan) Explain() string { return "query " + p.classes[0] }

func recordQuery(s *Slowest, class string) {
	s.Record(time.Now(), time.Second, func() SlowQuery {
		return SlowQuery{Path: "sql", Code: "OK", Trace: "T-" + class, Plan: plan{[]string{class}}.Explain, Classes: []string{class}}
	})
}

func TestSlowest(t *testing.T) {
	s := NewSlowest()
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	add := func(at time.Time, ms int, name string) {
		s.Record(at, time.Duration(ms)*time.Millisecond, func() SlowQuery { return SlowQuery{Trace: name} })
	}
	// Minute 0: 20 queries of 1..20 ms keep the 8 slowest.
	for i := 1; i <= 20; i++ {
		add(base.Add(time.Duration(i)*time.Second), i, fmt.Sprint("a", i))
	}
	// Minute 3: two slow queries.
	add(base.Add(3*time.Minute), 100, "b100")
	add(base.Add(3*time.Minute+time.Second), 5, "b5")
	all := func(SlowQuery) bool { return true }
	var got []string
	for _, q := range s.recent(base.Add(4*time.Minute), all) {
		got = append(got, q.Trace)
	}
	want := "[b100 a20 a19 a18 a17 a16 a15 a14 a13 b5]"
	if fmt.Sprint(got) != want {
		t.Errorf("slowest %v, want %s", got, want)
	}
	// Ten minutes on, minute 0 has left the window; minute 3 too at 13.
	got = got[:0]
	for _, q := range s.recent(base.Add(12*time.Minute), all) {
		got = append(got, q.Trace)
	}
	if fmt.Sprint(got) != "[b100 b5]" {
		t.Errorf("after 12 minutes: %v, want [b100 b5]", got)
	}
	if n := len(s.recent(base.Add(13*time.Minute), all)); n != 0 {
		t.Errorf("after 13 minutes: %d queries, want none", n)
	}
	// A new minute in the same slot replaces the old one.
	add(base.Add(10*time.Minute), 1, "c1")
	got = got[:0]
	for _, q := range s.recent(base.Add(10*time.Minute), all) {
		got = append(got, q.Trace)
	}
	if fmt.Sprint(got) != "[b100 b5 c1]" {
		t.Errorf("minute 10: %v, want [b100 b5 c1]", got)
	}
}

// TestSlowestConcurrent records from many goroutines (run with -race):
// the ring keeps exactly the slowest of the minute.
func TestSlowestConcurrent(t *testing.T) {
	s := NewSlowest()
	at := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				ms := g*1000 + i
				s.Record(at, time.Duration(ms)*time.Microsecond, func() SlowQuery { return SlowQuery{Trace: fmt.Sprint(ms)} })
			}
		}()
	}
	wg.Wait()
	got := s.recent(at, func(SlowQuery) bool { return true })
	if len(got) != slowPerBucket || got[0].Took != 7999*time.Microsecond || got[slowPerBucket-1].Took != time.Duration(8000-slowPerBucket)*time.Microsecond {
		t.Errorf("kept %d queries from %v to %v", len(got), got[0].Took, got[len(got)-1].Took)
	}
}

// BenchmarkSlowestRecord is the ring's cost on a query's path once the
// minute is full: most queries are not among its slowest.
func BenchmarkSlowestRecord(b *testing.B) {
	s := NewSlowest()
	now := time.Now()
	for i := range slowPerBucket {
		s.Record(now, time.Second+time.Duration(i), func() SlowQuery { return SlowQuery{} })
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Record(now, time.Millisecond, func() SlowQuery { return SlowQuery{Trace: "x"} })
		}
	})
}
