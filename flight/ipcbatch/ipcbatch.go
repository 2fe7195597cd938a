// Package ipcbatch encodes Arrow record batches as the IPC RecordBatch
// messages Flight data carries (the message's flatbuffer as the header, the
// buffers as the body), for the columns a feature answer is made of:
// fixed-width values, booleans, strings and binaries.
//
// arrow-go's ipc package encodes any batch, but builds each message in a
// fresh, growing flatbuffer and a slice of retained buffers per column; for
// a one-entity answer of 50 features that was the largest allocation of a
// query on the server. An Encoder keeps its flatbuffer builder and scratch
// between batches and copies each buffer once, into the body.
//
// It knows nothing of Flight's RPCs or of gRPC: callers put the header and
// body into FlightData themselves, and fall back to arrow-go's ipc for a
// batch Encode refuses (nested, dictionary, view and extension columns).
package ipcbatch

import (
	"encoding/binary"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	flatbuffers "github.com/google/flatbuffers/go"
)

// The IPC format's constants (format/Message.fbs, format/Schema.fbs).
const (
	metadataV5        = 4     // MetadataVersion.V5
	headerRecordBatch = 3     // MessageHeader.RecordBatch
	messageFields     = 5     // version, header_type, header, bodyLength, custom_metadata
	recordBatchFields = 5     // length, nodes, buffers, compression, variadicBufferCounts
	structSize, align = 16, 8 // FieldNode and Buffer: two longs
)

// Encoder encodes record batches. It is not safe for concurrent use; an
// Encoder serves one stream, or one batch at a time.
type Encoder struct {
	fb    *flatbuffers.Builder
	nodes []node
	bufs  []span
}

type node struct{ length, nulls int64 }

// span is a buffer's place in the body.
type span struct{ offset, length int64 }

// supported says whether Encode takes columns of type dt.
func supported(dt arrow.DataType) bool {
	switch dt.ID() {
	case arrow.BOOL, arrow.STRING, arrow.BINARY, arrow.LARGE_STRING, arrow.LARGE_BINARY,
		// validity and values of a whole number of bytes
		arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.INTERVAL_MONTHS, arrow.INTERVAL_DAY_TIME, arrow.INTERVAL_MONTH_DAY_NANO,
		arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256, arrow.FIXED_SIZE_BINARY:
		return true
	}
	return false
}

// Encode appends rec's buffers to body and returns its message header and
// the body. The header aliases the Encoder's builder: it is valid until the
// next Encode. ok is false, and nothing is appended, when a column's type
// is not supported.
func (e *Encoder) Encode(rec arrow.RecordBatch, body []byte) (header, out []byte, ok bool) {
	for _, c := range rec.Columns() {
		if !supported(c.DataType()) {
			return nil, body, false
		}
	}
	start := len(body)
	e.nodes, e.bufs = e.nodes[:0], e.bufs[:0]
	for _, c := range rec.Columns() {
		body = e.column(c, body, start)
	}
	return e.message(rec.NumRows(), int64(len(body)-start)), body, true
}

// column appends the buffers of one supported column, sliced to its own
// rows: a bitmap of a column at an offset is copied to start at bit 0, and
// variable-width offsets are rebased to start at 0.
func (e *Encoder) column(c arrow.Array, body []byte, start int) []byte {
	d := c.Data()
	n, off := d.Len(), d.Offset()
	nulls := c.NullN()
	e.nodes = append(e.nodes, node{int64(n), int64(nulls)})
	bufs := d.Buffers()

	// Validity: none when nothing is null.
	if nulls == 0 || bufs[0] == nil {
		e.bufs = append(e.bufs, span{int64(len(body) - start), 0})
	} else {
		body = e.bitmap(body, start, bufs[0].Bytes(), off, n)
	}

	switch c.DataType().ID() {
	case arrow.BOOL:
		return e.bitmap(body, start, bytesOf(bufs[1]), off, n)
	case arrow.STRING, arrow.BINARY:
		return binaryColumn(e, body, start, arrow.Int32Traits.CastFromBytes(bytesOf(bufs[1])), bytesOf(bufs[2]), off, n)
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return binaryColumn(e, body, start, arrow.Int64Traits.CastFromBytes(bytesOf(bufs[1])), bytesOf(bufs[2]), off, n)
	}
	width := c.DataType().(arrow.FixedWidthDataType).BitWidth() / 8
	return e.raw(body, start, bytesOf(bufs[1])[off*width:][:n*width])
}

// binaryColumn appends the offsets of rows [off, off+n) of a
// variable-width column, rebased to start at 0, and the data they span.
func binaryColumn[T int32 | int64](e *Encoder, body []byte, start int, offsets []T, data []byte, off, n int) []byte {
	if len(offsets) == 0 { // an empty array built with no buffers
		offsets = make([]T, 1)
	}
	offsets = offsets[off : off+n+1]
	first := offsets[0]
	width := int(unsafe.Sizeof(first))
	at := len(body)
	body = grow(body, width*(n+1))
	for i, o := range offsets {
		if width == 4 {
			binary.NativeEndian.PutUint32(body[at+4*i:], uint32(o-first))
		} else {
			binary.NativeEndian.PutUint64(body[at+8*i:], uint64(o-first))
		}
	}
	body = e.ended(body, start, at)
	return e.raw(body, start, data[first:offsets[n]])
}

// bytesOf is b's bytes; an empty array may have no buffer at all.
func bytesOf(b *memory.Buffer) []byte {
	if b == nil {
		return nil
	}
	return b.Bytes()
}

// raw appends b as the next buffer.
func (e *Encoder) raw(body []byte, start int, b []byte) []byte {
	at := len(body)
	body = append(body, b...)
	return e.ended(body, start, at)
}

// bitmap appends bits [off, off+n) of bits as the next buffer, starting at
// bit 0.
func (e *Encoder) bitmap(body []byte, start int, bits []byte, off, n int) []byte {
	if off%8 == 0 {
		return e.raw(body, start, bits[off/8:][:bitutil.BytesForBits(int64(n))])
	}
	at := len(body)
	body = grow(body, int(bitutil.BytesForBits(int64(n))))
	bitutil.CopyBitmap(bits, off, n, body[at:], 0)
	return e.ended(body, start, at)
}

// ended records the buffer written from at to the end of body, and pads
// the body so that the next buffer starts 8-byte aligned, as IPC wants.
func (e *Encoder) ended(body []byte, start, at int) []byte {
	e.bufs = append(e.bufs, span{int64(at - start), int64(len(body) - at)})
	if pad := int(bitutil.CeilByte(len(body)-start)) - (len(body) - start); pad > 0 {
		body = append(body, make([]byte, pad)...)
	}
	return body
}

// grow extends b by n zero bytes.
func grow(b []byte, n int) []byte {
	b = append(b, make([]byte, n)...)
	return b
}

// message builds the Message flatbuffer of a batch of rows rows whose
// nodes and buffers Encode recorded.
func (e *Encoder) message(rows, bodyLength int64) []byte {
	if e.fb == nil {
		e.fb = flatbuffers.NewBuilder(1024)
	}
	b := e.fb
	b.Reset()
	// Vectors of structs are written last element first.
	b.StartVector(structSize, len(e.nodes), align)
	for i := len(e.nodes) - 1; i >= 0; i-- {
		b.Prep(align, structSize)
		b.PrependInt64(e.nodes[i].nulls)
		b.PrependInt64(e.nodes[i].length)
	}
	nodes := b.EndVector(len(e.nodes))
	b.StartVector(structSize, len(e.bufs), align)
	for i := len(e.bufs) - 1; i >= 0; i-- {
		b.Prep(align, structSize)
		b.PrependInt64(e.bufs[i].length)
		b.PrependInt64(e.bufs[i].offset)
	}
	buffers := b.EndVector(len(e.bufs))

	b.StartObject(recordBatchFields)
	b.PrependInt64Slot(0, rows, 0)
	b.PrependUOffsetTSlot(1, nodes, 0)
	b.PrependUOffsetTSlot(2, buffers, 0)
	batch := b.EndObject()

	b.StartObject(messageFields)
	b.PrependInt64Slot(3, bodyLength, 0)
	b.PrependUOffsetTSlot(2, batch, 0)
	b.PrependInt16Slot(0, metadataV5, 0)
	b.PrependByteSlot(1, headerRecordBatch, 0)
	b.Finish(b.EndObject())
	return b.FinishedBytes()
}
