//go:build !duckdb_arrow

package duckdb

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// query runs query through database/sql and scans its rows into Arrow
// builders: the path of builds without DuckDB's Arrow interface.
func (s *Source) query(ctx context.Context, mem memory.Allocator, query string, args []any, want *arrow.Schema) (arrow.RecordBatch, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanRows(mem, rows, want)
}
