package flight

// The native feature query: a DoExchange whose FlightDescriptor carries a
// JSON command (docs/NATIVE.md) and whose input stream carries the input
// rows. It answers every feature of every row in one round trip, with no
// SQL in between: what the SDKs' query, query_bulk and offline_query use.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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
	"github.com/fletch-engine/fletch/features/pyload"
	"github.com/fletch-engine/fletch/flight/ipcbatch"
	"github.com/fletch-engine/fletch/flight/sqlfront"
	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/planner"
)

// NativeCommand is the JSON a native feature query's FlightDescriptor
// carries (type CMD). The top-level key names the command, so more can be
// added without ambiguity.
type NativeCommand struct {
	Query *NativeQuery `json:"query"`
}

// NativeQuery is one feature query. See docs/NATIVE.md for the meaning of
// each field; the zero value of every optional field is the default.
type NativeQuery struct {
	// Class is the feature class (table or Python name). Empty means the
	// class the input columns are qualified by (`user.id`).
	Class string `json:"class,omitempty"`
	// Outputs are feature paths (`full_name`, `user.full_name`,
	// `item.title`, `review_count__604800__`, `review_count[7d]`) or `_`
	// expressions (`F.lower(_.first_name)`). Empty means every scalar
	// feature of the class.
	Outputs []string `json:"outputs,omitempty"`
	// Now is the evaluation time of rows without their own __as_of__
	// (RFC 3339); empty is the server's clock.
	Now string `json:"now,omitempty"`
	// Staleness overrides max_staleness: `class.feature` or "*" to a
	// duration ("0s" always computes, "infinity" accepts any age).
	Staleness map[string]string `json:"staleness,omitempty"`
	// Meta adds a `<output>.__hit__` boolean column per output: whether each
	// cell came from the online store.
	Meta bool `json:"meta,omitempty"`
	// Partial nulls the outputs whose source fails and reports them in the
	// summary instead of failing the query.
	Partial bool `json:"partial,omitempty"`
	// Explain answers the plan (in the summary) instead of running it.
	Explain bool `json:"explain,omitempty"`
}

// NativeSummary is the JSON app_metadata of the last record batch of an
// answer.
type NativeSummary struct {
	Rows   int64              `json:"rows"`
	Errors []NativeOutputFail `json:"errors,omitempty"`
	Plan   string             `json:"plan,omitempty"`
}

// NativeOutputFail is an output that could not be computed (Partial).
type NativeOutputFail struct {
	Output   string `json:"output"`
	Resolver string `json:"resolver,omitempty"`
	Kind     string `json:"kind"`
	Message  string `json:"message"`
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

// decodeNative reads a command strictly: an unknown field is a typo worth
// naming, not something to ignore. A service sends the same few commands
// again and again, so decoded ones are remembered (the JSON decoder was 7%
// of a cached one-entity exchange); the result is shared and read-only.
func decodeNative(cmd []byte) (*NativeQuery, error) {
	return decoded.get(string(cmd), func() (*NativeQuery, error) { return decodeCommand(cmd) })
}

var decoded = memo[string, *NativeQuery]{limit: 1024}

func decodeCommand(cmd []byte) (*NativeQuery, error) {
	if len(bytes.TrimSpace(cmd)) == 0 || bytes.TrimSpace(cmd)[0] != '{' {
		return nil, invalidArg(`DoExchange: the descriptor must be a CMD holding a native feature query, {"query": {...}} (docs/NATIVE.md)`)
	}
	var c NativeCommand
	d := json.NewDecoder(bytes.NewReader(cmd))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, invalidArg("native query: invalid JSON at byte %d: %v", se.Offset, se)
		case errors.As(err, &te):
			return nil, invalidArg("native query: %q at byte %d must be a %s, not a JSON %s", te.Field, te.Offset, te.Type, te.Value)
		}
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return nil, invalidArg("native query: unknown field %q%s", f, suggest.DidYouMean(f, jsonFields()))
		}
		return nil, invalidArg("native query: %v", err)
	}
	if d.More() {
		return nil, invalidArg("native query: one JSON object expected, found more after it")
	}
	if c.Query == nil {
		return nil, invalidArg(`native query: missing "query": the command is {"query": {"outputs": [...], ...}}`)
	}
	return c.Query, nil
}

func jsonFields() []string {
	return []string{"query", "class", "outputs", "now", "staleness", "meta", "partial", "explain"}
}

// nativeRequest is a decoded command checked against the graph.
type nativeRequest struct {
	q       *NativeQuery
	class   *features.Class
	outputs []planner.Output
	opts    planner.RunOptions
}

// classOf finds the query's class: named, or the qualifier of the inputs.
func (s *Server) classOf(q *NativeQuery, inputs *arrow.Schema) (*features.Class, error) {
	name := q.Class
	if name == "" {
		for _, f := range inputs.Fields() {
			if c, _, ok := strings.Cut(f.Name, "."); ok {
				name = c
				break
			}
		}
	}
	if name == "" {
		return nil, invalidArg(`native query: name the class ("class": "user") or qualify the input columns ("user.id")`)
	}
	c := s.graph.Class(name)
	if c == nil {
		return nil, invalidArg("native query: unknown feature class %q%s", name, suggest.DidYouMean(name, s.graph.ClassNames()))
	}
	return c, nil
}

// unqualified strips the class qualifier from a name (`user.full_name` on
// a user query is `full_name`), unless the class has a feature of that name.
func unqualified(c *features.Class, name string) string {
	for _, q := range []string{c.Table, c.Name} {
		if rest, ok := strings.CutPrefix(name, q+"."); ok && c.Feature(q) == nil {
			return rest
		}
	}
	return name
}

var (
	featurePath = regexp.MustCompile(`^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$`)
	// windowPath is the SQL surface's `review_count[7d]`.
	windowPath = regexp.MustCompile(`^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\[(\w+)\]$`)
)

// output reads one requested output: a feature path, or an expression read
// by the feature loader's own parser.
func (s *Server) output(c *features.Class, i int, text string) (planner.Output, error) {
	src := strings.TrimSpace(text)
	if featurePath.MatchString(src) {
		return planner.Output{Expr: &expr.Ref{Path: strings.Split(unqualified(c, src), ".")}, Name: text}, nil
	}
	if m := windowPath.FindStringSubmatch(src); m != nil {
		src = fmt.Sprintf("_.%s[%q]", unqualified(c, m[1]), m[2])
	}
	x, err := pyload.ParseExpr(src)
	if err == nil {
		x, err = pyload.LinkExpr(s.graph, c, x)
	}
	if err != nil {
		return planner.Output{}, invalidArg("native query: outputs[%d] %q: %v", i, text, err)
	}
	name := text
	if a, ok := x.(*expr.Alias); ok {
		name = a.Name
	}
	return planner.Output{Expr: x, Name: name}, nil
}

// request checks q against the graph and the input schema.
func (s *Server) request(q *NativeQuery, inputs *arrow.Schema) (*nativeRequest, error) {
	c, err := s.classOf(q, inputs)
	if err != nil {
		return nil, err
	}
	r := &nativeRequest{q: q, class: c, opts: planner.RunOptions{Meta: q.Meta, Partial: q.Partial}}
	if len(q.Outputs) == 0 {
		for _, f := range sqlfront.ScalarFeatures(c) {
			r.outputs = append(r.outputs, planner.Output{Expr: &expr.Ref{Path: []string{f.Name}}, Name: f.Name})
		}
	}
	for i, text := range q.Outputs {
		o, err := s.output(c, i, text)
		if err != nil {
			return nil, err
		}
		r.outputs = append(r.outputs, o)
	}
	if q.Now != "" {
		if r.opts.Now, err = sqlfront.ParseTime(q.Now); err != nil {
			return nil, invalidArg("native query: now: %v (use RFC 3339, e.g. 2026-03-01T12:00:00Z)", err)
		}
	} else {
		r.opts.Now = s.opts.Now()
	}
	if r.opts.Staleness, err = s.staleness(q.Staleness); err != nil {
		return nil, err
	}
	return r, nil
}

// staleness reads the overrides: keys are `class.feature` (windows by their
// FQN) or "*"; values durations or "infinity".
func (s *Server) staleness(in map[string]string) (map[string]time.Duration, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]time.Duration, len(in))
	for k, v := range in {
		if k != "*" {
			cname, fname, ok := strings.Cut(k, ".")
			c := s.graph.Class(cname)
			switch {
			case !ok:
				return nil, invalidArg(`native query: staleness key %q: expected class.feature (user.full_name) or "*"`, k)
			case c == nil:
				return nil, invalidArg("native query: staleness key %q: unknown feature class %q%s", k, cname, suggest.DidYouMean(cname, s.graph.ClassNames()))
			case c.Feature(fname) == nil:
				return nil, invalidArg("native query: staleness key %q: %s has no feature %q%s", k, c.Table, fname, suggest.DidYouMean(fname, c.FeatureNames()))
			}
			k = c.Table + "." + c.Feature(fname).Name
		}
		st, err := features.ParseStaleness(v)
		if err != nil {
			return nil, invalidArg("native query: staleness of %s: %v", k, err)
		}
		if st.Infinite {
			out[k] = -1
		} else {
			out[k] = st.Duration
		}
	}
	return out, nil
}

// inputSchema renames the input columns to the class's feature names.
func inputSchema(c *features.Class, in *arrow.Schema) *arrow.Schema {
	fs := in.Fields()
	for i := range fs {
		fs[i].Name = unqualified(c, fs[i].Name)
	}
	return arrow.NewSchema(fs, nil)
}

// prepare plans the request; a planning error names the output it is about.
func (s *Server) prepare(r *nativeRequest, inputs *arrow.Schema) (*planner.Plan, error) {
	shape := planner.Shape{Class: r.class.Table, Inputs: inputs.Fields(), Outputs: r.outputs}
	plan, err := s.engine.Prepare(shape)
	if err == nil || planner.KindOf(err) != planner.InvalidInput || len(r.outputs) < 2 {
		return plan, err
	}
	// Which output, if any? Only the error path pays for finding out.
	none := shape
	none.Outputs = nil
	if _, ierr := s.engine.Prepare(none); ierr != nil {
		return nil, err // the inputs, not an output
	}
	for i, o := range r.outputs {
		one := shape
		one.Outputs = []planner.Output{o}
		if _, oerr := s.engine.Prepare(one); oerr != nil {
			return nil, invalidArg("native query: outputs[%d] %q: %v", i, o.Name, oerr)
		}
	}
	return nil, err
}

// answerSchemas are the wire schemas of a plan's answer: all of it (the
// outputs, then, with meta, one hit column per output) and the outputs
// alone. Remembered per plan: building them (arrow.NewSchema indexes every
// field by name) cost as much as the JSON decoding.
type answerSchemas struct {
	all, outputs *arrow.Schema
	// header is all's IPC schema message (nil if it has a dictionary).
	header []byte
}

type answerKey struct {
	plan *planner.Plan
	meta bool
}

var answers = memo[answerKey, answerSchemas]{limit: 1024}

func answerSchema(plan *planner.Plan, meta bool) answerSchemas {
	a, _ := answers.get(answerKey{plan, meta}, func() (answerSchemas, error) {
		out := wireSchema(plan.Schema())
		a := answerSchemas{all: out, outputs: out}
		if meta {
			fs := out.Fields()
			for _, f := range plan.Schema().Fields() {
				fs = append(fs, arrow.Field{Name: f.Name + HitSuffix, Type: arrow.FixedWidthTypes.Boolean, Nullable: false})
			}
			a.all = arrow.NewSchema(fs, nil)
		}
		a.header = schemaHeader(a.all)
		return a, nil
	})
	return a
}

func hasDictionary(f arrow.Field) bool {
	if f.Type.ID() == arrow.DICTIONARY {
		return true
	}
	n, ok := f.Type.(arrow.NestedType)
	return ok && slices.ContainsFunc(n.Fields(), hasDictionary)
}

// memo remembers a pure function's results by key, up to limit entries;
// full, it starts over, so a caller sending ever new keys costs a bounded
// amount of memory.
type memo[K comparable, V any] struct {
	mu    sync.RWMutex
	m     map[K]V
	limit int
}

func (c *memo[K, V]) get(k K, f func() (V, error)) (V, error) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := f()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(c.m) >= c.limit || c.m == nil {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v, nil
}

// peeked replays the first FlightData of a stream, which had to be read
// for its descriptor.
type peeked struct {
	first  *arrowflight.FlightData
	stream arrowflight.FlightService_DoExchangeServer
}

func (p *peeked) Recv() (*arrowflight.FlightData, error) {
	if p.first != nil {
		fd := p.first
		p.first = nil
		return fd, nil
	}
	return p.stream.Recv()
}

func (s *Server) doExchange(stream arrowflight.FlightService_DoExchangeServer) error {
	ctx := stream.Context()
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
	q, err := decodeNative(desc.GetCmd())
	if err != nil {
		return err
	}
	rdr, err := arrowflight.NewRecordReader(&peeked{first: first, stream: stream}, ipc.WithAllocator(s.opts.Mem))
	if err != nil {
		return invalidArg("native query: the input rows must follow as an Arrow stream (a schema, then record batches): %v", err)
	}
	defer rdr.Release()
	req, err := s.request(q, rdr.Schema())
	if err != nil {
		return err
	}
	if req.opts.TraceID, err = s.traceID(ctx); err != nil {
		return err
	}
	schema := inputSchema(req.class, rdr.Schema())
	plan, err := s.prepare(req, schema)
	if err != nil {
		return s.restrict(ctx, err)
	}
	if err := s.authorize(ctx, plan.Classes()...); err != nil {
		return err
	}
	out := answerSchema(plan, q.Meta)
	if out.header == nil {
		return status.Errorf(codes.Internal, "native query: the answer schema has a dictionary column, which the answer stream does not encode: %s", out.all)
	}
	w := newAnswerWriter(stream, s.opts.Mem, out.all, out.header)
	defer w.close()
	summary := NativeSummary{}
	if q.Explain {
		summary.Plan = plan.Explain()
		for rdr.Next() { // the rows are not needed, only read to the end
		}
		if err := rdr.Err(); err != nil {
			return invalidArg("native query: reading the input rows: %v", err)
		}
		return s.finish(w, nil, summary)
	}
	var pending arrow.RecordBatch // held back to carry the summary
	defer func() {
		if pending != nil {
			pending.Release()
		}
	}()
	failed := map[int]bool{}
	for rdr.Next() {
		in := array.NewRecordBatch(schema, rdr.RecordBatch().Columns(), rdr.RecordBatch().NumRows())
		res, err := plan.Run(ctx, in, req.opts)
		in.Release()
		if err != nil {
			return err
		}
		for _, e := range res.Errors {
			if !failed[e.Output] {
				failed[e.Output] = true
				summary.Errors = append(summary.Errors, outputFail(plan, e))
			}
		}
		ans, err := s.answer(res, out)
		res.Release()
		if err != nil {
			return err
		}
		summary.Rows += ans.NumRows()
		per := rowsPerChunk(ans, s.opts.ChunkBytes)
		for i := int64(0); i < ans.NumRows(); i += per {
			if pending != nil {
				err := w.write(pending, nil)
				pending.Release()
				pending = nil
				if err != nil {
					ans.Release()
					return err
				}
			}
			pending = ans.NewSlice(i, min(i+per, ans.NumRows()))
		}
		ans.Release()
	}
	if err := rdr.Err(); err != nil {
		return invalidArg("native query: reading the input rows: %v", err)
	}
	last := pending
	pending = nil
	return s.finish(w, last, summary)
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
	case planner.InvalidInput:
		kind = "invalid_input"
	case planner.Unsupported:
		kind = "unsupported"
	case planner.SourceFailure:
		kind = "source_failure"
	}
	return NativeOutputFail{Output: plan.Schema().Field(e.Output).Name, Resolver: e.Resolver, Kind: kind, Message: e.Message}
}
