package observe

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/fletch-engine/fletch/internal/trace"
)

// Handler is a slog.Handler that adds the trace id of the query a line
// belongs to (the record's context carries it: internal/trace) as
// trace_id, so that every line of a query can be found by the id echoed
// to its caller.
type Handler struct{ slog.Handler }

// Handle adds trace_id, when the context has one, and passes r on.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := trace.ID(ctx); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs and WithGroup keep the handler a Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }

// The log formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// NewLogger is a logger writing to w in format (FormatText, FormatJSON;
// "" is text) from level on ("debug", "info", "warn", "error"; "" is
// info), with trace ids (Handler).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case FormatText, "":
		return slog.New(Handler{slog.NewTextHandler(w, opts)}), nil
	case FormatJSON:
		return slog.New(Handler{slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
