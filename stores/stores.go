// Package stores holds the seams between fletch and the systems that keep
// data: sources that resolvers read (DuckDB, Postgres) and online stores that
// cache computed values (memory, Redis, DynamoDB). Each implementation lives
// in its own sub-package behind the small interfaces here.
//
// Nothing here knows about feature classes or plans: a source runs a query it
// is given and answers Arrow records.
package stores

import (
	"context"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Source runs resolver queries against one configured database.
type Source interface {
	// Fetch runs req and returns its rows as one record (zero rows is a
	// record with zero rows, never nil). The caller releases it.
	Fetch(ctx context.Context, mem memory.Allocator, req FetchRequest) (arrow.RecordBatch, error)
	Close() error
}

// FetchRequest is one resolver query of one request.
type FetchRequest struct {
	// SQL is the resolver's query with its `${...}` placeholders rewritten
	// to $1..$n, in the order of Params.
	SQL    string
	Params []ParamValue
	// KeyColumn, when set, restricts the result to rows whose KeyColumn is
	// one of Keys: the input keys pushed into the query, in one query for
	// all the request's entities.
	KeyColumn string
	Keys      arrow.Array
	// Schema, when set, is the Arrow schema the caller wants for the
	// columns it names (by name); the source casts to it.
	Schema *arrow.Schema
}

// ParamValue is the value bound to one placeholder: a time (for ${now}) or
// the distinct input values of a feature (for ${class.feature}).
type ParamValue struct {
	Time   time.Time
	Values arrow.Array
}
