//go:build !duckdb_arrow

package relational

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/statement"
)

// duckDB stands in for the embedded DuckDB in a build without the
// duckdb_arrow tag, which DuckDB's Arrow views need: SQL beyond lookups is
// refused there.
type duckDB struct{}

func openDuckDB() (*duckDB, error) { return &duckDB{}, nil }

func (d *duckDB) close() error { return nil }

func (d *duckDB) run(context.Context, string, map[string]array.RecordReader, bool, func(arrow.RecordBatch) error) (*arrow.Schema, error) {
	return nil, &statement.Error{Kind: statement.Unsupported, Msg: "SQL beyond feature lookups needs fletch built with the duckdb_arrow tag"}
}
