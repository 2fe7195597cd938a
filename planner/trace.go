package planner

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/fletch-engine/fletch/internal/trace"
)

// stages records what a run does, stage by stage: for EXPLAIN ANALYZE
// (Analysis) and as OpenTelemetry spans of the query's trace, one seam for
// both. A run asked for neither has no stages (nil), and each of its
// stages costs a nil check.
type stages struct {
	start    time.Time
	analysis *Analysis        // nil unless RunOptions.Analyze
	tracer   oteltrace.Tracer // nil unless the query's span records
	ctx      context.Context  // the run's span: the parent of the root frame's
	span     oteltrace.Span
	class    string // the run's span's attributes, set at its end
	in       int
}

// frameStage is the stage of a frame as a whole.
const frameStage = "frame"

// stage is a stage being recorded.
type stage struct {
	Stage
	span oteltrace.Span // nil without tracing
	ctx  context.Context
}

// WithTracerProvider makes the engine trace the runs of traced queries:
// a run whose context holds a recording span (the server's span of the
// query) adds a span per stage under it. nil: no tracing, at the cost of
// a nil check per run.
func WithTracerProvider(tp oteltrace.TracerProvider) EngineOption {
	return func(e *Engine) {
		if tp != nil {
			e.tracer = tp.Tracer("github.com/fletch-engine/fletch/planner")
		}
	}
}

// newStages are the stages of a run of ctx over class's rows, or nil
// when neither analyze nor the query's trace asks for them.
func (e *Engine) newStages(ctx context.Context, analyze bool, class string, in int) *stages {
	var tracer oteltrace.Tracer
	if e.tracer != nil && oteltrace.SpanFromContext(ctx).IsRecording() {
		tracer = e.tracer
	}
	if !analyze && tracer == nil {
		return nil
	}
	s := &stages{start: time.Now(), tracer: tracer, ctx: ctx}
	if analyze {
		s.analysis = &Analysis{start: s.start}
	}
	if tracer != nil {
		s.ctx, s.span = tracer.Start(ctx, "run")
		s.class, s.in = class, in
	}
	return s
}

// end ends the run's span.
func (s *stages) end(rows int, err error) {
	if s == nil || s.span == nil {
		return
	}
	// A span's attributes are set once, at its end: each call grows the
	// span's attribute slice (docs/BENCHMARKS.md §25).
	s.span.SetAttributes(attribute.String("fletch.class", s.class), attribute.Int("fletch.rows_in", s.in), attribute.Int("fletch.rows_out", rows))
	trace.End(s.span, err)
}

// parentOf is the context the stages of frame f nest in: f's frame span,
// else the run's.
func (s *stages) parentOf(f *frameData) context.Context {
	if f != nil && f.span != nil {
		return f.span
	}
	return s.ctx
}

// begin starts a stage of node (the frame it is a stage of), within f's stage; it does
// nothing on nil stages. The root frame's stage is no span of its own: the
// run's span is the root frame's (its stages nest in it).
func (s *stages) begin(f *frameData, node *frameNode, what string, in int) *stage {
	if s == nil {
		return nil
	}
	frame := node.class.Table
	st := &stage{Stage: Stage{Frame: frame, FrameID: node.id, What: what, In: in, At: time.Since(s.start)}}
	if s.tracer != nil && (what != frameStage || node.parent != nil) {
		st.ctx, st.span = s.tracer.Start(s.parentOf(f), what)
	}
	return st
}

// finish ends st with the rows it gave out, a note and its error.
func (s *stages) finish(st *stage, out int, note string, err error) {
	if s == nil {
		return
	}
	st.Took, st.Out, st.Note = time.Since(s.start)-st.At, out, note
	if a := s.analysis; a != nil && err == nil {
		a.mu.Lock()
		a.Stages = append(a.Stages, st.Stage)
		a.mu.Unlock()
	}
	if st.span != nil {
		attrs := []attribute.KeyValue{attribute.String("fletch.class", st.Frame), attribute.Int("fletch.rows_in", st.In), attribute.Int("fletch.rows_out", out)}
		if note != "" {
			attrs = append(attrs, attribute.String("fletch.note", note))
		}
		st.span.SetAttributes(attrs...)
		trace.End(st.span, err)
	}
}
