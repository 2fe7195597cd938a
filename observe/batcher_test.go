package observe

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// countingExporter records the size of every batch it is given, and can
// hold its caller until released (a receiver that does not answer).
type countingExporter struct {
	mu      sync.Mutex
	batches []int
	hold    chan struct{}
}

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.hold != nil {
		<-e.hold
	}
	e.mu.Lock()
	e.batches = append(e.batches, len(spans))
	e.mu.Unlock()
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

// total is how many spans were exported.
func (e *countingExporter) total() int {
	n := 0
	for _, s := range e.sizes() {
		n += s
	}
	return n
}

func (e *countingExporter) sizes() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.batches...)
}

// endSpans starts and ends n spans of a provider exporting through b.
func endSpans(tp *sdktrace.TracerProvider, n int) {
	tr := tp.Tracer("test")
	for i := range n {
		_, sp := tr.Start(context.Background(), fmt.Sprint("span ", i))
		sp.End()
	}
}

func TestBatcher(t *testing.T) {
	tests := []struct {
		name     string
		spans    int
		maxBatch int
		interval time.Duration
		settle   func(*batcher) // how the test lets the batcher export
		want     []int          // batch sizes the exporter saw
	}{
		{"a full batch goes without waiting for the interval", 4, 4, time.Hour,
			func(b *batcher) { waitFor(func() bool { return len(b.exp.(*countingExporter).sizes()) == 1 }) }, []int{4}},
		{"the interval sends a partial batch", 3, 512, 20 * time.Millisecond,
			func(b *batcher) { waitFor(func() bool { return len(b.exp.(*countingExporter).sizes()) == 1 }) }, []int{3}},
		{"ForceFlush sends what waits, a batch at a time", 10, 4, time.Hour,
			func(b *batcher) {
				if err := b.ForceFlush(context.Background()); err != nil {
					panic(err)
				}
			}, []int{4, 4, 2}},
		{"Shutdown sends what waits", 5, 512, time.Hour,
			func(b *batcher) {
				if err := b.Shutdown(context.Background()); err != nil {
					panic(err)
				}
			}, []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := &countingExporter{}
			b := newBatcher(exp, tt.maxBatch, 100, tt.interval)
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
			defer tp.Shutdown(context.Background())
			endSpans(tp, tt.spans)
			tt.settle(b)
			if got := exp.sizes(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("batches %v, want %v", got, tt.want)
			}
			if got := exp.total(); got != tt.spans {
				t.Fatalf("%d spans exported, want %d", got, tt.spans)
			}
		})
	}
}

// TestBatcherDropsWhenFull: a receiver that does not answer never blocks
// a query; spans beyond the queue are dropped and reported.
func TestBatcherDropsWhenFull(t *testing.T) {
	exp := &countingExporter{hold: make(chan struct{})}
	b := newBatcher(exp, 2, 3, time.Hour)
	var mu sync.Mutex
	var reported []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(b))
	endSpans(tp, 2) // a full batch: the exporter takes it and holds
	waitFor(func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.pending) == 0 })
	done := make(chan struct{})
	go func() { endSpans(tp, 10); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ending spans blocked on a receiver that does not answer")
	}
	close(exp.hold)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.total(); got != 2+3 {
		t.Fatalf("%d spans exported, want 5 (2, then the 3 the queue held)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || reported[0].Error() != "tracing: 7 spans dropped: 3 were waiting for the receiver" {
		t.Fatalf("reported %v, want one error counting 7 dropped spans", reported)
	}
}

func waitFor(cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}
