package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/fletch-engine/fletch/features"
)

// A column decodes one result column's binary values into a builder of
// the column's Arrow type.
type column struct {
	name string
	b    array.Builder
	// put appends one non-null value in Postgres's binary format.
	put func(v []byte) error
}

// decodeError is a value the column's type cannot hold: the data's fault,
// not the connection's.
type decodeError struct {
	column string
	err    error
}

func (e *decodeError) Error() string { return fmt.Sprintf("column %q: %v", e.column, e.err) }
func (e *decodeError) Unwrap() error { return e.err }

// arrayElem maps the array types fletch reads to their element types.
var arrayElem = map[uint32]uint32{
	pgtype.Int2ArrayOID:        pgtype.Int2OID,
	pgtype.Int4ArrayOID:        pgtype.Int4OID,
	pgtype.Int8ArrayOID:        pgtype.Int8OID,
	pgtype.Float4ArrayOID:      pgtype.Float4OID,
	pgtype.Float8ArrayOID:      pgtype.Float8OID,
	pgtype.NumericArrayOID:     pgtype.NumericOID,
	pgtype.TextArrayOID:        pgtype.TextOID,
	pgtype.VarcharArrayOID:     pgtype.VarcharOID,
	pgtype.BPCharArrayOID:      pgtype.BPCharOID,
	pgtype.NameArrayOID:        pgtype.NameOID,
	pgtype.BoolArrayOID:        pgtype.BoolOID,
	pgtype.TimestampArrayOID:   pgtype.TimestampOID,
	pgtype.TimestamptzArrayOID: pgtype.TimestamptzOID,
	pgtype.DateArrayOID:        pgtype.DateOID,
	pgtype.JSONArrayOID:        pgtype.JSONOID,
	pgtype.JSONBArrayOID:       pgtype.JSONBOID,
}

// binaryResults asks for every type fletch reads in the binary format
// (json's binary format is its text).
var binaryResults = func() pgx.QueryResultFormatsByOID {
	m := pgx.QueryResultFormatsByOID{}
	for arr, elem := range arrayElem {
		m[arr], m[elem] = pgx.BinaryFormatCode, pgx.BinaryFormatCode
	}
	return m
}()

// naturalType is the fletch type (DESIGN §4) of a Postgres type: integers
// int64, floats float64, numeric(p, 0) int64 and other numerics float64,
// strings and json utf8, timestamps timestamp[us, UTC] (a timestamp
// without zone read as UTC), date date32, arrays lists. nil: none.
func naturalType(oid uint32, typmod int32) arrow.DataType {
	if elem, ok := arrayElem[oid]; ok {
		return arrow.ListOf(naturalType(elem, typmod))
	}
	switch oid {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return arrow.PrimitiveTypes.Int64
	case pgtype.Float4OID, pgtype.Float8OID:
		return arrow.PrimitiveTypes.Float64
	case pgtype.NumericOID:
		// typmod is ((precision << 16) | scale) + 4, or -1 when the
		// numeric is unconstrained, as sum() and avg() answer.
		if typmod >= 4 && (typmod-4)&0xffff == 0 {
			return arrow.PrimitiveTypes.Int64
		}
		return arrow.PrimitiveTypes.Float64
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID, pgtype.JSONBOID:
		return arrow.BinaryTypes.String
	case pgtype.BoolOID:
		return arrow.FixedWidthTypes.Boolean
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return features.TimestampType
	case pgtype.DateOID:
		return arrow.FixedWidthTypes.Date32
	}
	return nil
}

// newColumn prepares the builder of result column fd: the type want gives
// it when want names it, else its natural type.
func newColumn(mem memory.Allocator, fd pgconn.FieldDescription, want *arrow.Schema, types *pgtype.Map) (column, error) {
	typeName := func() string {
		if t, ok := types.TypeForOID(fd.DataTypeOID); ok {
			return t.Name
		}
		return fmt.Sprintf("with OID %d", fd.DataTypeOID)
	}
	var to arrow.DataType
	if want != nil {
		if idx := want.FieldIndices(fd.Name); len(idx) > 0 {
			to = want.Field(idx[0]).Type
		}
	}
	if to == nil {
		if to = naturalType(fd.DataTypeOID, fd.TypeModifier); to == nil {
			return column{}, fmt.Errorf("column %q has type %s, which has no fletch feature type; cast it in the resolver's SQL or leave it out", fd.Name, typeName())
		}
	}
	if fd.Format != pgx.BinaryFormatCode {
		return column{}, fmt.Errorf("column %q has type %s, which fletch cannot read; cast it in the resolver's SQL or leave it out", fd.Name, typeName())
	}
	b := array.NewBuilder(mem, to)
	put := putter(b, fd.DataTypeOID)
	if put == nil {
		b.Release()
		return column{}, fmt.Errorf("column %q: cannot convert Postgres %s to %s; cast it in the resolver's SQL", fd.Name, typeName(), to)
	}
	return column{name: fd.Name, b: b, put: put}, nil
}

var errMalformed = errors.New("malformed binary value")

// Postgres counts time from 2000-01-01, Arrow from 1970-01-01.
const (
	epochMicros = 946684800 * 1_000_000
	epochDays   = 10957
)

// putter returns the function appending a binary value of Postgres type
// oid to b, converting it to b's type; nil when there is no conversion.
func putter(b array.Builder, oid uint32) func([]byte) error {
	if elem, ok := arrayElem[oid]; ok {
		lb, ok := b.(*array.ListBuilder)
		if !ok {
			return nil
		}
		put := putter(lb.ValueBuilder(), elem)
		if put == nil {
			return nil
		}
		return listPutter(lb, elem, put)
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		if get := intGetter(oid); get != nil {
			return func(v []byte) error {
				x, err := get(v)
				b.Append(x)
				return err
			}
		}
		switch oid {
		case pgtype.NumericOID:
			return func(v []byte) error {
				n, err := parseNumeric(v)
				if err != nil {
					return err
				}
				x, err := n.int64()
				b.Append(x)
				return err
			}
		case pgtype.Float4OID, pgtype.Float8OID:
			get := floatGetter(oid)
			return func(v []byte) error {
				f, err := get(v)
				if err != nil {
					return err
				}
				if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
					return fmt.Errorf("%v is not a whole number that fits in int64", f)
				}
				b.Append(int64(f))
				return nil
			}
		}
	case *array.Float64Builder:
		if get := intGetter(oid); get != nil {
			return func(v []byte) error {
				x, err := get(v)
				b.Append(float64(x))
				return err
			}
		}
		if get := floatGetter(oid); get != nil {
			return func(v []byte) error {
				f, err := get(v)
				b.Append(f)
				return err
			}
		}
		if oid == pgtype.NumericOID {
			var scratch []byte
			return func(v []byte) error {
				n, err := parseNumeric(v)
				if err != nil {
					return err
				}
				var f float64
				f, scratch = n.float64(scratch)
				b.Append(f)
				return nil
			}
		}
	case *array.StringBuilder:
		switch oid {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.NameOID, pgtype.JSONOID:
			return func(v []byte) error {
				b.BinaryBuilder.Append(v)
				return nil
			}
		case pgtype.BPCharOID:
			// char(n) pads with spaces that Postgres ignores, and drops
			// when it converts to text.
			return func(v []byte) error {
				for len(v) > 0 && v[len(v)-1] == ' ' {
					v = v[:len(v)-1]
				}
				b.BinaryBuilder.Append(v)
				return nil
			}
		case pgtype.JSONBOID:
			return func(v []byte) error {
				if len(v) == 0 || v[0] != 1 {
					return errors.New("jsonb value in an unknown binary version")
				}
				b.BinaryBuilder.Append(v[1:])
				return nil
			}
		case pgtype.NumericOID:
			var scratch []byte
			return func(v []byte) error {
				n, err := parseNumeric(v)
				if err != nil {
					return err
				}
				scratch = n.appendText(scratch[:0])
				b.BinaryBuilder.Append(scratch)
				return nil
			}
		}
		// Integer keys stored as numbers, for an `id: str` feature.
		if get := intGetter(oid); get != nil {
			var scratch []byte
			return func(v []byte) error {
				x, err := get(v)
				scratch = strconv.AppendInt(scratch[:0], x, 10)
				b.BinaryBuilder.Append(scratch)
				return err
			}
		}
	case *array.BooleanBuilder:
		if oid == pgtype.BoolOID {
			return func(v []byte) error {
				if len(v) != 1 {
					return errMalformed
				}
				b.Append(v[0] != 0)
				return nil
			}
		}
	case *array.TimestampBuilder:
		if b.Type().(*arrow.TimestampType).Unit != arrow.Microsecond {
			return nil
		}
		switch oid {
		case pgtype.TimestampOID, pgtype.TimestamptzOID:
			return func(v []byte) error {
				if len(v) != 8 {
					return errMalformed
				}
				b.Append(arrow.Timestamp(micros(int64(binary.BigEndian.Uint64(v)))))
				return nil
			}
		case pgtype.DateOID:
			return func(v []byte) error {
				d, err := date(v)
				switch d {
				case math.MaxInt32:
					b.Append(math.MaxInt64)
				case math.MinInt32:
					b.Append(math.MinInt64)
				default:
					b.Append(arrow.Timestamp(int64(d) * 86400 * 1_000_000))
				}
				return err
			}
		}
	case *array.Date32Builder:
		if oid == pgtype.DateOID {
			return func(v []byte) error {
				d, err := date(v)
				b.Append(arrow.Date32(d))
				return err
			}
		}
	}
	return nil
}

// micros moves a Postgres timestamp to Arrow's epoch. ±infinity (the
// extreme int64s) stay the extreme int64s, as DuckDB represents them.
func micros(pg int64) int64 {
	if pg == math.MaxInt64 || pg == math.MinInt64 {
		return pg
	}
	return pg + epochMicros
}

// date is a Postgres date as days since 1970; ±infinity (the extreme
// int32s) stay the extreme int32s.
func date(v []byte) (int32, error) {
	if len(v) != 4 {
		return 0, errMalformed
	}
	d := int32(binary.BigEndian.Uint32(v))
	if d == math.MaxInt32 || d == math.MinInt32 {
		return d, nil
	}
	return d + epochDays, nil
}

func intGetter(oid uint32) func([]byte) (int64, error) {
	switch oid {
	case pgtype.Int2OID:
		return func(v []byte) (int64, error) {
			if len(v) != 2 {
				return 0, errMalformed
			}
			return int64(int16(binary.BigEndian.Uint16(v))), nil
		}
	case pgtype.Int4OID:
		return func(v []byte) (int64, error) {
			if len(v) != 4 {
				return 0, errMalformed
			}
			return int64(int32(binary.BigEndian.Uint32(v))), nil
		}
	case pgtype.Int8OID:
		return func(v []byte) (int64, error) {
			if len(v) != 8 {
				return 0, errMalformed
			}
			return int64(binary.BigEndian.Uint64(v)), nil
		}
	}
	return nil
}

func floatGetter(oid uint32) func([]byte) (float64, error) {
	switch oid {
	case pgtype.Float4OID:
		return func(v []byte) (float64, error) {
			if len(v) != 4 {
				return 0, errMalformed
			}
			return float64(math.Float32frombits(binary.BigEndian.Uint32(v))), nil
		}
	case pgtype.Float8OID:
		return func(v []byte) (float64, error) {
			if len(v) != 8 {
				return 0, errMalformed
			}
			return math.Float64frombits(binary.BigEndian.Uint64(v)), nil
		}
	}
	return nil
}

// listPutter appends a one-dimensional Postgres array of elem values as
// one list.
func listPutter(lb *array.ListBuilder, elem uint32, put func([]byte) error) func([]byte) error {
	vb := lb.ValueBuilder()
	return func(v []byte) error {
		// ndim, has-nulls flag, element type, then (length, lower bound)
		// per dimension, then each element as its length (-1: null) and
		// its bytes.
		if len(v) < 12 {
			return errMalformed
		}
		ndim := binary.BigEndian.Uint32(v)
		if ndim == 0 {
			lb.Append(true)
			return nil
		}
		if ndim != 1 {
			return fmt.Errorf("a %d-dimensional array; fletch reads one-dimensional arrays (flatten it in the resolver's SQL)", ndim)
		}
		if binary.BigEndian.Uint32(v[8:]) != elem || len(v) < 20 {
			return errMalformed
		}
		n := int(int32(binary.BigEndian.Uint32(v[12:])))
		p := v[20:]
		lb.Append(true)
		for range n {
			if len(p) < 4 {
				return errMalformed
			}
			l := int(int32(binary.BigEndian.Uint32(p)))
			p = p[4:]
			if l < 0 {
				vb.AppendNull()
				continue
			}
			if len(p) < l {
				return errMalformed
			}
			if err := put(p[:l]); err != nil {
				return err
			}
			p = p[l:]
		}
		return nil
	}
}

// numeric is a Postgres numeric in its binary form: base-10000 digits,
// the power of 10000 of the first, a sign and the decimal digits shown.
type numeric struct {
	digits  []byte // big-endian int16s
	weight  int
	sign    uint16
	dscale  int
	special string // "NaN", "Infinity", "-Infinity" or ""
}

func parseNumeric(v []byte) (numeric, error) {
	if len(v) < 8 {
		return numeric{}, errMalformed
	}
	nd := int(binary.BigEndian.Uint16(v))
	n := numeric{
		weight: int(int16(binary.BigEndian.Uint16(v[2:]))),
		sign:   binary.BigEndian.Uint16(v[4:]),
		dscale: int(binary.BigEndian.Uint16(v[6:])),
		digits: v[8:],
	}
	if len(n.digits) != 2*nd {
		return numeric{}, errMalformed
	}
	switch n.sign {
	case 0x0000, 0x4000:
	case 0xC000:
		n.special = "NaN"
	case 0xD000:
		n.special = "Infinity"
	case 0xF000:
		n.special = "-Infinity"
	default:
		return numeric{}, errMalformed
	}
	return n, nil
}

// digit is base-10000 digit i, 0 beyond the stored ones.
func (n numeric) digit(i int) int {
	if i < 0 || 2*i >= len(n.digits) {
		return 0
	}
	return int(binary.BigEndian.Uint16(n.digits[2*i:]))
}

// appendText appends n as Postgres prints it.
func (n numeric) appendText(dst []byte) []byte {
	if n.special != "" {
		return append(dst, n.special...)
	}
	if n.sign == 0x4000 {
		dst = append(dst, '-')
	}
	if n.weight < 0 {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendInt(dst, int64(n.digit(0)), 10)
		for i := 1; i <= n.weight; i++ {
			dst = appendGroup(dst, n.digit(i))
		}
	}
	if n.dscale > 0 {
		dst = append(dst, '.')
		start := len(dst)
		for i := n.weight + 1; len(dst)-start < n.dscale; i++ {
			dst = appendGroup(dst, n.digit(i))
		}
		dst = dst[:start+n.dscale]
	}
	return dst
}

// appendGroup appends a base-10000 digit as four decimal digits.
func appendGroup(dst []byte, d int) []byte {
	return append(dst, byte('0'+d/1000), byte('0'+d/100%10), byte('0'+d/10%10), byte('0'+d%10))
}

// float64 is n rounded to the nearest float64, as Postgres's float8(n)
// does: through its text.
func (n numeric) float64(scratch []byte) (float64, []byte) {
	scratch = n.appendText(scratch[:0])
	f, _ := strconv.ParseFloat(string(scratch), 64) // ±Inf on overflow, as Postgres
	return f, scratch
}

func (n numeric) int64() (int64, error) {
	if n.special != "" {
		return 0, fmt.Errorf("numeric %s is not a whole number", n.special)
	}
	var acc uint64
	for i := 0; i <= n.weight || 2*i < len(n.digits); i++ {
		d := n.digit(i)
		if i > n.weight {
			if d != 0 {
				return 0, fmt.Errorf("numeric %s is not a whole number", n.appendText(nil))
			}
			continue
		}
		if acc > (math.MaxUint64-uint64(d))/10000 {
			return 0, fmt.Errorf("numeric %s does not fit in int64", n.appendText(nil))
		}
		acc = acc*10000 + uint64(d)
	}
	if n.sign == 0x4000 {
		if acc > 1<<63 {
			return 0, fmt.Errorf("numeric %s does not fit in int64", n.appendText(nil))
		}
		return -int64(acc), nil
	}
	if acc > math.MaxInt64 {
		return 0, fmt.Errorf("numeric %s does not fit in int64", n.appendText(nil))
	}
	return int64(acc), nil
}
