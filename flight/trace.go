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
	"strings"

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
	// traceparentHeader is the W3C Trace Context header; its trace-id
	// field names the request when TraceHeader is absent.
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
// TraceHeader value, else the trace-id of its traceparent; "" when it
// names none. A traceparent that is not valid W3C is ignored (tracing
// middleware owns it, and a broken one must not fail queries); a
// TraceHeader that cannot be logged as sent is an error.
func requestTraceID(ctx context.Context) (string, error) {
	if v := metadata.ValueFromIncomingContext(ctx, TraceHeader); len(v) > 0 && v[0] != "" {
		return v[0], checkTraceID(v[0])
	}
	// Several traceparent headers are invalid in W3C Trace Context.
	if v := metadata.ValueFromIncomingContext(ctx, traceparentHeader); len(v) == 1 {
		if id, ok := traceparentID(v[0]); ok {
			return id, nil
		}
	}
	return "", nil
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

// traceparentID is the trace-id field of a W3C traceparent,
// version-traceid-parentid-flags (00-4bf92f3577b34da6a3ce929d0e0e4736-
// 00f067aa0ba902b7-01), when v is valid: lower-case hex fields, version
// not ff, neither id all zeros. Versions after 00 may append fields.
func traceparentID(v string) (string, bool) {
	const size = 55 // version 00's length, a prefix of later versions'
	if len(v) < size || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version, id, parent, flags := v[:2], v[3:35], v[36:52], v[53:55]
	if len(v) > size && (version == "00" || v[size] != '-') {
		return "", false
	}
	if !lowerHex(version) || version == "ff" || !lowerHex(id) || !lowerHex(parent) || !lowerHex(flags) {
		return "", false
	}
	if strings.Trim(id, "0") == "" || strings.Trim(parent, "0") == "" {
		return "", false
	}
	return id, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
