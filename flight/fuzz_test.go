package flight

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
)

// fuzzServer is a server over the marketplace in DuckDB, on a checked
// allocator the fuzz targets check after each input.
func fuzzServer(f *testing.F) (*Server, *memory.CheckedAllocator) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	engine := planner.NewEngine(marketplace(f), sources{"marketplace": marketplaceDB(f)}, mem)
	return NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow }}), mem
}

// clientError fails t unless err is nil or a status a client can act on:
// Internal means a bug (a recovered panic, an unexpected error).
func clientError(t *testing.T, what string, err error) {
	t.Helper()
	switch status.Code(statusOf(err)) {
	case codes.OK, codes.InvalidArgument, codes.Unimplemented, codes.NotFound, codes.Unavailable:
		return
	}
	t.Fatalf("%s: %v", what, err)
}

// drain reads a result stream to its end, releasing the batches.
// runWork runs what a DoGet would for w (made with err), discarding the
// answer: every failure must be the client's.
func runWork(t *testing.T, srv *Server, what string, w work, err error) {
	t.Helper()
	clientError(t, what, err)
	if err == nil {
		clientError(t, what, statusOf(srv.run(context.Background(), w, func(arrow.RecordBatch) error { return nil })))
	}
}

func checkMem(t *testing.T, mem *memory.CheckedAllocator) {
	t.Helper()
	if n := mem.CurrentAlloc(); n != 0 {
		t.Fatalf("%d bytes still allocated after the input", n)
	}
}

// FuzzStatementTicket feeds arbitrary statement ticket handles to
// what a statement DoGet runs: the decoder behind any DoGet a client sends.
func FuzzStatementTicket(f *testing.F) {
	srv, mem := fuzzServer(f)
	f.Cleanup(srv.Stop)
	const sql = `SELECT full_name, "review_count[7d]" FROM user WHERE id IN ('u1', 'u2') AND __as_of__ = '2026-02-01T00:00:00Z'`
	f.Add([]byte(sql))
	f.Add(append([]byte{ticketTag, ticketVersion, ticketSQL}, sql...))
	f.Add(append([]byte{ticketTag, ticketVersion, ticketSubstrait}, substraitPlan(f, userPlan(equalFn, `{"singularOrList": {"value": `+idField+`, "options": [`+strLit("u1")+`]}}`)).Plan...))
	f.Add([]byte{ticketTag, 2, ticketSQL})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, handle []byte) {
		raw, err := flightsql.CreateStatementQueryTicket(handle)
		if err != nil {
			t.Fatal(err)
		}
		ticket, err := flightsql.GetStatementQueryTicket(&arrowflight.Ticket{Ticket: raw})
		if err != nil {
			t.Fatalf("a ticket of the server's own making does not decode: %v", err)
		}
		w, err := srv.statementWork(context.Background(), ticket)
		runWork(t, srv, "statement DoGet", w, err)
		checkMem(t, mem)
	})
}

// preparedHandle is a prepared statement command carrying any handle.
type preparedHandle []byte

func (h preparedHandle) GetPreparedStatementHandle() []byte { return h }

// FuzzPreparedHandle feeds arbitrary prepared statement handles to every
// RPC that takes one, beside a live prepared statement.
func FuzzPreparedHandle(f *testing.F) {
	srv, mem := fuzzServer(f)
	f.Cleanup(srv.Stop)
	ctx := context.Background()
	res, err := srv.CreatePreparedStatement(ctx, createRequest(`SELECT full_name FROM user WHERE id = 'u3'`))
	if err != nil {
		f.Fatal(err)
	}
	live := string(res.Handle)
	f.Add(res.Handle)
	f.Add([]byte(live[:5]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, h []byte) {
		desc := &arrowflight.FlightDescriptor{Type: arrowflight.DescriptorCMD, Cmd: h}
		_, err := srv.GetFlightInfoPreparedStatement(ctx, preparedHandle(h), desc)
		clientError(t, "GetFlightInfoPreparedStatement", err)
		_, err = srv.GetSchemaPreparedStatement(ctx, preparedHandle(h), desc)
		clientError(t, "GetSchemaPreparedStatement", err)
		w, err := srv.preparedWork(ctx, preparedHandle(h))
		runWork(t, srv, "prepared DoGet", w, err)
		if string(h) != live {
			clientError(t, "ClosePreparedStatement", srv.ClosePreparedStatement(ctx, preparedHandle(h)))
		}
		checkMem(t, mem)
	})
}

type createRequest string

func (q createRequest) GetQuery() string         { return string(q) }
func (q createRequest) GetTransactionId() []byte { return nil }

// paramTypes are the column types a fuzzed parameter batch draws from:
// right, convertible and wrong ones for a str key, an int key and
// __as_of__.
var paramTypes = []arrow.DataType{
	arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Uint64,
	arrow.PrimitiveTypes.Float32, arrow.PrimitiveTypes.Float64, arrow.FixedWidthTypes.Boolean,
	arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView, arrow.BinaryTypes.Binary,
	arrow.FixedWidthTypes.Date32, arrow.FixedWidthTypes.Date64,
	arrow.FixedWidthTypes.Timestamp_s, arrow.FixedWidthTypes.Timestamp_us, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "America/New_York"},
	arrow.Null, arrow.ListOf(arrow.PrimitiveTypes.Int64),
}

// paramBatch builds a batch of parameter rows from fuzz bytes: the first
// bytes choose the columns' types, the rest their values and nulls.
func paramBatch(mem memory.Allocator, data []byte) arrow.RecordBatch {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	ncols := int(next() % 4)
	fields := make([]arrow.Field, ncols)
	for i := range fields {
		fields[i] = arrow.Field{Name: string(rune('a' + i)), Type: paramTypes[int(next())%len(paramTypes)], Nullable: true}
	}
	nrows := int(next() % 8)
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for range nrows {
		for _, fb := range b.Fields() {
			if next()%5 == 0 {
				fb.AppendNull()
				continue
			}
			var word [8]byte
			for k := range word {
				word[k] = next()
			}
			v := int64(binary.LittleEndian.Uint64(word[:]))
			text := string(word[:next()%9])
			switch fb := fb.(type) {
			case *array.StringBuilder:
				fb.Append(text)
			case *array.LargeStringBuilder:
				fb.Append(text)
			case *array.StringViewBuilder:
				fb.Append(text)
			case *array.BinaryBuilder:
				fb.Append([]byte(text))
			case *array.ListBuilder:
				fb.Append(true)
				fb.ValueBuilder().(*array.Int64Builder).Append(v)
			case *array.Int8Builder:
				fb.Append(int8(v))
			case *array.Int32Builder:
				fb.Append(int32(v))
			case *array.Int64Builder:
				fb.Append(v)
			case *array.Uint64Builder:
				fb.Append(uint64(v))
			case *array.Float32Builder:
				fb.Append(math.Float32frombits(uint32(v)))
			case *array.Float64Builder:
				fb.Append(math.Float64frombits(uint64(v)))
			case *array.BooleanBuilder:
				fb.Append(v%2 == 0)
			case *array.Date32Builder:
				fb.Append(arrow.Date32(v))
			case *array.Date64Builder:
				fb.Append(arrow.Date64(v))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(v))
			default:
				fb.AppendNull()
			}
		}
	}
	return b.NewRecordBatch()
}

// FuzzParameterBatch binds fuzzed parameter batches, of right and wrong
// schemas and values, to prepared statements as DoPut does: a batch is
// refused with InvalidInput or bound to one input row per parameter row.
func FuzzParameterBatch(f *testing.F) {
	g := marketplace(f)
	var stmts []*statement.Statement
	for _, text := range []string{
		`SELECT full_name FROM user WHERE id = ? AND __as_of__ = ?`,
		`SELECT star_rating FROM review WHERE id = ?`,
		`SELECT id FROM user_item WHERE user_id = $1 AND item_id = $1`,
	} {
		st, err := sql.Parse(g, text)
		if err != nil {
			f.Fatal(err)
		}
		stmts = append(stmts, st)
	}
	f.Add([]byte{2, 7, 14, 3, 1, '1', '2', '3', 0, 0, 0, 0, 3})
	f.Add([]byte{1, 2, 1, 1, 42, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 7, 2, 1, 'u', '1', 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte{3, 16, 17, 5, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		params := paramBatch(mem, data)
		defer params.Release()
		for _, st := range stmts {
			if err := st.CheckParams(params.Schema()); err != nil {
				wantInvalid(t, st.Text, err)
				continue
			}
			in, err := st.BindInputs(context.Background(), mem, params)
			if err != nil {
				wantInvalid(t, st.Text, err)
				continue
			}
			if in.NumRows() != params.NumRows() || int(in.NumCols()) != len(st.Inputs) {
				t.Errorf("%s: bound %d rows × %d columns from %d parameter rows", st.Text, in.NumRows(), in.NumCols(), params.NumRows())
			}
			in.Release()
		}
	})
}

func wantInvalid(t *testing.T, text string, err error) {
	t.Helper()
	var pe *statement.Error
	if !errors.As(err, &pe) || pe.Kind != statement.InvalidInput {
		t.Fatalf("%s: %v (%T), want an InvalidInput statement error", text, err, err)
	}
}
