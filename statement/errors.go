package statement

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/internal/suggest"
)

// ErrorKind classifies errors so transports can map them (Flight SQL maps
// InvalidInput to InvalidArgument, Unsupported to Unimplemented,
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
	// ResourceExhausted is a query refused because a bounded resource is
	// full (the Python workers' queue): the caller may retry later.
	ResourceExhausted
)

// Error is the error of reading, planning or executing a query, whatever
// front end it came from.
type Error struct {
	Kind ErrorKind
	Msg  string
	// Pos is where in the query text the error is, zero when unknown.
	Pos expr.Pos
	// Suggestion is the valid name nearest to a mistyped one, "" when none
	// is close. It is kept apart from Msg so that a transport can leave out
	// a name the caller may not see.
	Suggestion string
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Suggestion != "" {
		msg += ` (did you mean "` + e.Suggestion + `"?)`
	}
	if e.Pos.Line > 0 {
		return e.Pos.String() + ": " + msg
	}
	return msg
}

// Errorf is an error of kind at a position of the query (zero: unknown).
func Errorf(kind ErrorKind, at expr.Pos, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Pos: at}
}

// suggested sets e's suggestion to the candidate nearest to name, if one is
// close enough to be a plausible typo, and returns e.
func suggested(e *Error, name string, candidates []string) *Error {
	e.Suggestion = suggest.Nearest(name, candidates)
	return e
}

// KindOf returns the kind of err, Internal when it is not an *Error.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return Internal
}

// Hide keeps err from telling a caller about classes it may not read
// (canRead, by table name): a suggestion naming such a class is left out
// of the error it answers, as if the class did not exist, and it lists the
// hidden classes the message still names (a table, a has-one path's
// class), for the caller to refuse the query as reaching them instead.
func Hide(g *features.Graph, err error, canRead func(table string) bool) (hidden []string, restricted error) {
	var se *Error
	if errors.As(err, &se) && se.Suggestion != "" {
		if c := g.Class(se.Suggestion); c != nil && !canRead(c.Table) {
			e := *se
			e.Suggestion = ""
			err = &e
		}
	}
	for _, word := range strings.FieldsFunc(err.Error(), func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		if c := g.Class(word); c != nil && !canRead(c.Table) {
			hidden = append(hidden, c.Table)
		}
	}
	return hidden, err
}
