// Package stores holds the seams between fletch and the systems that keep
// data: sources that resolvers read (DuckDB, Postgres), online stores that
// cache computed values (memory, Redis, DynamoDB) and the offline log that
// keeps their history (offline). Each implementation lives
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

// Pinger is a source or store that can say whether it is reachable, for a
// server's readiness (/readyz): one cheap round trip, no data read. A
// source or store without it (in-process ones) is always ready.
type Pinger interface {
	Ping(ctx context.Context) error
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
	// Schema, when set, names the columns the caller wants, in the Arrow
	// types it wants (the source casts to them); a source with KeyColumn
	// set answers only those columns, so a table's other columns are never
	// read.
	Schema *arrow.Schema
	// Timeout, when positive, bounds this query (the resolver's `timeout`
	// header); the source cancels it server-side when it passes.
	Timeout time.Duration
	// Resolver names the resolver the query is of: a source's bulkhead
	// bounds what one resolver may hold of it (stores/guard).
	Resolver string
}

// ParamValue is the value bound to one placeholder: a time (for ${now}) or
// the distinct input values of a feature (for ${class.feature}).
type ParamValue struct {
	Time   time.Time
	Values arrow.Array
}

// OnlineStore caches computed feature values per (class, entity key), each
// value with the time it was observed, for features served within their
// max_staleness. Every call handles all the keys of a request at once, so
// remote stores can answer it in one round trip (Redis MGET, DynamoDB
// BatchGetItem).
type OnlineStore interface {
	// Get answers, for each key (int64 or utf8; row i answers keys[i]) and
	// each field of features (by name, in that Arrow type), the stored value
	// and when it was observed. A value stored in another type than asked
	// for is missing: the feature's type changed since it was cached.
	Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, features *arrow.Schema) (*OnlineValues, error)
	// Set stores row i of values (one column per feature, by name) for
	// keys[i], observed at observed[i]. A stored value observed later than
	// the new one is kept. Null keys are skipped.
	Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error
	Close() error
}

// OnlineValues is the answer of OnlineStore.Get.
type OnlineValues struct {
	// Values has one column per requested feature and one row per key;
	// a cell is null where nothing is stored, or where null is stored.
	Values arrow.RecordBatch
	// Observed has, per requested feature, a timestamp[us, UTC] array: when
	// each key's value was observed, null where nothing is stored. Features
	// observed together may share one array (the same arrow.Array, retained
	// once per feature), so a reader can check it once.
	Observed []arrow.Array
}

// Release releases the arrays of v.
func (v *OnlineValues) Release() {
	v.Values.Release()
	for _, o := range v.Observed {
		o.Release()
	}
}

// ComputedValues are feature values one query computed for entities of one
// class, all observed at one time: what the offline log receives.
type ComputedValues struct {
	Class string // the class's table name
	// Keys are the entity keys (int64 or utf8), one per row of Values.
	Keys arrow.Array
	// Values has one column per feature, named by feature name.
	Values   arrow.RecordBatch
	Observed time.Time
	// TraceID names the query that computed them.
	TraceID string
}

// Release releases the arrays of v.
func (v *ComputedValues) Release() {
	v.Keys.Release()
	v.Values.Release()
}

// OfflineLog appends computed feature values to the offline store, the
// history training sets are built from. It is asynchronous and bounded: a
// query never waits for it nor fails because of it.
type OfflineLog interface {
	// Log takes v (the log releases it) and queues it without blocking;
	// when the queue is full, v is dropped and counted.
	Log(v *ComputedValues)
	// Flush waits until everything logged so far is written (or failed).
	Flush()
	Stats() OfflineStats
}

// OfflineReader reads the offline log back: the values served at a time,
// for offline queries that do not recompute them (recompute_features=False,
// docs/STORES.md "Reading the offline store").
type OfflineReader interface {
	// AsOf answers, for each row i (keys[i], int64 or utf8, at time at[i] in
	// µs since the epoch) and each field of features (by name, in that Arrow
	// type), the latest value logged for keys[i] of class with an
	// observation time <= at[i], and that time: null where none was logged
	// by then (or the key is null). One query for all the rows.
	AsOf(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, at []int64, features *arrow.Schema) (*OnlineValues, error)
}

// OfflineStats count feature values (one per entity and feature) the
// offline log was given.
type OfflineStats struct {
	Written int64 // in the offline store
	Dropped int64 // dropped because the queue was full
	Failed  int64 // the store refused or could not be reached
}
