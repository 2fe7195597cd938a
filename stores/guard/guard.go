// Package guard isolates a server from a source or an online store that is
// slow or down. A bulkhead bounds the calls running against it and those
// waiting for a turn, and refuses the rest at once, so that a locked table
// fills its own source's bulkhead and no other: queries of classes on other
// sources never wait behind it. A circuit breaker stops calling it after
// consecutive failures, for a while, so that callers learn of an outage at
// once instead of each waiting out a timeout; then one call tries again.
//
// It knows the stores' interfaces, not what the calls are for: the
// fallbacks (an online store that fails is read as empty and the features
// are computed; a source that fails fails the features that need it) are
// the planner's, docs/OPERATIONS.md.
package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/semaphore"
)

// Options configure a Guard. The zero value guards nothing.
type Options struct {
	// Name names what is guarded in errors and logs ("source warehouse").
	Name string
	// Where names the configuration keys, for errors ("sources.warehouse").
	Where string
	// MaxConcurrent bounds the calls running at once (0: no bulkhead);
	// MaxQueued the calls waiting for a turn beyond it. A call finding the
	// queue full is refused at once (ErrBusy).
	MaxConcurrent int
	MaxQueued     int
	// MaxPerKey bounds the calls of one key (a source's resolver) running
	// at once (0: none), so that the calls of a resolver whose table is
	// locked take MaxPerKey of the bulkhead and leave the rest to the
	// others. A call waiting for its key's turn holds no turn of the
	// bulkhead; it counts against MaxQueued.
	MaxPerKey int
	// Failures consecutive failures open the breaker (0: no breaker); it
	// stays open OpenFor (default DefaultOpenFor), refusing every call
	// (ErrOpen), then lets one call through: its success closes it.
	Failures int
	OpenFor  time.Duration
}

// DefaultOpenFor is how long a breaker stays open when Options say nothing.
const DefaultOpenFor = 5 * time.Second

// ErrBusy and ErrOpen are the refusals of a Guard (errors.Is).
var (
	ErrBusy = errors.New("bulkhead full")
	ErrOpen = errors.New("circuit breaker open")
)

// Guard is a bulkhead and a circuit breaker around calls to one source or
// store. It is safe for concurrent use.
type Guard struct {
	opts    Options
	sem     *semaphore.Weighted // nil: no bulkhead
	waiting atomic.Int64        // calls in Acquire
	running atomic.Int64
	refused atomic.Int64 // by the bulkhead or the breaker
	cb      *gobreaker.CircuitBreaker[struct{}]
	perKey  sync.Map // key → *semaphore.Weighted, with MaxPerKey
}

// New returns a guard configured by o.
func New(o Options) *Guard {
	g := &Guard{opts: o}
	if o.MaxConcurrent > 0 {
		g.sem = semaphore.NewWeighted(int64(o.MaxConcurrent))
	}
	if o.Failures > 0 {
		if o.OpenFor <= 0 {
			o.OpenFor = DefaultOpenFor
			g.opts.OpenFor = o.OpenFor
		}
		g.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        o.Name,
			Timeout:     o.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(o.Failures) },
			// The caller's cancellation or deadline, and the bulkhead's
			// refusals, say nothing of the source's health.
			IsExcluded: func(err error) bool {
				var gone callerGone
				return errors.As(err, &gone) || errors.Is(err, ErrBusy)
			},
			OnStateChange: func(name string, from, to gobreaker.State) {
				slog.Warn("circuit breaker "+to.String(), "name", name, "from", from.String())
			},
		})
	}
	return g
}

// callerGone wraps the error of a call whose caller gave up: not a
// failure of what is guarded.
type callerGone struct{ error }

func (c callerGone) Unwrap() error { return c.error }

// Do runs f under the guard: refused with ErrOpen while the breaker is
// open, with ErrBusy when the bulkhead and its queue are full; waits for a
// turn until ctx ends otherwise.
func (g *Guard) Do(ctx context.Context, f func() error) error { return g.DoKey(ctx, "", f) }

// DoKey is Do for a call of key (see Options.MaxPerKey; "" is bounded by
// the bulkhead alone).
func (g *Guard) DoKey(ctx context.Context, key string, f func() error) error {
	if g.cb == nil {
		return g.bulkheads(ctx, key, f)
	}
	_, err := g.cb.Execute(func() (struct{}, error) {
		err := g.bulkheads(ctx, key, f)
		if err != nil && ctx.Err() != nil {
			err = callerGone{err}
		}
		return struct{}{}, err
	})
	var gone callerGone
	switch {
	case errors.As(err, &gone):
		return gone.error
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		g.refused.Add(1)
		return fmt.Errorf("%s is failing: %w after %d consecutive failures (%s.breaker): calls resume within %s", g.opts.Name, ErrOpen, g.opts.Failures, g.opts.Where, g.opts.OpenFor)
	}
	return err
}

// bulkheads runs f once it has a turn of its key's bulkhead, then of the
// guard's.
func (g *Guard) bulkheads(ctx context.Context, key string, f func() error) error {
	if key != "" && g.opts.MaxPerKey > 0 {
		sem, ok := g.perKey.Load(key)
		if !ok {
			sem, _ = g.perKey.LoadOrStore(key, semaphore.NewWeighted(int64(g.opts.MaxPerKey)))
		}
		if err := g.turn(ctx, sem.(*semaphore.Weighted), "max_per_resolver"); err != nil {
			return err
		}
		defer sem.(*semaphore.Weighted).Release(1)
	}
	if g.sem != nil {
		if err := g.turn(ctx, g.sem, "max_concurrent"); err != nil {
			return err
		}
		defer g.sem.Release(1)
	}
	g.running.Add(1)
	defer g.running.Add(-1)
	return f()
}

// turn takes a turn of sem, waiting for one while the queue has room and
// ctx lasts; bound names sem's key, for the refusal.
func (g *Guard) turn(ctx context.Context, sem *semaphore.Weighted, bound string) error {
	if sem.TryAcquire(1) {
		return nil
	}
	if n := g.waiting.Add(1); n > int64(g.opts.MaxQueued) {
		g.waiting.Add(-1)
		g.refused.Add(1)
		return fmt.Errorf("%s is busy: %w: its calls are at %s.%s and %d wait already (max_queued): try again later", g.opts.Name, ErrBusy, g.opts.Where, bound, g.opts.MaxQueued)
	}
	err := sem.Acquire(ctx, 1)
	g.waiting.Add(-1)
	return err
}

// Stats are a guard's state now, for metrics.
type Stats struct {
	Name             string
	Running, Waiting int64
	Refused          int64 // since New, by the bulkhead or the breaker
	Open             bool  // the breaker is open or half-open
}

// Stats returns the guard's state now.
func (g *Guard) Stats() Stats {
	s := Stats{Name: g.opts.Name, Running: g.running.Load(), Waiting: g.waiting.Load(), Refused: g.refused.Load()}
	if g.cb != nil {
		s.Open = g.cb.State() != gobreaker.StateClosed
	}
	return s
}

// Active says whether the guard guards anything.
func (g *Guard) Active() bool { return g.sem != nil || g.cb != nil || g.opts.MaxPerKey > 0 }
