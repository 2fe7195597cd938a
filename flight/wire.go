package flight

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// wireType is the type a column is sent as: strings as Utf8 (clients and BI
// drivers handle it everywhere, unlike views), dictionaries decoded,
// timestamps tz-aware UTC (a naive timestamp is a UTC instant in fletch).
func wireType(dt arrow.DataType) arrow.DataType {
	switch t := dt.(type) {
	case *arrow.StringViewType:
		return arrow.BinaryTypes.String
	case *arrow.BinaryViewType:
		return arrow.BinaryTypes.Binary
	case *arrow.DictionaryType:
		return wireType(t.ValueType)
	case *arrow.TimestampType:
		if t.TimeZone == "" {
			return &arrow.TimestampType{Unit: t.Unit, TimeZone: "UTC"}
		}
	case *arrow.ListType:
		f := t.ElemField()
		f.Type = wireType(f.Type)
		return arrow.ListOfField(f)
	case *arrow.StructType:
		fs := t.Fields()
		for i := range fs {
			fs[i].Type = wireType(fs[i].Type)
		}
		return arrow.StructOf(fs...)
	}
	return dt
}

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
	if int(rec.NumCols()) != schema.NumFields() {
		return nil, fmt.Errorf("the plan returned %d columns for a schema of %d", rec.NumCols(), schema.NumFields())
	}
	cols := make([]arrow.Array, rec.NumCols())
	defer releaseArrays(cols)
	for i, c := range rec.Columns() {
		want := schema.Field(i).Type
		switch {
		case arrow.TypeEqual(c.DataType(), want):
			c.Retain()
			cols[i] = c
		case c.DataType().ID() == arrow.TIMESTAMP && want.ID() == arrow.TIMESTAMP &&
			c.DataType().(*arrow.TimestampType).Unit == want.(*arrow.TimestampType).Unit:
			// Only the zone differs: same values, new type.
			d := array.NewSliceData(c.Data(), 0, int64(c.Len()))
			cols[i] = array.MakeFromData(array.NewData(want, d.Len(), d.Buffers(), d.Children(), d.NullN(), d.Offset()))
			d.Release()
		default:
			out, err := coerce.Array(mem, c, want)
			if err != nil {
				return nil, fmt.Errorf("result column %q: %s does not convert to %s: %w", schema.Field(i).Name, c.DataType(), want, err)
			}
			cols[i] = out
		}
	}
	return array.NewRecordBatch(schema, cols, rec.NumRows()), nil
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
