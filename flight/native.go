package flight

// The native feature query: a DoExchange whose FlightDescriptor carries a
// JSON command (docs/NATIVE.md) and whose input stream carries the input
// rows. It answers every feature of every row in one round trip, with no
// SQL in between: what the SDKs' query, query_bulk and offline_query use.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/flight/ipcbatch"
	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// NativeSummary is the JSON app_metadata of the last record batch of an
// answer.
type NativeSummary struct {
	Rows   int64              `json:"rows"`
	Errors []NativeOutputFail `json:"errors,omitempty"`
	Plan   string             `json:"plan,omitempty"`
	// NullKeys are the input rows (from 0, across batches) whose key is
	// null: they name no entity, and their outputs are null.
	NullKeys []int64 `json:"null_keys,omitempty"`
}

// NativeOutputFail is an output that could not be computed (Partial), in
// every row, or in the rows Rows names (from 0, across batches).
type NativeOutputFail struct {
	Output   string `json:"output"`
	Resolver string `json:"resolver,omitempty"`
	Kind     string `json:"kind"`
	Message  string `json:"message"`
	// Rows are the input rows that failed when only some did (from 0,
	// across the input batches); absent: all of them.
	Rows []int64 `json:"rows,omitempty"`
}

// HitSuffix ends the name of an output's cache-hit column.
const HitSuffix = ".__hit__"

// exchangeService adds the native feature query to the Flight SQL service,
// whose DoExchange flightsql leaves unimplemented.
type exchangeService struct {
	arrowflight.FlightServer
	s *Server
}

func (x exchangeService) DoExchange(stream arrowflight.FlightService_DoExchangeServer) error {
	return x.s.doExchange(stream)
}

func invalidArg(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// expressions is the Options.Expressions of a server, or one that answers
// that this server reads none.
func expressions(e native.Expressions) native.Expressions {
	if e != nil {
		return e
	}
	return func(*features.Class, string) (expr.Node, error) {
		return nil, statement.Errorf(statement.Unsupported, expr.Pos{}, "this server reads no `_` expressions: name features")
	}
}

// runOptions are the options of one run of st's plan: at st's time, or
// now, under the request's trace id.
func runOptions(st *statement.Statement, now time.Time, trace string) planner.RunOptions {
	o := planner.RunOptions{Now: now, Staleness: st.Options.Staleness, Meta: st.Options.Meta, Partial: st.Options.Partial, TraceID: trace,
		Materialized: st.Options.Materialized, AlignWindows: st.Options.AlignWindows, FromLog: st.Options.FromLog, Recompute: st.Options.Recompute}
	if !st.Options.Now.IsZero() {
		o.Now = st.Options.Now
	}
	return o
}

// answerSchemas are the wire schemas of a plan's answer: all of it (the
// outputs, then, with meta, one hit column per output) and the outputs
// alone. Remembered per plan: building them (arrow.NewSchema indexes every
// field by name) cost as much as the JSON decoding.
type answerSchemas struct {
	all, outputs *arrow.Schema
	// header is all's IPC schema message (nil if it has a dictionary).
	header []byte
	// info is all serialized as FlightInfo and GetSchema carry it.
	info []byte
}

// answerKey names the answer schemas of a plan by its result schema, which
// the plan owns: the key holds a schema alive, never a plan the planner's
// cache let go.
type answerKey struct {
	schema *arrow.Schema
	meta   bool
}

// readNative reads the native query of in's first message's descriptor
// and the schema of the Arrow stream that follows (what: the stream's
// rows, in errors); the caller reads the rows, then releases the reader.
func (s *Server) readNative(ctx context.Context, in *peeked, what string) (*statement.Statement, *arrowflight.Reader, error) {
	cmd := in.first.GetFlightDescriptor().GetCmd()
	rdr, err := arrowflight.NewRecordReader(in, ipc.WithAllocator(s.opts.Mem))
	if err != nil {
		if _, cerr := native.Decode(cmd); cerr != nil {
			return nil, nil, cerr // the command's error first: it is the one to fix first
		}
		return nil, nil, invalidArg("native query: the %s must follow as an Arrow stream (a schema, then record batches): %v", what, err)
	}
	_, sp := trace.Start(ctx, s.tracer, "parse native")
	nr := s.repoOf(ctx).native
	st, err := nr.Read(cmd, rdr.Schema())
	var own error
	if vis := visibleTo(ctx); vis != nil && (err != nil || native.NamesHidden(st, vis)) {
		own = ownError(err, nr.ErrorAsSeen(cmd, rdr.Schema(), vis))
	}
	switch {
	case own != nil:
		st, err = nil, own
	case err != nil:
		err = s.restrict(ctx, err)
	}
	trace.End(sp, err)
	if err != nil {
		rdr.Release()
		return nil, nil, err
	}
	return st, rdr, nil
}

// planNative plans a native statement for the caller of ctx, who must be
// allowed its classes, with the schemas of its answer stream.
func (s *Server) planNative(ctx context.Context, st *statement.Statement) (*planner.Plan, answerSchemas, error) {
	plan, err := s.prepare(ctx, st)
	if err != nil {
		return nil, answerSchemas{}, s.restrict(ctx, err)
	}
	if err := s.authorize(ctx, plan.Classes()...); err != nil {
		// An output of a class the caller may read is refused by its own
		// name, not by the hidden class it reaches.
		if s.canRead(ctx, st.Class.Table) {
			if ferr := s.deniedFeature(ctx, &query{st: st}); ferr != nil {
				return nil, answerSchemas{}, ferr
			}
		}
		return nil, answerSchemas{}, err
	}
	out := s.answerSchema(plan.Schema(), st.Options.Meta)
	if out.header == nil {
		return nil, answerSchemas{}, status.Errorf(codes.Internal, "native query: the answer schema has a dictionary column, which the answer stream does not encode: %s", out.all)
	}
	return plan, out, nil
}

// answerSchema is the answer schemas of plan (with hit columns when meta),
// remembered while the plan is used.
func (s *Server) answerSchema(schema *arrow.Schema, meta bool) answerSchemas {
	k := answerKey{schema, meta}
	if a, ok := s.answers.Get(k); ok {
		return a
	}
	out := wireSchema(schema)
	a := answerSchemas{all: out, outputs: out}
	if meta {
		fs := out.Fields()
		for _, f := range schema.Fields() {
			fs = append(fs, arrow.Field{Name: f.Name + HitSuffix, Type: arrow.FixedWidthTypes.Boolean, Nullable: false})
		}
		a.all = arrow.NewSchema(fs, nil)
	}
	a.header = schemaHeader(a.all)
	a.info = arrowflight.SerializeSchema(a.all, s.opts.Mem)
	// The schemas, their messages, and the fields' names a few times over.
	size := int64(3*len(a.info)+len(a.header)) + 512
	s.answers.Add(k, a, size)
	return a
}

func hasDictionary(f arrow.Field) bool {
	if f.Type.ID() == arrow.DICTIONARY {
		return true
	}
	n, ok := f.Type.(arrow.NestedType)
	return ok && slices.ContainsFunc(n.Fields(), hasDictionary)
}

// peeked replays the first FlightData of a stream, which had to be read
// for its descriptor.
type peeked struct {
	first  *arrowflight.FlightData
	stream interface {
		Recv() (*arrowflight.FlightData, error)
	}
}

func (p *peeked) Recv() (*arrowflight.FlightData, error) {
	if p.first != nil {
		fd := p.first
		p.first = nil
		return fd, nil
	}
	return p.stream.Recv()
}

func (s *Server) doExchange(stream arrowflight.FlightService_DoExchangeServer) (err error) {
	ctx := stream.Context()
	ctx, q := s.beginQuery(ctx, PathNative)
	defer func() { q.end(ctx, err) }()
	done, err := s.admit(ctx)
	if err != nil {
		return err
	}
	defer done()
	first, err := stream.Recv()
	if err == io.EOF {
		return invalidArg("DoExchange: empty stream: send the descriptor with the native query, then the input rows")
	}
	if err != nil {
		return err
	}
	desc := first.GetFlightDescriptor()
	if desc == nil || desc.GetType() != arrowflight.DescriptorCMD {
		return invalidArg(`DoExchange: the first message must carry a CMD descriptor holding a native feature query, {"query": {...}} (docs/NATIVE.md)`)
	}
	st, rdr, err := s.readNative(ctx, &peeked{first: first, stream: stream}, "input rows")
	if err != nil {
		return err
	}
	defer rdr.Release()
	if err := s.checkStatement(st); err != nil {
		return err
	}
	id, err := s.traceID(ctx)
	if err != nil {
		return err
	}
	q.trace = id
	ctx = trace.With(ctx, id)
	plan, out, err := s.planNative(ctx, st)
	if err != nil {
		return err
	}
	q.plan = plan
	if st.Options.Explain {
		w := newAnswerWriter(stream, s.opts.Mem, out.all, out.header)
		defer w.close()
		summary := NativeSummary{Plan: plan.Explain()}
		var analyzed strings.Builder
		for rdr.Next() { // without analyze the rows are only read to the end
			if !st.Options.Analyze {
				continue
			}
			in, err := st.BindInputs(ctx, s.opts.Mem, rdr.RecordBatch())
			if err != nil {
				return err
			}
			opts := runOptions(st, s.opts.Now(), id)
			opts.Analyze = true
			res, err := plan.Run(ctx, in, opts)
			in.Release()
			if err != nil {
				return err
			}
			analyzed.WriteString(plan.ExplainAnalyze(res.Analysis))
			res.Release()
		}
		if err := rdr.Err(); err != nil {
			return invalidArg("native query: reading the input rows: %v", err)
		}
		if st.Options.Analyze {
			summary.Plan = analyzed.String()
		}
		return s.finish(w, nil, summary)
	}
	a := s.newNativeStream(ctx, stream, plan, out, 0)
	defer a.close()
	opts := runOptions(st, s.opts.Now(), id)
	co := s.coalescer(func(in arrow.RecordBatch) error {
		defer in.Release()
		return s.runChunked(ctx, plan, in, opts, a.add)
	})
	defer co.release()
	rows := int64(0)
	for rdr.Next() {
		if rows += rdr.RecordBatch().NumRows(); s.checkInputRows(rows) != nil {
			return s.checkInputRows(rows)
		}
		in, err := st.BindInputs(ctx, s.opts.Mem, rdr.RecordBatch())
		if err != nil {
			return err
		}
		if err := co.add(in); err != nil {
			return err
		}
	}
	if err := rdr.Err(); err != nil {
		return invalidArg("native query: reading the input rows: %v", err)
	}
	if err := co.flush(); err != nil {
		return err
	}
	return a.finish()
}

// nativeStream streams the results of a native query's runs as they come,
// gathering its summary (failed outputs, null keys), which rides on the
// last batch: one batch is held back to carry it.
type nativeStream struct {
	s       *Server
	ctx     context.Context
	plan    *planner.Plan
	out     answerSchemas
	w       *answerWriter
	budget  *answerBudget
	summary NativeSummary
	// base is the input row of the answer's first row (a spine range's
	// first), from which the summary counts rows.
	base   int64
	failed map[int]int // output → its entry in summary.Errors
	// runs counts the runs added, whole the runs each failed output failed
	// in every row of: an output that failed wholly in every run is
	// reported without rows (all of them), else by row.
	runs    int
	whole   map[int]int
	pending arrow.RecordBatch
}

func (s *Server) newNativeStream(ctx context.Context, stream interface {
	Send(*arrowflight.FlightData) error
}, plan *planner.Plan, out answerSchemas, base int64) *nativeStream {
	return &nativeStream{s: s, ctx: ctx, plan: plan, out: out, w: newAnswerWriter(stream, s.opts.Mem, out.all, out.header),
		budget: s.answerBudget(), base: base, failed: map[int]int{}, whole: map[int]int{}}
}

// add streams res, which it releases.
func (a *nativeStream) add(res *planner.Result) error {
	defer res.Release()
	at := a.base + a.summary.Rows
	a.runs++
	for _, e := range res.Errors {
		i, ok := a.failed[e.Output]
		if !ok {
			i = len(a.summary.Errors)
			a.failed[e.Output] = i
			fail := outputFail(a.plan, e)
			fail.Message = a.s.repoOf(a.ctx).relative(fail.Message) // a Python resolver's failure names its file
			a.summary.Errors = append(a.summary.Errors, fail)
		}
		rows := &a.summary.Errors[i].Rows
		if len(e.Rows) == 0 { // every row of this run: listed, unless every run fails so (finish)
			a.whole[e.Output]++
			for r := int64(0); r < res.Record.NumRows(); r++ {
				*rows = append(*rows, at+r)
			}
		}
		for _, row := range e.Rows {
			*rows = append(*rows, at+int64(row))
		}
	}
	for _, row := range res.NullKeys {
		a.summary.NullKeys = append(a.summary.NullKeys, at+int64(row))
	}
	ans, err := a.s.answer(res, a.out)
	if err != nil {
		return err
	}
	defer ans.Release()
	if err := a.budget.take(ans); err != nil {
		return err
	}
	a.summary.Rows += ans.NumRows()
	per := rowsPerChunk(ans, a.s.opts.ChunkBytes)
	for i := int64(0); i < ans.NumRows(); i += per {
		if a.pending != nil {
			err := a.w.write(a.pending, nil)
			a.pending.Release()
			a.pending = nil
			if err != nil {
				return err
			}
		}
		a.pending = ans.NewSlice(i, min(i+per, ans.NumRows()))
	}
	return nil
}

// finish writes the held-back batch with the summary.
func (a *nativeStream) finish() error {
	for out, n := range a.whole {
		if n == a.runs {
			a.summary.Errors[a.failed[out]].Rows = nil
		}
	}
	last := a.pending
	a.pending = nil
	return a.s.finish(a.w, last, a.summary)
}

func (a *nativeStream) close() {
	if a.pending != nil {
		a.pending.Release()
	}
	a.w.close()
}

// finish writes the last batch (an empty one when there is none, so the
// summary always has a batch to ride on) with the summary as app_metadata.
func (s *Server) finish(w *answerWriter, last arrow.RecordBatch, summary NativeSummary) error {
	if last == nil {
		b := array.NewRecordBuilder(s.opts.Mem, w.schema)
		last = b.NewRecordBatch()
		b.Release()
	}
	defer last.Release()
	meta, err := json.Marshal(summary)
	if err != nil {
		return err
	}
	return w.write(last, meta)
}

// answerWriter streams an answer as Flight data: the schema message, then
// record batch messages. arrow-go's flight writer would build the schema's
// flatbuffer again for every exchange, a quarter of the server's CPU for a
// one-entity answer; here it is encoded once per plan (answerSchemas), and
// batches go through ipcbatch, which reuses its flatbuffer builder and
// body. Answers hold no dictionaries (wireType decodes them), so there are
// no dictionary batches to send.
type answerWriter struct {
	stream interface {
		Send(*arrowflight.FlightData) error
	}
	mem    memory.Allocator
	schema *arrow.Schema
	header []byte // the schema message
	began  bool
	enc    *encoder
}

// encoder is an ipcbatch.Encoder with its body buffer, pooled across
// answers: their flatbuffer builder and body have grown to an answer's
// size already.
type encoder struct {
	ipcbatch.Encoder
	body []byte
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// newAnswerWriter returns a writer of answers of schema, whose schema
// message is header. The caller closes it.
func newAnswerWriter(stream interface {
	Send(*arrowflight.FlightData) error
}, mem memory.Allocator, schema *arrow.Schema, header []byte) *answerWriter {
	return &answerWriter{stream: stream, mem: mem, schema: schema, header: header, enc: encoders.Get().(*encoder)}
}

// close returns the writer's encoder to the pool; the writer is not used
// after.
func (w *answerWriter) close() {
	if cap(w.enc.body) > 1<<20 { // a bulk answer's: not kept around
		w.enc.body = nil
	}
	encoders.Put(w.enc)
	w.enc = nil
}

// write sends rec. The message's header and body are reused by the next
// write: gRPC marshals a message before Send returns (and fletch installs
// no stats handler that would read it later).
func (w *answerWriter) write(rec arrow.RecordBatch, appMetadata []byte) error {
	if !w.began {
		w.began = true
		if err := w.stream.Send(&arrowflight.FlightData{DataHeader: w.header}); err != nil {
			return err
		}
	}
	header, body, ok := w.enc.Encode(rec, w.enc.body[:0])
	if !ok { // a nested column: arrow-go's encoder
		p, err := ipc.GetRecordBatchPayload(rec, ipc.WithAllocator(w.mem))
		if err != nil {
			return err
		}
		defer p.Release()
		meta := p.Meta()
		defer meta.Release()
		buf := bytes.NewBuffer(body)
		if err := p.SerializeBody(buf); err != nil {
			return err
		}
		header, body = meta.Bytes(), buf.Bytes()
	}
	w.enc.body = body
	return w.stream.Send(&arrowflight.FlightData{DataHeader: header, DataBody: body, AppMetadata: appMetadata})
}

// answer is a run's result on the wire: outputs converted to wire types,
// then the hit columns.
func (s *Server) answer(res *planner.Result, schema answerSchemas) (arrow.RecordBatch, error) {
	if schema.all == schema.outputs { // no hit columns
		return toWire(s.opts.Mem, res.Record, schema.all)
	}
	wire, err := toWire(s.opts.Mem, res.Record, schema.outputs)
	if err != nil {
		return nil, err
	}
	defer wire.Release()
	cols := append(append([]arrow.Array{}, wire.Columns()...), res.Hits...)
	return array.NewRecordBatch(schema.all, cols, wire.NumRows()), nil
}

func outputFail(plan *planner.Plan, e planner.OutputError) NativeOutputFail {
	kind := "internal"
	switch e.Kind {
	case statement.InvalidInput:
		kind = "invalid_input"
	case statement.Unsupported:
		kind = "unsupported"
	case statement.SourceFailure:
		kind = "source_failure"
	case statement.ResourceExhausted:
		kind = "resource_exhausted"
	}
	return NativeOutputFail{Output: plan.Schema().Field(e.Output).Name, Resolver: e.Resolver, Kind: kind, Message: e.Message}
}
