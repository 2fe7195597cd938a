package flight

import (
	"bytes"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// DoGet answers statement and prepared-statement tickets itself, with the
// result's schema message encoded once per plan (Server.answerSchema): the
// flightsql server's writer rebuilt that flatbuffer for every DoGet, the
// largest single cost of a one-entity statement on the server. The query
// runs on the call's goroutine, with no channel between it and the writer.
// Other tickets (the catalogue's) go to the flightsql server.
func (x exchangeService) DoGet(tkt *arrowflight.Ticket, stream arrowflight.FlightService_DoGetServer) (err error) {
	var anycmd anypb.Any
	if err := proto.Unmarshal(tkt.GetTicket(), &anycmd); err != nil {
		return x.FlightServer.DoGet(tkt, stream)
	}
	cmd, err := anycmd.UnmarshalNew()
	if err != nil {
		return x.FlightServer.DoGet(tkt, stream)
	}
	ctx := stream.Context()
	var w work
	var q queryObs
	defer func() { q.end(ctx, err) }()
	switch cmd := cmd.(type) {
	case *pb.TicketStatementQuery:
		path := PathSQL
		switch kind, _, _ := readTicket(cmd.GetStatementHandle()); kind {
		case ticketSubstrait:
			path = PathSubstrait
		case ticketPreparedRange:
			path = PathPrepared
		case ticketNativeRange:
			path = PathNative
		}
		ctx, q = x.s.beginQuery(ctx, path)
	case *pb.CommandPreparedStatementQuery:
		ctx, q = x.s.beginQuery(ctx, PathPrepared)
	default:
		return x.FlightServer.DoGet(tkt, stream)
	}
	done, err := x.s.admit(ctx)
	if err != nil {
		return err
	}
	defer done()
	var r spineRange
	switch cmd := cmd.(type) {
	case *pb.TicketStatementQuery:
		kind, text, terr := readTicket(cmd.GetStatementHandle())
		switch {
		case terr != nil:
			err = terr
		case kind == ticketPreparedRange || kind == ticketNativeRange:
			if r, err = readSpineRange(kind, text); err == nil {
				w, err = x.s.rangeWork(ctx, r)
			}
		default:
			w, err = x.s.statementWork(ctx, cmd)
		}
	case *pb.CommandPreparedStatementQuery:
		w, err = x.s.preparedWork(ctx, cmd)
	}
	if err != nil {
		return err
	}
	q.trace, q.plan = w.trace, w.q.planned()
	if w.q.native {
		return x.s.doGetNative(ctx, stream, w, r.off)
	}
	schema, header := w.q.answer.all, w.q.answer.header
	if header == nil {
		schema, chunks, _ := x.s.stream(ctx, w)
		defer func() { // what an early return left behind
			for c := range chunks {
				if c.Data != nil {
					c.Data.Release()
				}
			}
		}()
		return writeChunks(stream, schema, chunks)
	}
	// The query runs on this goroutine, writing as it goes.
	aw := newAnswerWriter(stream, x.s.opts.Mem, schema, header)
	defer aw.close()
	if err := x.s.run(ctx, w, func(rec arrow.RecordBatch) error { return aw.write(rec, nil) }); err != nil {
		return err
	}
	if !aw.began { // no rows: the schema still goes
		return stream.Send(&arrowflight.FlightData{DataHeader: header})
	}
	return nil
}

// writeChunks streams chunks with arrow-go's writer, which also encodes
// dictionaries.
func writeChunks(stream arrowflight.FlightService_DoGetServer, schema *arrow.Schema, chunks <-chan arrowflight.StreamChunk) error {
	wr := arrowflight.NewRecordWriter(stream, ipc.WithSchema(schema))
	defer wr.Close()
	for c := range chunks {
		if c.Err != nil {
			return c.Err
		}
		err := wr.WriteWithAppMetadata(c.Data, c.AppMetadata)
		c.Data.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// schemaHeader is schema's encoded schema message; nil when it has a
// dictionary column (whose batches only arrow-go's writer sends).
func schemaHeader(schema *arrow.Schema) []byte {
	if slices.ContainsFunc(schema.Fields(), hasDictionary) {
		return nil
	}
	p := ipc.GetSchemaPayload(schema, memory.DefaultAllocator)
	defer p.Release()
	m := p.Meta()
	defer m.Release()
	return bytes.Clone(m.Bytes())
}

// DoPut checks what arrow-go's flightsql server takes for granted before
// handing the stream to it: that the first message carries a command
// descriptor (without one, it dereferenced nil).
func (x exchangeService) DoPut(stream arrowflight.FlightService_DoPutServer) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return status.Error(codes.InvalidArgument, "DoPut: empty stream: send a CMD descriptor with the schema, then the record batches")
	}
	if err != nil {
		return err
	}
	d := first.GetFlightDescriptor()
	if d == nil || d.GetType() != arrowflight.DescriptorCMD || len(d.GetCmd()) == 0 {
		return status.Error(codes.InvalidArgument, "DoPut: the first message must carry a CMD descriptor (a Flight SQL command) with the Arrow schema")
	}
	if isNativeCommand(d.GetCmd()) {
		return x.s.putNative(stream, first)
	}
	return x.FlightServer.DoPut(&peekedPut{FlightService_DoPutServer: stream, first: first})
}

// isNativeCommand tells a native query's JSON from a Flight SQL command
// (a protobuf Any, whose first byte is its type URL's tag, 0x0a).
func isNativeCommand(cmd []byte) bool {
	trimmed := bytes.TrimLeft(cmd, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// peekedPut replays the first FlightData of a DoPut, read for its checks.
type peekedPut struct {
	arrowflight.FlightService_DoPutServer
	first *arrowflight.FlightData
}

func (p *peekedPut) Recv() (*arrowflight.FlightData, error) {
	if p.first != nil {
		fd := p.first
		p.first = nil
		return fd, nil
	}
	return p.FlightService_DoPutServer.Recv()
}
