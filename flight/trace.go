package flight

// Trace ids: the name a request's runs carry in the offline log
// (docs/STORES.md, "The offline store"), so that a caller can find the
// rows its query logged. The caller names the request in gRPC metadata,
// with fletch's own header or the W3C Trace Context one its tracing
// already sends; a request naming none gets a random id. Either way the id
// used is echoed in the response header, so it can be looked up.

import (
	"context"
	"crypto/rand"

	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	// TraceHeader is the metadata key of a request's trace id: read from
	// the request, and echoed on the response of every query.
	TraceHeader = "x-fletch-trace-id"
	// MaxTraceID is the longest trace id accepted, in bytes: room for any
	// request id (a UUID is 36), and a bound on what one header adds to
	// every logged row.
	MaxTraceID = 128
	// traceparentHeader is the W3C Trace Context header.
	traceparentHeader = "traceparent"
)

// traceID is the trace id of the runs of ctx's request, and is echoed in
// the response header: it names the rows the query logs in the offline
// store and the lines it writes to the server's log.
func (s *Server) traceID(ctx context.Context) (string, error) {
	id, err := requestTraceID(ctx)
	if err != nil {
		return "", err
	}
	if id == "" {
		id = rand.Text()
	}
	// Set before the answer's first message, which carries it; there is
	// no failure to report: a call without a stream has no header to set.
	_ = grpc.SetHeader(ctx, metadata.Pairs(TraceHeader, id))
	return id, nil
}

// requestTraceID is the trace id the request of ctx names: its first
// TraceHeader value, else the trace id of the query's span (a traced
// query: its caller's traceparent's, or a new one), else the trace-id of
// its traceparent; "" when it names none. A traceparent that is not valid
// W3C is ignored (tracing middleware owns it, and a broken one must not
// fail queries); a TraceHeader that cannot be logged as sent is an error.
func requestTraceID(ctx context.Context) (string, error) {
	if v := metadata.ValueFromIncomingContext(ctx, TraceHeader); len(v) > 0 && v[0] != "" {
		return v[0], checkTraceID(v[0])
	}
	if sc := oteltrace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String(), nil
	}
	// Looked up first: a request without one costs no allocation.
	if v := metadata.ValueFromIncomingContext(ctx, traceparentHeader); len(v) == 1 {
		if sc := oteltrace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, mdCarrier{ctx})); sc.IsValid() {
			return sc.TraceID().String(), nil
		}
	}
	return "", nil
}

// mdCarrier reads a call's W3C Trace Context headers from its gRPC
// metadata for otel's propagation (which parses them).
type mdCarrier struct{ ctx context.Context }

// Get is the header's value; "" when it is absent or repeated (several
// traceparent headers are invalid in W3C Trace Context).
func (c mdCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) == 1 {
		return v[0]
	}
	return ""
}

// Set does nothing: incoming metadata is read, never written.
func (mdCarrier) Set(string, string) {}

// Keys lists the metadata's keys.
func (c mdCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// checkTraceID refuses an id that is too long or not printable ASCII.
// Truncating would log an id the caller never sent; and bytes a
// database's text column refuses (invalid UTF-8) would fail the whole
// batch of logged rows, other queries' included.
func checkTraceID(id string) error {
	if len(id) > MaxTraceID {
		return status.Errorf(codes.InvalidArgument, "%s is %d bytes long; at most %d are accepted (a request id such as a UUID fits)", TraceHeader, len(id), MaxTraceID)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return status.Errorf(codes.InvalidArgument, "%s has byte 0x%02x at offset %d: only printable ASCII (0x20-0x7e) is accepted", TraceHeader, c, i)
		}
	}
	return nil
}
