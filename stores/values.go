package stores

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
)

// ValuesBuilder assembles the OnlineValues of a Get from encoded values, as
// a store finds them: row after row, a row's features in any order, a
// feature nothing is stored for simply not put.
//
// It is on the path of every cached answer, so it does per value only what
// it must: fixed-width values (int64, float64, bool, timestamp, date32) are
// decoded in place into one buffer shared by all their columns, sized once;
// observation times are kept per row (the time of the row's first value),
// with the few values that differ from their row's time (another time, or
// nothing stored beside values of the row that are) noted apart. Features
// with no such exception share one Observed array.
type ValuesBuilder struct {
	mem    memory.Allocator
	schema *arrow.Schema
	rows   int
	cols   []valueColumn
	// fixed holds the fixed-width columns' values and validity bitmaps,
	// and the rows' times (at, atValid), each region 8-byte aligned (as
	// Arrow's IPC format aligns buffers; 64 would be 128 bytes a column
	// for one row).
	fixed         *memory.Buffer
	at            []arrow.Timestamp
	atValid       []byte
	atOff, atVOff int
	stored        []int32       // stored[r]: values put in row r
	exceptions    [][]exception // per feature; nil until one

	bufs           []*memory.Buffer // the buffer lists of Finish's arrays, in one allocation
	rowsWithValues int
}

// exception is a value of feature whose time is not its row's.
type exception struct {
	row    int
	at     arrow.Timestamp
	stored bool // false: nothing stored, though the row stores other features
}

// valueColumn is one feature's values being built.
type valueColumn struct {
	tags []byte
	n    int // rows appended
	// A fixed-width column writes into fixed: its values (native-endian,
	// as Arrow lays them out) and validity bitmap, at off and validOff.
	kind          byte
	data          []byte
	valid         []byte
	off, validOff int
	size          int
	nulls         int
	// Another type appends to a builder.
	b array.Builder
}

// fixedWidth is the bytes per value of a type decoded in place, 0 for a
// bitmap (bool); ok is false for a type appended through a builder.
func fixedWidth(tag byte) (width int, ok bool) {
	switch tag {
	case tagInt64, tagFloat64, tagTimestamp:
		return 8, true
	case tagDate32:
		return 4, true
	case tagBool:
		return 0, true
	}
	return 0, false
}

// tagBytes[t] is t: tagBytes[t:t+1] is the tags of a type that is not a
// list, without an allocation per column.
var tagBytes = [...]byte{0, tagInt64, tagFloat64, tagString, tagBool, tagTimestamp, tagDate32}

func typeTags(dt arrow.DataType) ([]byte, error) {
	if tag, elem, err := typeTag(dt); err == nil && elem == nil {
		return tagBytes[tag:][:1], nil
	}
	return appendTypeTag(nil, dt)
}

func pad8(n int) int { return int(bitutil.CeilByte(n)) }

// NewValuesBuilder returns a builder of the answer for want, for rows
// rows. The caller releases it.
func NewValuesBuilder(mem memory.Allocator, want *arrow.Schema, rows int) (*ValuesBuilder, error) {
	b := &ValuesBuilder{
		mem: mem, schema: want, rows: rows,
		cols: make([]valueColumn, want.NumFields()), stored: make([]int32, rows),
	}
	bitmap := pad8(int(bitutil.BytesForBits(int64(rows))))
	size := 0
	region := func(n int) int {
		off := size
		size += n
		return off
	}
	for i := range b.cols {
		f := want.Field(i) // not Fields(), a copy
		c := &b.cols[i]
		tags, err := typeTags(f.Type)
		if err != nil {
			b.Release()
			return nil, fmt.Errorf("feature %s: %w", f.Name, err)
		}
		c.tags = tags
		width, fixed := fixedWidth(tags[0])
		if !fixed {
			c.b = array.NewBuilder(mem, f.Type)
			c.b.Reserve(rows)
			continue
		}
		c.kind = tags[0]
		c.size = bitmap
		if width > 0 {
			c.size = pad8(rows * width)
		}
		c.off, c.validOff = region(c.size), region(bitmap)
	}
	b.atOff, b.atVOff = region(pad8(rows*8)), region(bitmap)

	b.fixed = memory.NewResizableBuffer(mem)
	b.fixed.Resize(size)
	buf := b.fixed.Bytes()
	b.at = arrow.TimestampTraits.CastFromBytes(buf[b.atOff:][:rows*8])
	b.atValid = buf[b.atVOff:][:bitmap]
	clear(b.atValid)
	for i := range b.cols {
		c := &b.cols[i]
		if c.kind == 0 {
			continue
		}
		c.data = buf[c.off:][:c.size]
		if c.kind == tagBool {
			clear(c.data)
		}
		c.valid = buf[c.validOff:][:bitmap]
		clear(c.valid)
	}
	return b, nil
}

// Put sets feature i of row r to enc, a value as AppendTypedValue encodes
// it, observed at at. Rows are put in order: r never goes back. A value of
// another type than asked for is not put (it reads as missing).
func (b *ValuesBuilder) Put(r, i int, at arrow.Timestamp, enc []byte) error {
	if err := b.reach(r, i); err != nil {
		return err
	}
	ok, err := b.cols[i].decode(enc)
	if err != nil {
		return fmt.Errorf("feature %s: %w", b.schema.Field(i).Name, err)
	}
	if !ok {
		return nil
	}
	b.record(r, i, at)
	return nil
}

// PutUntyped is Put of a value without its type tags
// (AppendUntypedValue): the store knows it is of feature i's type, so
// there are no tags to check. A Get of 10,000 entities × 50 features calls
// it 500,000 times: the row is readied only when it moves on.
func (b *ValuesBuilder) PutUntyped(r, i int, at arrow.Timestamp, enc []byte) error {
	c := &b.cols[i]
	if c.n != r {
		if err := b.reach(r, i); err != nil {
			return err
		}
	}
	if err := c.decodeValue(enc); err != nil {
		return fmt.Errorf("feature %s: %w", b.schema.Field(i).Name, err)
	}
	b.record(r, i, at)
	return nil
}

// reach readies feature i for row r: rows are put in order.
func (b *ValuesBuilder) reach(r, i int) error {
	c := &b.cols[i]
	if c.n != r {
		if c.n > r {
			return fmt.Errorf("feature %s: two values for one entity", b.schema.Field(i).Name)
		}
		b.fill(i, r)
	}
	return nil
}

// record counts feature i of row r, observed at at, once its value is
// decoded.
func (b *ValuesBuilder) record(r, i int, at arrow.Timestamp) {
	b.cols[i].n++
	switch {
	case b.stored[r] == 0:
		b.at[r] = at
		bitutil.SetBit(b.atValid, r)
		b.rowsWithValues++
	case at != b.at[r]:
		b.except(i, exception{row: r, at: at, stored: true})
	}
	b.stored[r]++
}

// PutValue is Put of a value as AppendValue encodes it, its observation
// time first.
func (b *ValuesBuilder) PutValue(r, i int, enc []byte) error {
	at, err := ObservedTimestamp(enc)
	if err != nil {
		return fmt.Errorf("feature %s: %w", b.schema.Field(i).Name, err)
	}
	return b.Put(r, i, at, enc[8:])
}

func (b *ValuesBuilder) except(i int, e exception) {
	if b.exceptions == nil {
		b.exceptions = make([][]exception, len(b.cols))
	}
	b.exceptions[i] = append(b.exceptions[i], e)
}

// fill appends nothing-stored to feature i up to row r (excluded); those
// rows are complete, so a row storing other features is known.
func (b *ValuesBuilder) fill(i, r int) {
	c := &b.cols[i]
	if c.n >= r {
		return
	}
	for j := c.n; j < r; j++ {
		if b.stored[j] > 0 {
			b.except(i, exception{row: j})
		}
	}
	if c.kind != 0 {
		c.nulls += r - c.n
	} else {
		c.b.AppendNulls(r - c.n)
	}
	c.n = r
}

// decode appends the value enc to c; ok is false, appending nothing, for
// a value of another type.
func (c *valueColumn) decode(enc []byte) (ok bool, err error) {
	if c.kind == 0 {
		if len(enc) < len(c.tags) || string(enc[:len(c.tags)]) != string(c.tags) {
			return false, nil
		}
		d := decoder{buf: enc[len(c.tags):]}
		d.value(c.b)
		return d.err == nil, d.err
	}
	if len(enc) == 0 || enc[0] != c.kind { // a fixed width's tags are its kind
		return false, nil
	}
	err = c.decodeValue(enc[1:])
	return err == nil, err
}

// decodeValue appends enc, a value of c's type (its null byte, then its
// bytes), to c.
func (c *valueColumn) decodeValue(enc []byte) error {
	if c.kind == 0 {
		d := decoder{buf: enc}
		d.value(c.b)
		return d.err
	}
	if len(enc) == 0 {
		return errTruncated
	}
	if enc[0] == 0 {
		c.nulls++
		return nil
	}
	v := enc[1:]
	switch c.kind {
	case tagFloat64:
		if len(v) < 8 {
			return errTruncated
		}
		binary.NativeEndian.PutUint64(c.data[8*c.n:], binary.LittleEndian.Uint64(v))
	case tagInt64, tagTimestamp, tagDate32:
		x, n := binary.Varint(v)
		if n <= 0 {
			return errTruncated
		}
		if c.kind == tagDate32 {
			binary.NativeEndian.PutUint32(c.data[4*c.n:], uint32(x))
		} else {
			binary.NativeEndian.PutUint64(c.data[8*c.n:], uint64(x))
		}
	case tagBool:
		if len(v) == 0 {
			return errTruncated
		}
		if v[0] == 1 {
			bitutil.SetBit(c.data, c.n)
		}
	}
	bitutil.SetBit(c.valid, c.n)
	return nil
}

// Finish returns the values put. The caller releases them.
func (b *ValuesBuilder) Finish() *OnlineValues {
	n := len(b.cols)
	cols := make([]arrow.Array, n)
	out := &OnlineValues{Observed: make([]arrow.Array, n)}
	b.bufs = make([]*memory.Buffer, 2*(n+1))
	shared := b.fixedArray(features.TimestampType, b.atOff, b.atVOff, b.rows*8, b.rows-b.rowsWithValues)
	for i := range b.cols {
		b.fill(i, b.rows)
		c := &b.cols[i]
		if c.kind != 0 {
			cols[i] = b.fixedArray(b.schema.Field(i).Type, c.off, c.validOff, c.size, c.nulls)
		} else {
			cols[i] = c.b.NewArray()
		}
		if b.exceptions == nil || len(b.exceptions[i]) == 0 {
			shared.Retain()
			out.Observed[i] = shared
		} else {
			out.Observed[i] = b.observedWith(b.exceptions[i])
		}
	}
	shared.Release()
	out.Values = array.NewRecordBatch(b.schema, cols, int64(b.rows))
	for _, c := range cols {
		c.Release()
	}
	return out
}

// fixedArray is an array over regions of the fixed buffer; it takes its
// buffer list from b.bufs.
func (b *ValuesBuilder) fixedArray(dt arrow.DataType, off, validOff, size, nulls int) arrow.Array {
	var valid *memory.Buffer // none without nulls
	if nulls > 0 {
		valid = memory.SliceBuffer(b.fixed, validOff, int(bitutil.BytesForBits(int64(b.rows))))
		defer valid.Release()
	}
	values := memory.SliceBuffer(b.fixed, off, size)
	defer values.Release()
	bufs := b.bufs[:2:2]
	b.bufs = b.bufs[2:]
	bufs[0], bufs[1] = valid, values
	data := array.NewData(dt, b.rows, bufs, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// observedWith is the rows' times with one feature's exceptions applied.
func (b *ValuesBuilder) observedWith(exceptions []exception) arrow.Array {
	at := make([]arrow.Timestamp, b.rows)
	valid := make([]bool, b.rows)
	for r := range at {
		at[r], valid[r] = b.at[r], b.stored[r] > 0
	}
	for _, e := range exceptions {
		at[e.row], valid[e.row] = e.at, e.stored
	}
	tb := array.NewTimestampBuilder(b.mem, features.TimestampType)
	defer tb.Release()
	tb.AppendValues(at, valid)
	return tb.NewArray()
}

// Release releases what the builder holds (the answer of Finish holds its
// own references).
func (b *ValuesBuilder) Release() {
	for _, c := range b.cols {
		if c.b != nil {
			c.b.Release()
		}
	}
	if b.fixed != nil {
		b.fixed.Release()
	}
}
