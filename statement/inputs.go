package statement

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// LiteralInputs builds the input rows a statement without parameters spells out in
// WHERE. The caller releases the record.
func (s *Statement) LiteralInputs(mem memory.Allocator) (arrow.RecordBatch, error) {
	if len(s.Params) > 0 {
		return nil, Errorf(InvalidInput, s.Params[0].Pos, "the query has %d parameter(s): prepare it and bind a batch of parameter rows", len(s.Params))
	}
	schema := arrow.NewSchema(s.Inputs, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, row := range s.rows {
		for i, c := range row {
			appendValue(b.Field(i), c.value)
		}
	}
	return b.NewRecordBatch(), nil
}

// appendValue appends one converted literal (see keyValue) to b.
func appendValue(b array.Builder, v any) {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.TimestampBuilder:
		b.Append(v.(arrow.Timestamp))
	case *array.Date32Builder:
		b.Append(v.(arrow.Date32))
	default:
		panic(fmt.Sprintf("statement: no builder for key value %T", v)) // keyValue only makes the types above
	}
}

// CheckParams reports whether a parameter batch of this schema can be bound:
// one column per parameter, in order, of the parameter's type or one that
// converts to it without loss of meaning (any integer width for an int key,
// an integer for a str key, any timestamp unit for __as_of__, ...).
func (s *Statement) CheckParams(schema *arrow.Schema) error {
	if len(s.Params) == 0 {
		return Errorf(InvalidInput, expr.Pos{}, "the query has no parameters; execute it without binding any")
	}
	if schema.NumFields() != len(s.Params) {
		return Errorf(InvalidInput, expr.Pos{}, "the parameter batch has %d column(s), the query has %d parameter(s): %s", schema.NumFields(), len(s.Params), s.ParamSchema())
	}
	for i, p := range s.Params {
		got := schema.Field(i)
		if !coerce.Convertible(got.Type, p.Type) {
			return Errorf(InvalidInput, p.Pos, "parameter %d (field %q, for %s) is %s; expected %s", i+1, got.Name, p.Column, got.Type, p.Type)
		}
	}
	return nil
}

// BindInputs builds the input rows for one batch of parameter rows: input
// row i is parameter row i, with the literal columns of WHERE repeated. The
// caller releases the record.
func (s *Statement) BindInputs(ctx context.Context, mem memory.Allocator, params arrow.RecordBatch) (arrow.RecordBatch, error) {
	if err := s.CheckParams(params.Schema()); err != nil {
		return nil, err
	}
	n := int(params.NumRows())
	cols := make([]arrow.Array, len(s.Inputs))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	row := s.rows[0]
	for i, f := range s.Inputs {
		c := row[i]
		if c.param >= 0 {
			arr, err := coerce.Array(mem, params.Column(c.param), f.Type)
			if err != nil {
				p := s.Params[c.param]
				return nil, Errorf(InvalidInput, p.Pos, "parameter %d (field %q, for %s): %v", c.param+1, params.Schema().Field(c.param).Name, p.Column, err)
			}
			cols[i] = arr
			continue
		}
		b := array.NewBuilder(mem, f.Type)
		b.Reserve(n)
		for range n {
			appendValue(b, c.value)
		}
		cols[i] = b.NewArray()
		b.Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(s.Inputs, nil), cols, int64(n)), nil
}

// WithValues is s with its parameters replaced by the literals vals (in
// parameter order), converted as literals of a query are, and text as its
// query text. It is how a front end fills a statement it read once from a
// text whose values were taken out (the SQL front end's templates) with each text's own
// values. s has one input row and a parameter per value; the result shares
// s's plan key.
func (s *Statement) WithValues(text string, vals []Value) (*Statement, error) {
	if len(s.rows) != 1 || len(s.Params) != len(vals) {
		return nil, fmt.Errorf("statement: %d values for a statement with %d parameters and %d rows", len(vals), len(s.Params), len(s.rows))
	}
	row := make([]cell, len(s.rows[0]))
	for i, c := range s.rows[0] {
		if c.param < 0 {
			row[i] = c
			continue
		}
		v, err := keyValue(vals[c.param], s.Inputs[i].Name, s.Inputs[i].Type)
		if err != nil {
			return nil, err
		}
		row[i] = cell{param: -1, value: v}
	}
	out := *s
	out.Text, out.Params, out.rows = text, nil, [][]cell{row}
	return &out, nil
}
