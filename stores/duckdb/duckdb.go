// Package duckdb is the embedded DuckDB source: it runs resolver queries
// against a DuckDB database file (or an in-memory database) and answers them
// as Arrow records in fletch's types.
//
// With the duckdb_arrow build tag the results come through DuckDB's Arrow
// interface; without it rows are scanned straight into Arrow builders.
// Lookups of a few keys (the online path) run a statement kept prepared and
// scan rows in either build. Every path ends in the same normalization
// (normalize.go), so they answer the same types.
//
// It knows nothing about feature classes or plans: it runs the query it is
// given, restricted to the keys it is given.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	// Registers the "duckdb" database/sql driver.
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/stores"
)

// Source is a stores.Source over one DuckDB database.
type Source struct {
	db    *sql.DB
	stmts *stmtCache // the few-key lookups, prepared
}

var _ stores.Source = (*Source)(nil)

// maxIdleConns is the connections kept open between queries. The planner
// runs a query's lookups at once, and a server many queries: with
// database/sql's default of 2, a third concurrent fetch opened a DuckDB
// connection and prepared its statement on it again every time.
const maxIdleConns = 16

// Open opens the DuckDB database at path, creating it when missing; "" is
// a private in-memory database shared by all of the Source's connections.
func Open(path string) (*Source, error) {
	return open(path, path)
}

// OpenReadOnly opens the existing DuckDB database file at path for
// reading only: nothing is created or written, and a file another process
// has open is a LockedError, as for Open.
func OpenReadOnly(path string) (*Source, error) {
	return open(path, path+"?access_mode=read_only")
}

func open(path, dsn string) (*Source, error) {
	db, err := sql.Open("duckdb", dsn)
	if err == nil {
		if err = db.Ping(); err != nil {
			db.Close()
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "Could not set lock on file") {
			return nil, &LockedError{Path: path}
		}
		return nil, fmt.Errorf("duckdb: open %q: %w", path, err)
	}
	db.SetMaxIdleConns(maxIdleConns)
	return &Source{db: db, stmts: newStmtCache(maxStatements)}, nil
}

// LockedError is the error of Open for a file another process has open:
// DuckDB lets one process at a time open a database file (a served
// repository's).
type LockedError struct{ Path string }

func (e *LockedError) Error() string {
	return fmt.Sprintf("duckdb: %s is open in another process, and DuckDB lets one process at a time open a file", e.Path)
}

// SQLDialect names the SQL the source speaks, for callers that write
// queries of their own (aggregation tiles).
func (s *Source) SQLDialect() string { return "duckdb" }

// DB is the database, for loaders that create and fill tables.
func (s *Source) DB() *sql.DB { return s.db }

// Ping checks that the database is open (stores.Pinger).
func (s *Source) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the prepared statements and the database.
func (s *Source) Close() error { return errors.Join(s.stmts.close(), s.db.Close()) }

// Fetch runs req in one query and returns its rows as one record in
// fletch's types (see normalize.go).
func (s *Source) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (arrow.RecordBatch, error) {
	if req.KeyColumn != "" && req.Keys == nil {
		return nil, fmt.Errorf("duckdb: key column %q given without keys", req.KeyColumn)
	}
	args, err := stores.ParamArgs(req.Params)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	query := req.SQL
	if req.KeyColumn != "" {
		if query, args, err = withListKeys(req, args); err != nil {
			return nil, fmt.Errorf("duckdb: %w", err)
		}
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	var rec arrow.RecordBatch
	if req.KeyColumn != "" && req.Keys.Len() <= maxInlineKeys {
		rec, err = s.queryPrepared(ctx, mem, query, args, req.Schema)
	} else {
		rec, err = s.query(ctx, mem, query, args, req.Schema)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("duckdb: %w", ctx.Err())
		}
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	return rec, nil
}

// restrictToKeys wraps a resolver's query so that it answers only the rows
// whose keyColumn is in the one-column relation keys: the request's keys
// pushed into the query, never spliced into its text.
func restrictToKeys(req stores.FetchRequest, keys string) string {
	return stores.Restrict(req.SQL, req.Schema, "_r."+stores.QuoteIdent(req.KeyColumn)+" IN ("+keys+")")
}

// withListKeys restricts req's query to its keys bound after args: one
// parameter per key for a few, else one LIST parameter. (Registering the keys as an Arrow view instead is
// faster for 10,000 keys, see BenchmarkKeyPushdown, but DuckDB creates that
// view in the database's persistent catalog: a catalog write per request,
// impossible on a read-only file, and a view over freed memory left in the
// file by a crash.)
func withListKeys(req stores.FetchRequest, args []any) (string, []any, error) {
	keys, err := stores.GoSlice(req.Keys)
	if err != nil {
		return "", nil, fmt.Errorf("keys for %q: %w", req.KeyColumn, err)
	}
	if req.Keys.Len() <= maxInlineKeys {
		// A few keys go as one parameter each: DuckDB pushes an IN list of
		// constants into the table scan (an index or zone-map lookup),
		// where IN (SELECT unnest(...)) joins against the whole table.
		if refs := inlineParams(keys, &args); len(refs) > 0 {
			return restrictToKeys(req, strings.Join(refs, ", ")), args, nil
		}
	}
	args = append(args, keys)
	return restrictToKeys(req, "SELECT unnest($"+strconv.Itoa(len(args))+")"), args, nil
}

// maxInlineKeys is the most keys bound one parameter each; more go as one
// LIST parameter (one prepared shape for any number of keys).
const maxInlineKeys = 64

// inlineParams appends each value of the slice vals to args and returns
// their placeholders; none for a slice of no values.
func inlineParams(vals any, args *[]any) []string {
	var refs []string
	add := func(v any) {
		*args = append(*args, v)
		refs = append(refs, "$"+strconv.Itoa(len(*args)))
	}
	switch vs := vals.(type) {
	case []int64:
		for _, v := range vs {
			add(v)
		}
	case []string:
		for _, v := range vs {
			add(v)
		}
	}
	return refs
}
