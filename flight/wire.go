package flight

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// wireType is the type a column is sent as: strings as Utf8 (clients and BI
// drivers handle it everywhere, unlike views), dictionaries decoded,
// timestamps tz-aware UTC.
func wireType(dt arrow.DataType) arrow.DataType { return coerce.Plain(dt, true) }

func wireSchema(s *arrow.Schema) *arrow.Schema {
	fs := s.Fields()
	for i := range fs {
		fs[i].Type = wireType(fs[i].Type)
	}
	md := s.Metadata()
	return arrow.NewSchema(fs, &md)
}

// toWire converts a result to the wire schema (see wireType). It returns a
// new reference; the caller still releases rec.
func toWire(mem memory.Allocator, rec arrow.RecordBatch, schema *arrow.Schema) (arrow.RecordBatch, error) {
	out, err := coerce.Record(mem, rec, schema)
	if err != nil {
		return nil, fmt.Errorf("the plan's result: %w", err)
	}
	return out, nil
}

func releaseArrays(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

// rowsPerChunk is how many rows of rec make a batch of about maxBytes (at
// least one).
func rowsPerChunk(rec arrow.RecordBatch, maxBytes int64) int64 {
	n := rec.NumRows()
	var size int64
	for _, c := range rec.Columns() {
		size += dataSize(c.Data())
	}
	if size <= maxBytes || n <= 1 {
		return max(n, 1)
	}
	return max(1, n*maxBytes/size)
}

// dataSize is the size of the buffers of d and its children.
func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}
