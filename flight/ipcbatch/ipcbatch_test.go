package ipcbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var supportedTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64,
	arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint64,
	arrow.FixedWidthTypes.Float16, arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64,
	arrow.FixedWidthTypes.Boolean, arrow.FixedWidthTypes.Date32, arrow.FixedWidthTypes.Date64,
	&arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, arrow.FixedWidthTypes.Duration_ns,
	&arrow.Decimal128Type{Precision: 20, Scale: 4}, &arrow.FixedSizeBinaryType{ByteWidth: 3},
	arrow.BinaryTypes.String, arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.LargeBinary,
}

// randomColumn is n random values of dt, a share nullShare of them null.
func randomColumn(mem memory.Allocator, rng *rand.Rand, dt arrow.DataType, n int, nullShare float64) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for range n {
		if rng.Float64() < nullShare {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.Int8Builder:
			b.Append(int8(rng.Int()))
		case *array.Int16Builder:
			b.Append(int16(rng.Int()))
		case *array.Int32Builder:
			b.Append(rng.Int32())
		case *array.Int64Builder:
			b.Append(rng.Int64() - rng.Int64())
		case *array.Uint8Builder:
			b.Append(uint8(rng.Int()))
		case *array.Uint64Builder:
			b.Append(rng.Uint64())
		case *array.Float16Builder:
			b.Append(float16.New(rng.Float32()))
		case *array.Float32Builder:
			b.Append(rng.Float32())
		case *array.Float64Builder:
			b.Append(rng.NormFloat64())
		case *array.BooleanBuilder:
			b.Append(rng.IntN(2) == 1)
		case *array.Date32Builder:
			b.Append(arrow.Date32(rng.Int32N(40000)))
		case *array.Date64Builder:
			b.Append(arrow.Date64(rng.Int64N(1 << 40)))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(rng.Int64N(1 << 52)))
		case *array.DurationBuilder:
			b.Append(arrow.Duration(rng.Int64()))
		case *array.Decimal128Builder:
			b.Append(decimal128.New(rng.Int64(), rng.Uint64()))
		case *array.FixedSizeBinaryBuilder:
			b.Append([]byte{byte(rng.Int()), byte(rng.Int()), byte(rng.Int())})
		case *array.StringBuilder:
			b.Append(randomText(rng))
		case *array.LargeStringBuilder:
			b.Append(randomText(rng))
		case *array.BinaryBuilder:
			b.Append([]byte(randomText(rng)))
		default:
			panic(fmt.Sprintf("no random values of %T", b))
		}
	}
	return b.NewArray()
}

func randomText(rng *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyzé"
	n := rng.IntN(12)
	var s []rune
	for range n {
		s = append(s, []rune(letters)[rng.IntN(27)])
	}
	return string(s)
}

// stream frames a schema message and the batch messages of Encode as an
// Arrow IPC stream, which arrow-go's reader decodes: the reference.
func stream(t *testing.T, schema *arrow.Schema, msgs [][2][]byte) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	frame := func(meta, body []byte) {
		padded := (len(meta) + 8 + 7) &^ 7
		binary.Write(&out, binary.LittleEndian, uint32(0xFFFFFFFF))
		binary.Write(&out, binary.LittleEndian, int32(padded-8))
		out.Write(meta)
		out.Write(make([]byte, padded-8-len(meta)))
		out.Write(body)
	}
	p := ipc.GetSchemaPayload(schema, memory.DefaultAllocator)
	m := p.Meta()
	frame(m.Bytes(), nil)
	m.Release()
	p.Release()
	for _, msg := range msgs {
		frame(msg[0], msg[1])
	}
	binary.Write(&out, binary.LittleEndian, uint64(0xFFFFFFFF))
	return &out
}

// TestEncodeRoundTrip: batches of every supported type, with and without
// nulls, whole and sliced at odd offsets, decode with arrow-go's IPC reader
// to the batches encoded.
func TestEncodeRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name        string
		rows        int
		nulls       float64
		slice       [2]int64 // rows [from, to) of the batch; {0, 0}: whole
		nullColumns bool
	}{
		{"one row", 1, 0, [2]int64{}, false},
		{"one null row", 1, 1, [2]int64{}, false},
		{"no nulls", 100, 0, [2]int64{}, false},
		{"some nulls", 257, 0.3, [2]int64{}, false},
		{"sliced at 3", 100, 0.3, [2]int64{3, 70}, false},
		{"sliced at 8", 100, 0.5, [2]int64{8, 100}, false},
		{"sliced, no nulls", 64, 0, [2]int64{13, 14}, false},
		{"empty", 10, 0.3, [2]int64{5, 5}, false},
		{"built empty", 0, 0, [2]int64{}, false}, // builders leave no buffers
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fields := make([]arrow.Field, len(supportedTypes))
			cols := make([]arrow.Array, len(supportedTypes))
			for i, dt := range supportedTypes {
				fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i), Type: dt, Nullable: true}
				cols[i] = randomColumn(mem, rng, dt, tc.rows, tc.nulls)
			}
			schema := arrow.NewSchema(fields, nil)
			rec := array.NewRecordBatch(schema, cols, int64(tc.rows))
			for _, c := range cols {
				c.Release()
			}
			defer rec.Release()
			if tc.slice != [2]int64{} || tc.name == "empty" {
				s := rec.NewSlice(tc.slice[0], tc.slice[1])
				defer s.Release()
				rec = s
			}
			var e Encoder
			// Twice through one Encoder: its reused builder must not
			// leak the first message into the second.
			var msgs [][2][]byte
			for range 2 {
				header, body, ok := e.Encode(rec, nil)
				if !ok {
					t.Fatal("Encode refused supported types")
				}
				msgs = append(msgs, [2][]byte{bytes.Clone(header), body})
			}
			rdr, err := ipc.NewReader(stream(t, schema, msgs), ipc.WithAllocator(mem))
			if err != nil {
				t.Fatal(err)
			}
			defer rdr.Release()
			for i := range msgs {
				if !rdr.Next() {
					t.Fatalf("batch %d: %v", i, rdr.Err())
				}
				got := rdr.RecordBatch()
				if !array.RecordEqual(got, rec) {
					t.Errorf("batch %d decodes to\n%v\nwant\n%v", i, got, rec)
				}
			}
			if rdr.Next() {
				t.Error("more batches than encoded")
			}
		})
	}
}

// TestEncodeRefuses: batches with a column Encode does not take are left
// to arrow-go's ipc, with nothing appended.
func TestEncodeRefuses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dt := range []arrow.DataType{
		arrow.ListOf(arrow.PrimitiveTypes.Int64),
		arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64}),
		&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String},
		arrow.BinaryTypes.StringView,
		arrow.Null,
	} {
		b := array.NewBuilder(mem, dt)
		b.AppendNull()
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: dt, Nullable: true}}, nil), []arrow.Array{col}, 1)
		col.Release()
		var e Encoder
		body := []byte("kept")
		if _, out, ok := e.Encode(rec, body); ok || string(out) != "kept" {
			t.Errorf("%s: ok %v, body %q", dt, ok, out)
		}
		rec.Release()
	}
}

// BenchmarkEncode compares Encode with arrow-go's ipc on a one-entity
// answer of 50 features (what a single-entity query sends).
func BenchmarkEncode(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	fields := make([]arrow.Field, 50)
	cols := make([]arrow.Array, 50)
	for i := range fields {
		dt := []arrow.DataType{arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.String}[i%3]
		fields[i] = arrow.Field{Name: fmt.Sprintf("f%d", i), Type: dt, Nullable: true}
		cols[i] = randomColumn(memory.DefaultAllocator, rng, dt, 1, 0.1)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, 1)
	b.Run("ipcbatch", func(b *testing.B) {
		var e Encoder
		var body []byte
		b.ReportAllocs()
		for b.Loop() {
			_, body, _ = e.Encode(rec, body[:0])
		}
	})
	b.Run("arrow-go", func(b *testing.B) {
		var body bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			p, err := ipc.GetRecordBatchPayload(rec)
			if err != nil {
				b.Fatal(err)
			}
			m := p.Meta()
			body.Reset()
			if err := p.SerializeBody(&body); err != nil {
				b.Fatal(err)
			}
			m.Release()
			p.Release()
		}
	})
}

// TestEncodeBufferless: empty columns may come with no buffers at all
// (array.NewData with nils, as some kernels make them).
func TestEncodeBufferless(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var fields []arrow.Field
	var cols []arrow.Array
	for i, dt := range supportedTypes {
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("c%d", i), Type: dt, Nullable: true})
		bufs := make([]*memory.Buffer, 2, 3)
		if arrow.IsBaseBinary(dt.ID()) {
			bufs = bufs[:3]
		}
		d := array.NewData(dt, 0, bufs, nil, 0, 0)
		cols = append(cols, array.MakeFromData(d))
		d.Release()
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, cols, 0)
	defer rec.Release()
	for _, c := range cols {
		c.Release()
	}
	var e Encoder
	header, body, ok := e.Encode(rec, nil)
	if !ok {
		t.Fatal("refused")
	}
	rdr, err := ipc.NewReader(stream(t, schema, [][2][]byte{{header, body}}), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	if !rdr.Next() || rdr.RecordBatch().NumRows() != 0 || rdr.RecordBatch().NumCols() != int64(len(cols)) {
		t.Fatalf("decoded %v, %v", rdr.RecordBatch(), rdr.Err())
	}
}
