package planner

import (
	"errors"

	"github.com/fletch-engine/fletch/features/expr"
)

// ErrorKind classifies planner errors so front ends can map them (Flight SQL
// maps InvalidInput to InvalidArgument, Unsupported to Unimplemented,
// SourceFailure to Unavailable).
type ErrorKind int

const (
	// InvalidInput is a query that names something that does not exist or
	// has the wrong type: the caller can fix it.
	InvalidInput ErrorKind = iota + 1
	// Unsupported is a well-formed query fletch cannot run yet.
	Unsupported
	// SourceFailure is a source or store that failed while executing.
	SourceFailure
	// Internal is a bug.
	Internal
)

// Error is an error of planning or executing a query.
type Error struct {
	Kind ErrorKind
	Msg  string // the whole message, suggestion included
	Pos  expr.Pos
}

func (e *Error) Error() string {
	if e.Pos.Line > 0 {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Msg
}

// KindOf returns the kind of err, Internal when it is not an *Error.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return Internal
}
