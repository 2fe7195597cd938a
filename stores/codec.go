package stores

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
)

// The online stores' binary encoding of one cached feature value:
//
//	observed   8 bytes: microseconds since the Unix epoch, big-endian with
//	           the sign bit flipped, so that encoded values sort bytewise in
//	           the order of their observation times (DynamoDB compares
//	           binary attributes bytewise in a write's condition: a write
//	           never replaces a newer value without reading it first)
//	type       the value's type tags: one byte per level (list tags, then
//	           the element's tag), so a value cached under another type
//	           is recognised and never misread
//	value      a null byte (0 null, 1 present), then for a present value:
//	           int64/timestamp/date32 as a zig-zag varint, float64 as 8
//	           bytes, bool as one byte, utf8 as a uvarint length and the
//	           bytes, a list as a uvarint count and its elements' values
//
// The same bytes go to every store (memory, Redis, DynamoDB).
const (
	tagInt64 byte = iota + 1
	tagFloat64
	tagString
	tagBool
	tagTimestamp
	tagDate32
	tagList
)

// ErrTypeChanged is returned by DecodeValue for a value encoded under
// another type than asked for.
var ErrTypeChanged = errors.New("cached value has another type")

func appendTypeTag(buf []byte, dt arrow.DataType) ([]byte, error) {
	switch dt.ID() {
	case arrow.INT64:
		return append(buf, tagInt64), nil
	case arrow.FLOAT64:
		return append(buf, tagFloat64), nil
	case arrow.STRING:
		return append(buf, tagString), nil
	case arrow.BOOL:
		return append(buf, tagBool), nil
	case arrow.TIMESTAMP:
		if dt.(*arrow.TimestampType).Unit == arrow.Microsecond {
			return append(buf, tagTimestamp), nil
		}
	case arrow.DATE32:
		return append(buf, tagDate32), nil
	case arrow.LIST:
		return appendTypeTag(append(buf, tagList), dt.(*arrow.ListType).Elem())
	}
	return nil, fmt.Errorf("values of type %s cannot be cached", dt)
}

// AppendValue appends the encoding of a[i], observed at observed, to buf.
func AppendValue(buf []byte, a arrow.Array, i int, observed time.Time) ([]byte, error) {
	buf = AppendObserved(buf, observed)
	buf, err := appendTypeTag(buf, a.DataType())
	if err != nil {
		return nil, err
	}
	return appendValue(buf, a, i), nil
}

func appendValue(buf []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	switch a := a.(type) {
	case *array.Int64:
		return binary.AppendVarint(buf, a.Value(i))
	case *array.Float64:
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.Value(i)))
	case *array.String:
		s := a.Value(i)
		return append(binary.AppendUvarint(buf, uint64(len(s))), s...)
	case *array.Boolean:
		if a.Value(i) {
			return append(buf, 1)
		}
		return append(buf, 0)
	case *array.Timestamp:
		return binary.AppendVarint(buf, int64(a.Value(i)))
	case *array.Date32:
		return binary.AppendVarint(buf, int64(a.Value(i)))
	case *array.List:
		start, end := a.ValueOffsets(i)
		buf = binary.AppendUvarint(buf, uint64(end-start))
		for j := start; j < end; j++ {
			buf = appendValue(buf, a.ListValues(), int(j))
		}
		return buf
	}
	panic("unreachable: appendTypeTag accepted " + a.DataType().String())
}

// AppendObserved appends the 8-byte prefix that encodes observed; every
// value observed at or before that time encodes to bytes that sort before
// AppendObserved(nil, observed + 1µs).
func AppendObserved(buf []byte, observed time.Time) []byte {
	return binary.BigEndian.AppendUint64(buf, uint64(observed.UnixMicro())^signBit)
}

const signBit = 1 << 63

// ObservedAt returns the observation time of an encoded value.
func ObservedAt(enc []byte) (time.Time, error) {
	if len(enc) < 8 {
		return time.Time{}, errTruncated
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(enc) ^ signBit)).UTC(), nil
}

// DecodeValue appends the value encoded in enc to b and returns when it
// was observed. It returns ErrTypeChanged, appending nothing, when the
// value was encoded under another type than b's.
func DecodeValue(enc []byte, b array.Builder) (time.Time, error) {
	d, err := NewColumnDecoder(b)
	if err != nil {
		return time.Time{}, err
	}
	at, err := d.Decode(enc)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(int64(at)).UTC(), nil
}

// ColumnDecoder appends encoded values to one builder: DecodeValue with
// the type's work done once, for the many values of one column.
type ColumnDecoder struct {
	b    array.Builder
	tags []byte
}

// NewColumnDecoder returns a decoder into b.
func NewColumnDecoder(b array.Builder) (*ColumnDecoder, error) {
	tags, err := appendTypeTag(nil, b.Type())
	if err != nil {
		return nil, err
	}
	return &ColumnDecoder{b: b, tags: tags}, nil
}

// Decode appends the value encoded in enc to the builder and returns when
// it was observed, in microseconds since the epoch (a timestamp[us]). It
// returns ErrTypeChanged, appending nothing, when the value was encoded
// under another type.
func (c *ColumnDecoder) Decode(enc []byte) (arrow.Timestamp, error) {
	if len(enc) < 8 {
		return 0, errTruncated
	}
	rest := enc[8:]
	if len(rest) < len(c.tags) || string(rest[:len(c.tags)]) != string(c.tags) {
		return 0, ErrTypeChanged
	}
	d := decoder{buf: rest[len(c.tags):]}
	d.value(c.b)
	if d.err != nil {
		return 0, d.err
	}
	return arrow.Timestamp(binary.BigEndian.Uint64(enc) ^ signBit), nil
}

type decoder struct {
	buf []byte
	err error
}

var errTruncated = errors.New("cached value: truncated")

func (d *decoder) byte() byte {
	if len(d.buf) == 0 {
		d.err = errTruncated
		return 0
	}
	c := d.buf[0]
	d.buf = d.buf[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 || v > uint64(len(d.buf)) { // a count or length never exceeds the bytes left
		d.err = errTruncated
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if len(d.buf) < n {
		d.err = errTruncated
		return nil
	}
	p := d.buf[:n]
	d.buf = d.buf[n:]
	return p
}

// value appends one encoded value to b; the type tags were checked.
func (d *decoder) value(b array.Builder) {
	if d.byte() == 0 || d.err != nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(d.varint())
	case *array.Float64Builder:
		p := d.bytes(8)
		if d.err == nil {
			b.Append(math.Float64frombits(binary.LittleEndian.Uint64(p)))
		}
	case *array.StringBuilder:
		n := d.uvarint()
		b.BinaryBuilder.Append(d.bytes(int(n)))
	case *array.BooleanBuilder:
		b.Append(d.byte() == 1)
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(d.varint()))
	case *array.Date32Builder:
		b.Append(arrow.Date32(d.varint()))
	case *array.ListBuilder:
		n := d.uvarint()
		b.Append(true)
		for range n {
			if d.err != nil {
				return
			}
			d.value(b.ValueBuilder())
		}
	}
}

// EntityKey is the store key of keys[i]: "i:<decimal>" for an int64 key,
// "s:<string>" for a utf8 key, so that keys of different types never
// collide. ok is false for a null key.
func EntityKey(keys arrow.Array, i int) (key string, ok bool, err error) {
	if keys.IsNull(i) {
		return "", false, nil
	}
	switch k := keys.(type) {
	case *array.Int64:
		return "i:" + strconv.FormatInt(k.Value(i), 10), true, nil
	case *array.String:
		return "s:" + k.Value(i), true, nil
	}
	return "", false, fmt.Errorf("entity keys must be int64 or utf8, not %s", keys.DataType())
}

// ValuesBuilder assembles the OnlineValues of a Get from encoded values,
// row by row: what every store does once it has the bytes.
type ValuesBuilder struct {
	mem      memory.Allocator
	schema   *arrow.Schema
	values   []array.Builder
	decoders []*ColumnDecoder
	// observed[i*rows+r] is when feature i of row r was observed, where
	// stored[i*rows+r]; kept as plain slices until Finish, which builds
	// one array per distinct column.
	observed []arrow.Timestamp
	stored   []bool
	filled   []int // rows appended per feature
	rows     int
}

// NewValuesBuilder returns a builder of the answer for want, for rows
// rows: every feature is appended rows times. The caller releases it.
func NewValuesBuilder(mem memory.Allocator, want *arrow.Schema, rows int) (*ValuesBuilder, error) {
	n := want.NumFields()
	b := &ValuesBuilder{
		mem: mem, schema: want, rows: rows,
		values: make([]array.Builder, 0, n), decoders: make([]*ColumnDecoder, n),
		observed: make([]arrow.Timestamp, n*rows), stored: make([]bool, n*rows), filled: make([]int, n),
	}
	for i, f := range want.Fields() {
		v := array.NewBuilder(mem, f.Type)
		b.values = append(b.values, v)
		v.Reserve(rows)
		d, err := NewColumnDecoder(v)
		if err != nil {
			b.Release()
			return nil, fmt.Errorf("feature %s: %w", f.Name, err)
		}
		b.decoders[i] = d
	}
	return b, nil
}

// Append appends the value of feature i for the next row: enc as
// AppendValue encoded it, or nil where nothing is stored. A value of
// another type than asked for is appended as missing.
func (b *ValuesBuilder) Append(i int, enc []byte) error {
	cell := i*b.rows + b.filled[i]
	b.filled[i]++
	if enc != nil {
		at, err := b.decoders[i].Decode(enc)
		if err == nil {
			b.observed[cell], b.stored[cell] = at, true
			return nil
		}
		if !errors.Is(err, ErrTypeChanged) {
			return fmt.Errorf("feature %s: %w", b.schema.Field(i).Name, err)
		}
	}
	b.values[i].AppendNull()
	return nil
}

// Finish returns the appended values. Features whose observation times are
// all the same (features written together) share one Observed array,
// retained once per feature. The caller releases them.
func (b *ValuesBuilder) Finish() *OnlineValues {
	n := len(b.values)
	cols := make([]arrow.Array, n)
	out := &OnlineValues{Observed: make([]arrow.Array, n)}
	for i := range n {
		cols[i] = b.values[i].NewArray()
		lo, hi := i*b.rows, (i+1)*b.rows
		if i > 0 && slices.Equal(b.stored[lo:hi], b.stored[lo-b.rows:lo]) && slices.Equal(b.observed[lo:hi], b.observed[lo-b.rows:lo]) {
			out.Observed[i] = out.Observed[i-1]
			out.Observed[i].Retain()
			continue
		}
		ob := array.NewTimestampBuilder(b.mem, features.TimestampType)
		ob.AppendValues(b.observed[lo:hi], b.stored[lo:hi])
		out.Observed[i] = ob.NewArray()
		ob.Release()
	}
	out.Values = array.NewRecordBatch(b.schema, cols, int64(b.rows))
	for _, c := range cols {
		c.Release()
	}
	return out
}

// Release releases the builders.
func (b *ValuesBuilder) Release() {
	for _, v := range b.values {
		v.Release()
	}
}
