package trace

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	oteltrace "go.opentelemetry.io/otel/trace"
)

// Start starts a span named name under ctx's span when tracer is set and
// ctx's span records (the query is traced and sampled); otherwise it
// returns ctx and a nil span, at the cost of a nil check when tracing is
// off. End the span with End.
func Start(ctx context.Context, tracer oteltrace.Tracer, name string, opts ...oteltrace.SpanStartOption) (context.Context, oteltrace.Span) {
	if tracer == nil || !oteltrace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return tracer.Start(ctx, name, opts...)
}

// StageStart is the start of a stage that Recorded may record: now when
// tracer is set, else the zero time (no clock read on an untraced path).
func StageStart(tracer oteltrace.Tracer) time.Time {
	if tracer == nil {
		return time.Time{}
	}
	return time.Now()
}

// Recorded records a finished stage, from start to now, as a span under
// ctx's span (when tracer is set and that span records): for a stage whose
// span is decided once it is done, such as one a cache answered.
func Recorded(ctx context.Context, tracer oteltrace.Tracer, name string, start time.Time, err error) {
	if tracer == nil || !oteltrace.SpanFromContext(ctx).IsRecording() {
		return
	}
	_, sp := tracer.Start(ctx, name, oteltrace.WithTimestamp(start))
	End(sp, err)
}

// End ends sp (nil: nothing), marking it failed with err.
func End(sp oteltrace.Span, err error) {
	if sp == nil {
		return
	}
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End()
}
