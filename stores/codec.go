package stores

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
	observed, err := ObservedAt(enc)
	if err != nil {
		return time.Time{}, err
	}
	var tags [8]byte // on the stack: decoding allocates nothing of its own
	want, err := appendTypeTag(tags[:0], b.Type())
	if err != nil {
		return time.Time{}, err
	}
	rest := enc[8:]
	if len(rest) < len(want) || string(rest[:len(want)]) != string(want) {
		return time.Time{}, ErrTypeChanged
	}
	d := decoder{buf: rest[len(want):]}
	d.value(b)
	if d.err != nil {
		return time.Time{}, d.err
	}
	return observed, nil
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
