package flight

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/fletch-engine/fletch/internal/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Observer is told about the calls and queries a server answers, for
// metrics. Its methods are called on the query's path, concurrently: they
// must be cheap and never block. The flight package knows no metrics
// library; cmd/fletch plugs one in (package observe).
type Observer interface {
	// QueryStarted and QueryDone bracket one query of path (PathSQL,
	// PathSubstrait, PathPrepared or PathNative): its outcome as the
	// caller receives it and how long it took, from the call's start to
	// its last answer batch.
	QueryStarted(path string)
	QueryDone(path string, code codes.Code, d time.Duration)
	// Call reports one gRPC call (queries, planning, metadata, actions)
	// by method and outcome.
	Call(method string, code codes.Code, d time.Duration)
}

// Recorder is told about each finished query, with its trace id and what
// it ran, for a console's slowest queries. It is called on the query's
// path, concurrently: it must be cheap and never block.
type Recorder interface {
	QueryRecorded(r Record)
}

// Planned is what a query ran: a feature lookup's plan (*planner.Plan) or
// SQL over features (*relational.Query). Rendering it is left to whoever
// looks, so that a query pays nothing for it.
type Planned interface {
	Explain() string
	Classes() []string
}

// Record is one finished query.
type Record struct {
	Path  string
	Code  codes.Code
	Took  time.Duration
	End   time.Time
	Trace string
	Plan  Planned // nil when the query failed before it was planned
}

// The query paths, as metrics and logs name them.
const (
	PathSQL       = "sql"
	PathSubstrait = "substrait"
	PathPrepared  = "prepared"
	PathNative    = "native"
)

// queryObs is one query being observed: begin it when the call starts,
// end it with the call's error.
type queryObs struct {
	s     *Server
	path  string
	start time.Time
	trace string         // the query's trace id, once known
	span  oteltrace.Span // nil unless the server traces
	plan  Planned        // what it runs, once planned
}

// beginQuery observes a query of path from now on. When the server
// traces, ctx gets the query's span: a child of the caller's
// traceparent when the call's metadata has one.
func (s *Server) beginQuery(ctx context.Context, path string) (context.Context, queryObs) {
	if s.opts.Observer != nil {
		s.opts.Observer.QueryStarted(path)
	}
	q := queryObs{s: s, path: path, start: time.Now()}
	if s.tracer != nil {
		if v := metadata.ValueFromIncomingContext(ctx, traceparentHeader); len(v) > 0 {
			ctx = propagation.TraceContext{}.Extract(ctx, mdCarrier{ctx})
		}
		qs := querySpans[path]
		ctx, q.span = s.tracer.Start(ctx, qs.name, qs.opts...)
	}
	return ctx, q
}

// querySpan is the name and start options of the span of a query.
type querySpan struct {
	name string
	opts []oteltrace.SpanStartOption
}

// querySpans are the query spans of each path, made once.
var querySpans = func() map[string]querySpan {
	m := map[string]querySpan{}
	for _, path := range []string{PathSQL, PathSubstrait, PathPrepared, PathNative} {
		m[path] = querySpan{"query " + path, []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindServer)}}
	}
	return m
}()

// end reports the query's outcome: to the observer, and to the log (a
// line per query at debug level; failures of the server's side, which the
// caller cannot fix, at warn), under the query's trace id.
func (q *queryObs) end(ctx context.Context, err error) {
	if q.s == nil { // not a query (a catalogue ticket)
		return
	}
	d := time.Since(q.start)
	code := codes.OK
	if err != nil {
		code = status.Code(q.s.repoOf(ctx).answerError(err))
	}
	if o := q.s.opts.Observer; o != nil {
		o.QueryDone(q.path, code, d)
	}
	if r := q.s.opts.Recorder; r != nil {
		r.QueryRecorded(Record{Path: q.path, Code: code, Took: d, End: q.start.Add(d), Trace: q.trace, Plan: q.plan})
	}
	if q.span != nil {
		q.endSpan(ctx, code, err)
	}
	level := slog.LevelDebug
	if serverSide(code) {
		level = slog.LevelWarn
	}
	if !slog.Default().Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("path", q.path), slog.String("code", code.String()), slog.Duration("duration", d)}
	if err != nil {
		attrs = append(attrs, slog.String("err", status.Convert(q.s.repoOf(ctx).answerError(err)).Message()))
	}
	slog.LogAttrs(trace.With(ctx, q.trace), level, "query", attrs...)
}

// serverSide says whether code is a failure of the server or what it
// depends on, rather than of the request.
func serverSide(code codes.Code) bool {
	switch code {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// endSpan ends the query's span with its outcome as the caller received
// it: failed (with the message) only for failures of the server's side,
// as for an HTTP server's 5xx; a bad request is the caller's error, in
// the code attribute.
func (q *queryObs) endSpan(ctx context.Context, code codes.Code, err error) {
	// The attributes are set once, here: each call grows the span's
	// attribute slice.
	attrs := []attribute.KeyValue{attribute.String("fletch.path", q.path), attribute.String("rpc.grpc.status_code", code.String())}
	if q.trace != "" && q.trace != q.span.SpanContext().TraceID().String() {
		// The caller named the query with its own x-fletch-trace-id: the
		// log's name for it, searchable in the trace.
		attrs = append(attrs, attribute.String("fletch.trace_id", q.trace))
	}
	q.span.SetAttributes(attrs...)
	if err != nil && serverSide(code) {
		q.span.SetStatus(otelcodes.Error, status.Convert(q.s.repoOf(ctx).answerError(err)).Message())
	}
	q.span.End()
}
