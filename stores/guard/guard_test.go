package guard

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBulkhead holds MaxConcurrent calls inside the guard: MaxQueued more
// wait, the next is refused at once naming the keys, and the waiting ones
// run once the first leave.
func TestBulkhead(t *testing.T) {
	g := New(Options{Name: "source pg", Where: "sources.pg", MaxConcurrent: 2, MaxQueued: 1})
	release := make(chan struct{})
	entered := make(chan struct{}, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			errs[i] = g.Do(context.Background(), func() error {
				entered <- struct{}{}
				<-release
				return nil
			})
		})
	}
	<-entered
	<-entered
	for g.Stats().Waiting != 1 { // the third waits for a turn
		time.Sleep(time.Millisecond)
	}
	err := g.Do(context.Background(), func() error { t.Error("a call beyond the queue ran"); return nil })
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "sources.pg.max_concurrent") {
		t.Errorf("beyond the queue: %v, want ErrBusy naming sources.pg.max_concurrent", err)
	}
	if s := g.Stats(); s.Running != 2 || s.Refused != 1 {
		t.Errorf("stats %+v", s)
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

func TestBulkheadWaitEndsWithTheCaller(t *testing.T) {
	g := New(Options{MaxConcurrent: 1, MaxQueued: 5})
	hold := make(chan struct{})
	go g.Do(context.Background(), func() error { <-hold; return nil })
	for g.Stats().Running != 1 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := g.Do(ctx, func() error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting past the deadline: %v", err)
	}
	if s := g.Stats(); s.Waiting != 0 {
		t.Errorf("waiting %d after the caller left", s.Waiting)
	}
	close(hold)
}

// TestBreaker opens after Failures consecutive failures, refuses at once
// while open, lets one call through after OpenFor, and closes when it
// succeeds. The caller's cancellations are not failures.
func TestBreaker(t *testing.T) {
	g := New(Options{Name: "online store", Where: "online_store", Failures: 3, OpenFor: 50 * time.Millisecond})
	down := errors.New("connection refused")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 { // the caller's cancellations count for nothing
		if err := g.Do(cancelled, func() error { return context.Canceled }); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
	}
	for i := range 3 {
		if err := g.Do(context.Background(), func() error { return down }); !errors.Is(err, down) {
			t.Fatalf("failure %d: %v, want the store's error", i, err)
		}
	}
	calls := 0
	err := g.Do(context.Background(), func() error { calls++; return nil })
	if !errors.Is(err, ErrOpen) || calls != 0 || !strings.Contains(err.Error(), "online_store.breaker") || !g.Stats().Open {
		t.Fatalf("open breaker: %v (%d calls), want ErrOpen naming online_store.breaker without calling", err, calls)
	}
	time.Sleep(60 * time.Millisecond)
	if err := g.Do(context.Background(), func() error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("after OpenFor: %v (%d calls), want one call through", err, calls)
	}
	if g.Stats().Open {
		t.Error("a success after OpenFor left the breaker open")
	}
}

// TestPerKey: calls of one key beyond MaxPerKey wait without taking a turn
// of the bulkhead, so another key still runs.
func TestPerKey(t *testing.T) {
	g := New(Options{MaxConcurrent: 2, MaxPerKey: 1, MaxQueued: 4})
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 { // one runs, two wait for key a's turn
		wg.Go(func() {
			_ = g.DoKey(context.Background(), "a", func() error { <-release; return nil })
		})
	}
	for g.Stats().Running != 1 || g.Stats().Waiting != 2 {
		time.Sleep(time.Millisecond)
	}
	ran := false
	if err := g.DoKey(context.Background(), "b", func() error { ran = true; return nil }); err != nil || !ran {
		t.Errorf("key b behind a blocked key a: %v, ran %v", err, ran)
	}
	close(release)
	wg.Wait()
}
