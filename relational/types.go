package relational

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators/coerce"
)

// duckSchema is the schema a scan is handed to DuckDB in: plain types
// (coerce.Plain), every column nullable.
func duckSchema(s *arrow.Schema) *arrow.Schema {
	fs := s.Fields()
	for i := range fs {
		fs[i].Type = coerce.Plain(fs[i].Type, false)
		fs[i].Nullable = true
	}
	return arrow.NewSchema(fs, nil)
}

// toDuck is rec in schema's types (duckSchema of its own): DuckDB's Arrow
// scan reads no views or dictionaries. The caller releases both.
func toDuck(mem memory.Allocator, rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	out, err := coerce.Record(mem, rec, schema)
	if err != nil {
		return nil, fmt.Errorf("relational: %w", err)
	}
	return out, nil
}
