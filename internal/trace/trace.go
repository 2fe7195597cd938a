// Package trace carries a request's trace id in its context, so that every
// log line written while the request runs names it (observe.Handler adds
// it) without each layer passing it along; and starts and ends the
// OpenTelemetry spans of a traced query for the layers that add them
// (Start, End). It knows nothing of where ids come from (flight reads them
// from the request), of logging, nor of where spans are exported.
package trace

import "context"

type key struct{}

// With returns ctx carrying id ("" carries none).
func With(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, key{}, id)
}

// ID is the trace id ctx carries, "" when none.
func ID(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
