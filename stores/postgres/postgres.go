// Package postgres is the PostgreSQL source: it runs resolver queries
// against a Postgres database through a pgx connection pool and answers
// them as Arrow records in fletch's types, the same records the DuckDB
// source answers for the same request.
//
// Results are read in Postgres's binary format and decoded straight into
// Arrow builders of the caller's types (decode.go): no row maps, no
// interface values per cell.
//
// It knows nothing about feature classes or plans: it runs the query it is
// given, restricted to the keys it is given.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fletch-engine/fletch/stores"
)

// Options configure a Source.
type Options struct {
	// DSN is a libpq connection string or URL
	// (postgres://user:pass@host:5432/db?sslmode=disable).
	DSN string
	// MaxConns bounds the pool (0: pgx's default, the larger of 4 and the
	// number of CPUs).
	MaxConns int
	// StatementTimeout, when positive, bounds every query server-side
	// (Postgres's statement_timeout on each connection).
	StatementTimeout time.Duration
	// Name is how errors name the source (the name in fletch.yaml);
	// "" names it by host, port and database.
	Name string
}

// Source is a stores.Source over one Postgres database.
type Source struct {
	pool *pgxpool.Pool
	name string
}

var _ stores.Source = (*Source)(nil)

// SQLDialect names the SQL the source speaks, for callers that write
// queries of their own (aggregation tiles).
func (s *Source) SQLDialect() string { return "postgres" }

// connectTimeout bounds connecting when the DSN says nothing, so that a
// query against an unreachable server fails instead of hanging.
const connectTimeout = 5 * time.Second

// cancelGrace is how long a query whose context ended may take to stop
// after the server was asked to cancel it, before the connection is cut.
const cancelGrace = 2 * time.Second

// Open connects to the database o.DSN names and checks that it answers.
func Open(ctx context.Context, o Options) (*Source, error) {
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, fmt.Errorf("postgres source %s: the dsn is not a valid connection string or URL", o.Name)
	}
	name := o.Name
	if name == "" {
		name = fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	}
	if o.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	// When a request's context ends, ask the server to cancel the query
	// (pgx's default only cuts the connection, leaving the query running).
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres source %s: %w", name, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres source %s: cannot connect: %w", name, err)
	}
	return &Source{pool: pool, name: name}, nil
}

// Pool is the connection pool, for loaders that create and fill tables.
func (s *Source) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers (stores.Pinger).
func (s *Source) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes the pool's connections.
func (s *Source) Close() error {
	s.pool.Close()
	return nil
}

// Fetch runs req in one query and returns its rows as one record: the
// columns req.Schema names in its types, the others in their fletch types
// (see decode.go).
func (s *Source) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (arrow.RecordBatch, error) {
	if req.KeyColumn != "" && req.Keys == nil {
		return nil, fmt.Errorf("postgres source %s: key column %q given without keys", s.name, req.KeyColumn)
	}
	args, err := stores.ParamArgs(req.Params)
	if err != nil {
		return nil, fmt.Errorf("postgres source %s: %w", s.name, err)
	}
	query := req.SQL
	if req.KeyColumn != "" {
		keys, err := stores.GoSlice(req.Keys)
		if err != nil {
			return nil, fmt.Errorf("postgres source %s: keys for %q: %w", s.name, req.KeyColumn, err)
		}
		args = append(args, keys)
		query = restrictToKeys(req.SQL, req.Schema, req.KeyColumn, arrayType(req.Keys.DataType()), len(args))
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, req.Timeout, errResolverTimeout)
		defer cancel()
	}
	rec, err := s.query(ctx, mem, query, args, req.Schema)
	if err != nil && retryable(ctx, err) {
		// A connection that died while idle (the server restarted) fails
		// its first query; the pool has dropped it, so ask once more. The
		// query only reads.
		rec, err = s.query(ctx, mem, query, args, req.Schema)
	}
	if err != nil {
		return nil, s.explain(ctx, err, req.Timeout)
	}
	return rec, nil
}

var errResolverTimeout = errors.New("the resolver's timeout passed")

// retryable reports whether err is the connection failing rather than the
// query: not an error the server answered, nor the caller giving up.
func retryable(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	var decodeErr *decodeError
	return ctx.Err() == nil && !errors.As(err, &pgErr) && !errors.As(err, &decodeErr)
}

// explain names the source and says what failed, in the words of the
// configuration rather than of the driver where they differ.
func (s *Source) explain(ctx context.Context, err error, timeout time.Duration) error {
	if context.Cause(ctx) == errResolverTimeout {
		return fmt.Errorf("postgres source %s: the query took longer than the resolver's timeout (%s) and was cancelled", s.name, timeout)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("postgres source %s: %w", s.name, ctx.Err())
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" {
		return fmt.Errorf("postgres source %s: the query took longer than the source's statement_timeout and was cancelled (%s)", s.name, pgErr.Message)
	}
	if errors.As(err, &pgErr) && pgErr.Hint != "" {
		// The hint is where Postgres names the column a misspelled one
		// may have meant; pgx's message leaves it out.
		return fmt.Errorf("postgres source %s: %w (hint: %s)", s.name, err, pgErr.Hint)
	}
	var decodeErr *decodeError
	if errors.As(err, &decodeErr) || errors.As(err, &pgErr) {
		return fmt.Errorf("postgres source %s: %w", s.name, err)
	}
	return fmt.Errorf("postgres source %s: the database is unreachable: %w", s.name, err)
}

// query runs query and decodes every row into the columns' builders.
func (s *Source) query(ctx context.Context, mem memory.Allocator, query string, args []any, want *arrow.Schema) (arrow.RecordBatch, error) {
	rows, err := s.pool.Query(ctx, query, append([]any{binaryResults}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	cols := make([]column, 0, len(fds))
	defer func() {
		for _, c := range cols {
			c.b.Release()
		}
	}()
	types := rows.Conn().TypeMap()
	for _, fd := range fds {
		c, err := newColumn(mem, fd, want, types)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	for rows.Next() {
		for i, v := range rows.RawValues() {
			if v == nil {
				cols[i].b.AppendNull()
				continue
			}
			if err := cols[i].put(v); err != nil {
				return nil, &decodeError{column: cols[i].name, err: err}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.b.Type(), Nullable: true}
		arrs[i] = c.b.NewArray()
		defer arrs[i].Release()
	}
	n := int64(0)
	if len(arrs) > 0 {
		n = int64(arrs[0].Len())
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, n), nil
}

// restrictToKeys wraps a resolver's query so that it answers only the rows
// whose keyColumn is one of the keys bound as array parameter $n: one
// query for all of a request's keys, which Postgres pushes into the
// subquery (and its indexes). String keys compare as text, so that
// `id: str` over an integer column finds its rows as DuckDB's source does.
func restrictToKeys(sql string, schema *arrow.Schema, keyColumn, sqlType string, n int) string {
	col := "_r." + stores.QuoteIdent(keyColumn)
	if sqlType == "text" {
		col += "::text"
	}
	return stores.Restrict(sql, schema, col+" = ANY($"+strconv.Itoa(n)+"::"+sqlType+"[])")
}

// arrayType is the Postgres element type keys of Arrow type dt bind as.
func arrayType(dt arrow.DataType) string {
	switch dt.ID() {
	case arrow.INT64, arrow.INT32:
		return "int8"
	case arrow.FLOAT64:
		return "float8"
	case arrow.BOOL:
		return "bool"
	case arrow.TIMESTAMP:
		return "timestamptz"
	case arrow.DATE32:
		return "date"
	}
	return "text"
}
