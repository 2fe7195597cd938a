package flight

// Big spines (docs/FLIGHTSQL.md "Big spines"): the input rows of a query
// (an offline query's spine) are planned and run SpineChunkRows at a time,
// each chunk's answer streamed before the next is read, so that the
// server holds one chunk's work whatever the spine's size. A spine bound
// to a prepared statement (or uploaded with a native query by DoPut) is
// kept as its compact input columns, and its FlightInfo splits it into
// endpoints of SpineEndpointRows rows, whose tickets name a range of it:
// clients read them in parallel, and concatenated in order they are the
// answer.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/planner"
)

// The defaults of Options.SpineChunkRows and SpineEndpointRows. Chunks of
// 32,768 rows cost the same CPU as 65,536 for half the memory (the exact
// window path expands a chunk's rows into their keys' events), and 16,384
// cost 10-20 % more CPU: docs/BENCHMARKS.md §23. An endpoint of eight
// chunks gives a client of a million-row spine four streams to read.
const (
	DefaultSpineChunkRows    = 1 << 15
	DefaultSpineEndpointRows = 1 << 18
)

// runChunked runs plan over in SpineChunkRows rows at a time (whole when
// it fits), handing each result to add, which owns it.
func (s *Server) runChunked(ctx context.Context, plan *planner.Plan, in arrow.RecordBatch, opts planner.RunOptions, add func(*planner.Result) error) error {
	per := int64(s.opts.SpineChunkRows)
	for i := int64(0); i < in.NumRows() || i == 0; i += per {
		chunk := in
		if in.NumRows() > per {
			chunk = in.NewSlice(i, min(i+per, in.NumRows()))
		}
		res, err := plan.Run(ctx, chunk, opts)
		if chunk != in {
			chunk.Release()
		}
		if err != nil {
			return err
		}
		if err := add(res); err != nil {
			return err
		}
	}
	return nil
}

// coalescer gathers bound input batches smaller than a chunk into batches
// of up to SpineChunkRows rows, in order, and hands each to emit, which
// owns it. Every batch is one plan run (a query to each source, the fused
// programs' set-up): 3,000 batches of 10 rows took about 370 times as long
// as the same 30,000 rows in one (docs/BENCHMARKS.md §28), and pandas,
// DuckDB and polars hand out columns in many chunks. A batch of a chunk or
// more passes as it is (runChunked splits it); only small ones are copied.
type coalescer struct {
	mem   memory.Allocator
	per   int64
	emit  func(arrow.RecordBatch) error
	parts []arrow.RecordBatch
	rows  int64
}

func (s *Server) coalescer(emit func(arrow.RecordBatch) error) *coalescer {
	return &coalescer{mem: s.opts.Mem, per: int64(max(s.opts.SpineChunkRows, 1)), emit: emit}
}

// add takes over rec.
func (c *coalescer) add(rec arrow.RecordBatch) error {
	if c.rows+rec.NumRows() > c.per {
		if err := c.flush(); err != nil {
			rec.Release()
			return err
		}
	}
	if rec.NumRows() >= c.per {
		return c.emit(rec)
	}
	c.parts = append(c.parts, rec)
	c.rows += rec.NumRows()
	return nil
}

// flush emits the batches gathered, as one.
func (c *coalescer) flush() error {
	parts := c.parts
	c.parts, c.rows = nil, 0
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return c.emit(parts[0])
	}
	rec, err := operators.Concat(c.mem, parts[0].Schema(), parts)
	release(parts)
	if err != nil {
		return fmt.Errorf("gathering the input batches: %w", err)
	}
	return c.emit(rec)
}

// release drops what is gathered (a call that failed half way).
func (c *coalescer) release() {
	release(c.parts)
	c.parts, c.rows = nil, 0
}

// Spine range tickets: a statement ticket (readTicket) of kind
// ticketPreparedRange (a prepared statement's bound parameters) or
// ticketNativeRange (a native query's uploaded spine), whose query is the
// bind it reads, the first row and the row count (uvarints), then the
// handle. The handle is the caller's: another token redeeming the ticket
// finds no such statement (preparedKeyOf).
const (
	ticketPreparedRange = 'r'
	ticketNativeRange   = 'n'
)

type spineRange struct {
	kind      byte
	bind      uint64
	off, rows int64
	handle    string
}

func (r spineRange) ticket() ([]byte, error) {
	b := binary.AppendUvarint(nil, r.bind)
	b = binary.AppendUvarint(b, uint64(r.off))
	b = binary.AppendUvarint(b, uint64(r.rows))
	return statementTicket(r.kind, append(b, r.handle...))
}

// readSpineRange reads the query of a spine range ticket of kind.
func readSpineRange(kind byte, text []byte) (spineRange, error) {
	r := spineRange{kind: kind}
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(text)
		if n <= 0 || v > 1<<62 {
			return spineRange{}, status.Error(codes.InvalidArgument, "malformed spine ticket: ask for a new FlightInfo")
		}
		vals[i], text = v, text[n:]
	}
	r.bind, r.off, r.rows, r.handle = vals[0], int64(vals[1]), int64(vals[2]), string(text)
	return r, nil
}

// spineEndpoints splits rows bound under handle (bind) into endpoints of
// SpineEndpointRows rows.
func (s *Server) spineEndpoints(kind byte, handle string, bind uint64, rows int64) ([]*arrowflight.FlightEndpoint, error) {
	per := int64(s.opts.SpineEndpointRows)
	if per <= 0 {
		per = max(rows, 1)
	}
	var eps []*arrowflight.FlightEndpoint
	for off := int64(0); off < rows || (off == 0 && rows == 0); off += per {
		t, err := spineRange{kind: kind, bind: bind, off: off, rows: min(per, rows-off), handle: handle}.ticket()
		if err != nil {
			return nil, err
		}
		eps = append(eps, &arrowflight.FlightEndpoint{Ticket: &arrowflight.Ticket{Ticket: t}})
	}
	return eps, nil
}

// splitsSpine tells whether q's FlightInfo splits its bound spine into
// endpoints: a lookup with parameters and no LIMIT (which counts across
// the whole answer) whose bound rows pass SpineEndpointRows.
func (s *Server) splitsSpine(q *query, rows int64) bool {
	per := s.opts.SpineEndpointRows
	return q.st != nil && len(q.st.Params) > 0 && q.st.Limit < 0 && q.explain == "" && !q.analyze && per > 0 && rows > int64(per)
}

// rangeWork is the query and rows of a spine range ticket of the caller.
func (s *Server) rangeWork(ctx context.Context, r spineRange) (work, error) {
	q, err := s.preparedQuery(ctx, r.handle)
	if err != nil {
		return work{}, err
	}
	if q.native != (r.kind == ticketNativeRange) {
		return work{}, status.Error(codes.InvalidArgument, "malformed spine ticket: ask for a new FlightInfo")
	}
	in, err := s.prepared.boundRange(preparedKeyOf(ctx, r.handle), r.bind, r.off, r.rows)
	if err != nil {
		return work{}, err
	}
	return s.traced(ctx, work{q: q, inputs: in})
}

// putNative answers a DoPut whose descriptor holds a native feature query
// (docs/NATIVE.md "Big spines"): the stream's rows are its spine, bound
// and kept as the query's input columns, and the one PutResult is the
// FlightInfo whose endpoints' tickets each answer a range of it. The
// caller closes the handle (app_metadata) with ClosePreparedStatement.
func (s *Server) putNative(stream arrowflight.FlightService_DoPutServer, first *arrowflight.FlightData) (err error) {
	ctx := stream.Context()
	ctx, q := s.beginQuery(ctx, PathNative)
	defer func() { q.end(ctx, err) }()
	done, err := s.admit(ctx)
	if err != nil {
		return err
	}
	defer done()
	st, rdr, err := s.readNative(ctx, &peeked{first: first, stream: stream}, "spine")
	if err != nil {
		return err
	}
	defer rdr.Release()
	if st.Options.Explain {
		return invalidArg("native query: explain is answered by DoExchange, not DoPut")
	}
	if err := s.checkStatement(st); err != nil {
		return err
	}
	plan, out, err := s.planNative(ctx, st)
	if err != nil {
		return err
	}
	q.plan = plan
	var bound []arrow.RecordBatch
	defer func() { release(bound) }()
	co := s.coalescer(func(b arrow.RecordBatch) error { bound = append(bound, b); return nil })
	defer co.release()
	rows := int64(0)
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if rows += rec.NumRows(); s.checkInputRows(rows) != nil {
			return s.checkInputRows(rows)
		}
		in, err := st.BindInputs(ctx, s.opts.Mem, rec)
		if err != nil {
			return err
		}
		if err := co.add(in); err != nil {
			return err
		}
	}
	if err := rdr.Err(); err != nil {
		return invalidArg("native query: reading the spine: %v", err)
	}
	if err := co.flush(); err != nil {
		return err
	}
	h := newHandle()
	bind := s.prepared.putBound(preparedKeyOf(ctx, h), &query{st: st, plan: plan, answer: out, repo: s.repoOf(ctx), native: true}, bound)
	bound = nil // the store's now
	eps, err := s.spineEndpoints(ticketNativeRange, h, bind, rows)
	if err != nil {
		return err
	}
	meta, err := json.Marshal(map[string]string{"handle": h})
	if err != nil {
		return err
	}
	info, err := proto.Marshal(&arrowflight.FlightInfo{Schema: out.info, FlightDescriptor: first.GetFlightDescriptor(), Endpoint: eps,
		TotalRecords: rows, TotalBytes: -1, Ordered: true, AppMetadata: meta})
	if err != nil {
		return err
	}
	return stream.Send(&arrowflight.PutResult{AppMetadata: info})
}

// doGetNative answers a native query's spine range with the rows of
// native DoExchange, the summary on the last batch, its rows counted from
// the spine's first (base is the range's).
func (s *Server) doGetNative(ctx context.Context, stream arrowflight.FlightService_DoGetServer, w work, base int64) error {
	defer w.release()
	ctx = trace.With(ctx, w.trace)
	a := s.newNativeStream(ctx, stream, w.q.plan, w.q.answer, base)
	defer a.close()
	opts := runOptions(w.q.st, s.opts.Now(), w.trace)
	for _, in := range w.inputs {
		if err := s.runChunked(ctx, w.q.plan, in, opts, a.add); err != nil {
			return err
		}
	}
	return a.finish()
}
