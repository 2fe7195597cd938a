package observe

import (
	"context"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkTracedQuery ends the 6 spans of a traced 1×50 lookup (query,
// parse, plan, run, frame, online store) every 4 ms, as a server at 250
// queries a second does, through observe's batcher and through the SDK's
// BatchSpanProcessor, both exporting to an exporter that drops the spans.
// Paced, because what a processor costs is the goroutines and threads it
// wakes between queries, which a busy loop hides. Reports the process's
// CPU time per query; "pacing only" is the pacing's own cost (its timer),
// spans that record nothing:
//
//	go test -run '^$' -bench TracedQuery -benchtime 2000x -count 4 ./observe/
func BenchmarkTracedQuery(b *testing.B) {
	for _, p := range []struct {
		name string
		proc func() sdktrace.SpanProcessor
	}{
		{"pacing only", nil},
		{"batcher", func() sdktrace.SpanProcessor { return newBatcher(tracetest.NewNoopExporter(), 512, 8192, time.Second) }},
		{"sdk", func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(tracetest.NewNoopExporter()) }},
	} {
		b.Run(p.name, func(b *testing.B) {
			var tr oteltrace.Tracer = noop.NewTracerProvider().Tracer("bench")
			if p.proc != nil {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p.proc()))
				defer tp.Shutdown(context.Background())
				tr = tp.Tracer("bench")
			}
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			cpu0 := cpuTime()
			for b.Loop() {
				<-tick.C
				ctx, q := tr.Start(context.Background(), "query sql")
				for _, name := range []string{"parse sql", "plan"} {
					_, sp := tr.Start(ctx, name)
					sp.End()
				}
				rctx, run := tr.Start(ctx, "run")
				fctx, frame := tr.Start(rctx, "frame")
				_, st := tr.Start(fctx, "online store")
				st.End()
				frame.End()
				run.End()
				q.End()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
