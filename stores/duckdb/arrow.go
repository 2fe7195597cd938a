//go:build duckdb_arrow

package duckdb

import (
	"context"
	"database/sql/driver"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// query runs query through DuckDB's Arrow interface.
func (s *Source) query(ctx context.Context, mem memory.Allocator, query string, args []any, want *arrow.Schema) (arrow.RecordBatch, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var rec arrow.RecordBatch
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err := a.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rr.Release()
		rec, err = readAll(mem, rr, want)
		return err
	})
	return rec, err
}

// readAll copies the reader's chunks into one record allocated from mem,
// so that it outlives the connection and counts against the caller's
// allocator.
func readAll(mem memory.Allocator, rr array.RecordReader, want *arrow.Schema) (arrow.RecordBatch, error) {
	schema := rr.Schema()
	chunks := make([][]arrow.Array, schema.NumFields())
	defer func() {
		for _, cs := range chunks {
			releaseAll(cs)
		}
	}()
	for rr.Next() {
		for i, c := range rr.RecordBatch().Columns() {
			c.Retain()
			chunks[i] = append(chunks[i], c)
		}
	}
	if err := rr.Err(); err != nil {
		return nil, err
	}
	names := make([]string, schema.NumFields())
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() { releaseAll(cols) }()
	for i, f := range schema.Fields() {
		names[i] = f.Name
		col, err := concat(mem, f.Type, chunks[i])
		if err != nil {
			return nil, err
		}
		cols = append(cols, col)
	}
	return normalize(mem, names, cols, want)
}

// concat copies a column's chunks into one array allocated from mem.
func concat(mem memory.Allocator, dt arrow.DataType, chunks []arrow.Array) (arrow.Array, error) {
	if len(chunks) == 0 {
		return array.MakeArrayOfNull(mem, dt, 0), nil
	}
	return array.Concatenate(chunks, mem)
}

func releaseAll(arrs []arrow.Array) {
	for _, a := range arrs {
		a.Release()
	}
}
