package observe

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// batcher is a span processor that exports ended spans in batches, in the
// background, like the SDK's BatchSpanProcessor, but without waking its
// exporting goroutine for every span: the SDK's sends each ended span over
// a channel to that goroutine, a futex wake-up per span, ~13 per traced
// query, which made tracing every query cost a quarter of a 1×50 lookup
// server's CPU (docs/BENCHMARKS.md §22). Here an ended span is appended to
// a slice under a mutex; the goroutine wakes when a batch is full or the
// interval has passed.
//
// Like the SDK's, it never blocks a query: when maxQueue spans wait (the
// receiver slow or down), further spans are dropped and counted.
type batcher struct {
	exp      sdktrace.SpanExporter
	maxBatch int
	maxQueue int
	interval time.Duration
	timeout  time.Duration

	mu      sync.Mutex
	pending []sdktrace.ReadOnlySpan
	stopped bool

	full    chan struct{} // a batch is waiting: cap 1, never blocks a sender
	flush   chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
}

// newBatcher starts the exporting goroutine, which sends batches of up to
// maxBatch spans at least every interval, with up to maxQueue waiting;
// Shutdown stops it.
func newBatcher(exp sdktrace.SpanExporter, maxBatch, maxQueue int, interval time.Duration) *batcher {
	b := &batcher{
		exp:      exp,
		maxBatch: maxBatch,
		maxQueue: maxQueue,
		interval: interval,
		timeout:  10 * time.Second,
		full:     make(chan struct{}, 1),
		flush:    make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go b.loop()
	return b
}

func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export.
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	if b.stopped || len(b.pending) >= b.maxQueue {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.pending = append(b.pending, s)
	n := len(b.pending)
	b.mu.Unlock()
	if n == b.maxBatch {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

func (b *batcher) loop() {
	defer close(b.done)
	tick := time.NewTicker(b.interval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			b.export()
			return
		case <-tick.C:
			b.export()
		case <-b.full:
			b.export()
		case ack := <-b.flush:
			b.export()
			close(ack)
		}
	}
}

// export sends everything pending, a batch at a time.
func (b *batcher) export() {
	b.mu.Lock()
	spans := b.pending
	b.pending = nil
	b.mu.Unlock()
	if d := b.dropped.Swap(0); d > 0 {
		otel.Handle(fmt.Errorf("tracing: %d spans dropped: %d were waiting for the receiver", d, b.maxQueue))
	}
	for len(spans) > 0 {
		n := min(len(spans), b.maxBatch)
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		if err := b.exp.ExportSpans(ctx, spans[:n]); err != nil {
			otel.Handle(err)
		}
		cancel()
		spans = spans[n:]
	}
}

// ForceFlush exports what is pending and returns when it has been sent.
func (b *batcher) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case b.flush <- ack:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is pending, stops the goroutine and shuts the
// exporter down. Spans ended afterwards are dropped.
func (b *batcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return nil
	}
	b.stopped = true
	b.mu.Unlock()
	close(b.stop)
	select {
	case <-b.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.exp.Shutdown(ctx)
}
