//go:build duckdb_arrow

package relational

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/statement"
)

// duckDB is the embedded DuckDB the SQL over features runs in: in memory,
// with no access to files, the network or extensions, its configuration
// locked, so that a query can read nothing but the views it is given.
type duckDB struct {
	db *sql.DB
}

// duckConfig locks the database down before any query runs. Two of
// DuckDB's optimizers are off: it pushes a query's projection and filters
// into an Arrow stream scan and expects the stream to apply them, which a
// stream exported from Go (the scans') cannot — columns were read out of
// place (garbage, a crash) and conditions on computed features dropped
// (TestAgainstDuckDB's "filter on a computed feature"). DuckDB filters
// above the scan instead; the listing of entities gets the conditions it
// can use from fletch itself.
const duckConfig = "?enable_external_access=false&autoinstall_known_extensions=false&autoload_known_extensions=false" +
	"&allow_community_extensions=false&threads=1&memory_limit=1GB&disabled_optimizers=unused_columns%2Cfilter_pushdown&lock_configuration=true"

func openDuckDB() (*duckDB, error) {
	db, err := sql.Open("duckdb", duckConfig)
	if err != nil {
		return nil, fmt.Errorf("relational: open DuckDB: %w", err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("relational: open DuckDB: %w", err)
	}
	db.SetMaxIdleConns(4)
	return &duckDB{db: db}, nil
}

func (d *duckDB) close() error { return d.db.Close() }

// run registers views (name → stream) on a connection of its own, runs
// query over them and hands the result's batches to emit (nil: the query
// is only read for its schema; it runs over whatever the views hold). It
// returns the result's schema. With materialize, each view is copied into
// a table first: DuckDB (1.5) answers no rows for a window function with
// PARTITION BY straight over an Arrow stream.
func (d *duckDB) run(ctx context.Context, query string, views map[string]array.RecordReader, materialize bool, emit func(arrow.RecordBatch) error) (*arrow.Schema, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("relational: DuckDB connection: %w", err)
	}
	defer conn.Close()
	var schema *arrow.Schema
	err = conn.Raw(func(dc any) error {
		ar, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		exec := dc.(driver.ExecerContext)
		for name, rdr := range views {
			stream := name
			if materialize {
				stream = name + "_stream"
			}
			release, err := ar.RegisterView(rdr, stream)
			if err != nil {
				return fmt.Errorf("relational: registering %s: %w", name, err)
			}
			defer release()
			// A view names a stream that is released with the query:
			// none may outlive it on the pooled connection.
			defer exec.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+quote(stream), nil)
			if materialize {
				if _, err := exec.ExecContext(ctx, "CREATE TEMP TABLE "+quote(name)+" AS SELECT * FROM "+quote(stream), nil); err != nil {
					return queryError(err)
				}
				defer exec.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+quote(name), nil)
			}
		}
		rr, err := ar.QueryContext(ctx, query)
		if err != nil {
			return queryError(err)
		}
		defer rr.Release()
		schema = rr.Schema()
		for rr.Next() {
			if emit == nil {
				continue
			}
			if err := emit(rr.RecordBatch()); err != nil {
				return err
			}
		}
		if err := rr.Err(); err != nil {
			return queryError(err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return schema, nil
}

// queryError is DuckDB's error as the caller's: the SQL is theirs, so what
// DuckDB refuses they can fix.
func queryError(err error) error {
	if _, ok := err.(*statement.Error); ok {
		return err
	}
	return &statement.Error{Kind: statement.InvalidInput, Msg: "SQL over features: " + err.Error()}
}

func quote(name string) string { return `"` + name + `"` }
