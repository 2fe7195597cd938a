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
// The same bytes go to every store: whole to memory and DynamoDB, without
// the time (AppendTypedValue) to Redis, which keeps one time per group of
// an entity's values.
const (
	tagInt64 byte = iota + 1
	tagFloat64
	tagString
	tagBool
	tagTimestamp
	tagDate32
	tagList
)

// typeTag is dt's own tag, and for a list its element type (nil for any
// other type).
func typeTag(dt arrow.DataType) (tag byte, elem arrow.DataType, err error) {
	switch dt.ID() {
	case arrow.INT64:
		return tagInt64, nil, nil
	case arrow.FLOAT64:
		return tagFloat64, nil, nil
	case arrow.STRING:
		return tagString, nil, nil
	case arrow.BOOL:
		return tagBool, nil, nil
	case arrow.TIMESTAMP:
		if dt.(*arrow.TimestampType).Unit == arrow.Microsecond {
			return tagTimestamp, nil, nil
		}
	case arrow.DATE32:
		return tagDate32, nil, nil
	case arrow.LIST:
		return tagList, dt.(*arrow.ListType).Elem(), nil
	}
	return 0, nil, fmt.Errorf("values of type %s cannot be cached", dt)
}

func appendTypeTag(buf []byte, dt arrow.DataType) ([]byte, error) {
	for dt != nil {
		tag, elem, err := typeTag(dt)
		if err != nil {
			return nil, err
		}
		buf, dt = append(buf, tag), elem
	}
	return buf, nil
}

// AppendValue appends the encoding of a[i], observed at observed, to buf.
func AppendValue(buf []byte, a arrow.Array, i int, observed time.Time) ([]byte, error) {
	return AppendTypedValue(AppendObserved(buf, observed), a, i)
}

// AppendTypedValue appends the encoding of a[i] without its observation
// time (the type tags and the value), for a store that keeps one time for
// several values (Redis groups an entity's values by time).
func AppendTypedValue(buf []byte, a arrow.Array, i int) ([]byte, error) {
	buf, err := appendTypeTag(buf, a.DataType())
	if err != nil {
		return nil, err
	}
	return appendValue(buf, a, i), nil
}

// AppendUntypedValue appends the encoding of a[i] without its time nor
// its type tags, for a store that keeps its values' types apart (Redis and
// memory keep a directory of (name, type) slots per class).
func AppendUntypedValue(buf []byte, a arrow.Array, i int) ([]byte, error) {
	if err := CacheableType(a.DataType()); err != nil {
		return nil, err
	}
	return appendValue(buf, a, i), nil
}

// CacheableType returns an error unless values of type dt can be stored.
func CacheableType(dt arrow.DataType) error {
	_, err := appendTypeTag(nil, dt)
	return err
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
	at, err := ObservedTimestamp(enc)
	return at.ToTime(arrow.Microsecond), err
}

// ObservedTimestamp returns the observation time that starts enc (an
// encoded value, or AppendObserved's 8 bytes), as a timestamp[us].
func ObservedTimestamp(enc []byte) (arrow.Timestamp, error) {
	if len(enc) < 8 {
		return 0, errTruncated
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
	b, ok, err := AppendEntityKey(nil, keys, i)
	return string(b), ok, err
}

// AppendEntityKey appends EntityKey(keys, i) to buf, for a store that
// builds all of a request's keys in one buffer; buf is unchanged for a
// null key (ok false).
func AppendEntityKey(buf []byte, keys arrow.Array, i int) (_ []byte, ok bool, err error) {
	switch k := keys.(type) {
	case *array.Int64:
		if k.IsNull(i) {
			return buf, false, nil
		}
		return strconv.AppendInt(append(buf, "i:"...), k.Value(i), 10), true, nil
	case *array.String:
		if k.IsNull(i) {
			return buf, false, nil
		}
		return append(append(buf, "s:"...), k.Value(i)...), true, nil
	}
	return buf, false, CheckKeys(keys)
}

// CheckKeys returns an error unless keys can be entity keys (int64 or
// utf8), for a store to refuse a request before any work.
func CheckKeys(keys arrow.Array) error {
	switch keys.DataType().ID() {
	case arrow.INT64, arrow.STRING:
		return nil
	}
	return fmt.Errorf("entity keys must be int64 or utf8, not %s", keys.DataType())
}
