// Package flight is fletch's transport: the Arrow Flight SQL server.
// Each call is decoded, handed to its front end (package sql for SQL text,
// substrait for Substrait plans, native for the native feature query's
// DoExchange), which makes a statement; the planner plans and runs it, and
// the answer is streamed back as Arrow record batches. The catalogue
// (catalogs, schemas, tables, SQL info) is served from the feature graph;
// errors become gRPC status codes.
//
// It knows the wire protocol, the statement type and the planner's API, and
// nothing of how queries are parsed, how features are computed or where
// their data lives: it parses nothing itself and links no definition
// parser (the native front end is given one: Options.Expressions).
package flight

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	lru "github.com/fletch-engine/fletch/internal/lru"
	oteltrace "go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/relational"
	"github.com/fletch-engine/fletch/statement"
)

// Options tune a Server. The zero value is usable.
type Options struct {
	// Mem allocates the records the server builds; nil is the Go allocator.
	Mem memory.Allocator
	// MaxRecvMsgSize bounds one incoming gRPC message; parameter batches of
	// many rows need more than gRPC's 4 MiB default. Default 64 MiB.
	MaxRecvMsgSize int
	// ChunkBytes is the target size of one outgoing record batch; results
	// are sliced to stay well under the clients' 4 MiB message limit.
	// Default 1 MiB.
	ChunkBytes int64
	// MaxPrepared bounds the prepared statements kept; the least recently
	// used go first. Default 4096.
	MaxPrepared int
	// PreparedTTL drops prepared statements unused for this long.
	// Default 1 hour.
	PreparedTTL time.Duration
	// Expressions reads the `_` expressions of native queries' outputs
	// (native.Expressions); nil answers them Unimplemented, feature paths
	// still work.
	Expressions native.Expressions
	// CacheEntries and CacheBytes bound what the front ends remember of the
	// queries they read and the answer schemas of plans (default: the
	// plan cache's entries, and half its bytes).
	CacheEntries int
	CacheBytes   int64
	// Version is reported as the server version in SqlInfo.
	Version string
	// Now is the clock of queries without __as_of__; nil is time.Now.
	Now func() time.Time
	// Auth, when set, requires a token on every call and restricts what
	// each token reads (flight/auth.go); nil serves everyone.
	Auth *auth.Verifier
	// TLS, when set, serves over TLS.
	TLS *tls.Config
	// GRPCOptions are added to the server's own.
	GRPCOptions []grpc.ServerOption
	// Relational runs the SQL that goes beyond a feature lookup; nil: the
	// server makes one over its engine (and closes it when it stops).
	Relational *relational.Engine
	// Observer, when set, is told about every call and query (metrics).
	Observer Observer
	// Recorder, when set, is told about each finished query with its
	// trace id and plan (a console's slowest queries).
	Recorder Recorder
	// Limits bound what one call may ask (limits.go).
	Limits Limits
	// SpineChunkRows are the input rows planned and run at once (a bigger
	// input is run chunk by chunk, each answer streamed before the next
	// chunk runs); SpineEndpointRows splits a bound spine of more rows
	// into endpoints of that many (negative: one endpoint). Defaults:
	// DefaultSpineChunkRows, DefaultSpineEndpointRows (spine.go).
	SpineChunkRows    int
	SpineEndpointRows int
	// TracerProvider, when set, traces queries: a span per query (under
	// the caller's W3C traceparent when it sends one), with its parse and
	// plan below it (the engine adds its run's stages). Its trace id is
	// the query's trace id (trace.go). nil: no tracing.
	TracerProvider oteltrace.TracerProvider
}

func (o *Options) defaults() {
	o.Limits.defaults()
	if o.Mem == nil {
		o.Mem = memory.NewGoAllocator()
	}
	if o.MaxRecvMsgSize == 0 {
		o.MaxRecvMsgSize = 64 << 20
	}
	if o.ChunkBytes == 0 {
		o.ChunkBytes = 1 << 20
	}
	if o.SpineChunkRows <= 0 {
		o.SpineChunkRows = DefaultSpineChunkRows
	}
	if o.SpineEndpointRows == 0 {
		o.SpineEndpointRows = DefaultSpineEndpointRows
	}
	if o.MaxPrepared == 0 {
		o.MaxPrepared = 4096
	}
	if o.PreparedTTL == 0 {
		o.PreparedTTL = time.Hour
	}
	if o.CacheEntries == 0 {
		o.CacheEntries = planner.DefaultPlanEntries
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = planner.DefaultPlanBytes / 2
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is the Flight SQL server over one planner engine.
type Server struct {
	flightsql.BaseServer
	// cur is the repository answering new calls (reload.go).
	cur      atomic.Pointer[repo]
	opts     Options
	prepared *preparedStore
	answers  *lru.Cache[answerKey, answerSchemas]
	grpc     *grpc.Server
	// admission counts the queries running (Limits).
	admission admission
	// tracer is nil unless Options.TracerProvider is set.
	tracer oteltrace.Tracer
}

// NewServer returns a server answering queries with engine.
func NewServer(engine *planner.Engine, opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:     opts,
		prepared: newPreparedStore(opts.MaxPrepared, opts.PreparedTTL, opts.Now),
		answers:  lru.New[answerKey, answerSchemas](opts.CacheEntries, opts.CacheBytes/4, nil),
	}
	if opts.TracerProvider != nil {
		s.tracer = opts.TracerProvider.Tracer("github.com/fletch-engine/fletch/flight")
	}
	s.cur.Store(s.newRepo(engine, opts.Auth, opts.Expressions, opts.Relational))
	s.Alloc = opts.Mem
	s.registerSqlInfo()
	s.registerSubstraitInfo()
	gopts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.MaxRecvMsgSize),
		// Calls run on long-lived workers whose stacks have grown already:
		// a fresh goroutine per call grew its stack to a query's depth
		// every time (5 % of a one-entity query's CPU). A call finding
		// every worker busy still gets a goroutine of its own.
		grpc.NumStreamWorkers(uint32(max(8, 4*runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(s.unaryGuard, s.authUnary),
		grpc.ChainStreamInterceptor(s.streamGuard, s.authStream),
	}, opts.GRPCOptions...)
	if opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(opts.TLS)))
	}
	s.grpc = grpc.NewServer(gopts...)
	arrowflight.RegisterFlightServiceServer(s.grpc, exchangeService{flightsql.NewFlightServerWithAllocator(s, opts.Mem), s})
	return s
}

// Serve answers Flight SQL on lis until ctx ends (then it stops
// gracefully) or the listener fails.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	stop := context.AfterFunc(ctx, s.GracefulStop)
	defer stop()
	err := s.grpc.Serve(lis)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// GracefulStop stops accepting calls and returns when the running ones end.
func (s *Server) GracefulStop() {
	s.grpc.GracefulStop()
	s.closeAll()
}

// Stop closes all connections at once.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.closeAll()
}

func (s *Server) closeAll() {
	s.prepared.closeAll()
	if r := s.cur.Load(); r.ownRel {
		r.rel.Close()
	}
}

// statusOf turns an error of a front end or the planner (a
// statement.Error) into a gRPC status; statuses pass unchanged.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		if len(st.Message()) <= maxMessage {
			return err
		}
		return status.Error(st.Code(), clip(st.Message()))
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	code := codes.Internal
	switch statement.KindOf(err) {
	case statement.InvalidInput:
		code = codes.InvalidArgument
	case statement.Unsupported:
		code = codes.Unimplemented
	case statement.SourceFailure:
		code = codes.Unavailable
	case statement.ResourceExhausted:
		code = codes.ResourceExhausted
	}
	return status.Error(code, clip(err.Error()))
}

// maxMessage bounds an error message: messages quote what the caller sent
// (a name, a handle), and a caller sending a megabyte must not get it back.
const maxMessage = 1024

// clip cuts msg to about maxMessage bytes, on a character boundary, saying
// how much it left out.
func clip(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", msg[:cut], len(msg)-cut)
}

// recovered turns a panic into an Internal status, logging its stack: a bug
// in one query must not take the server down.
// The panic's text stays in the log: it names the server's code, not
// anything the caller can act on.
func recovered(ctx context.Context, method string, r any) error {
	id := rand.Text()[:12] // names the log line, for the caller's report
	slog.ErrorContext(ctx, "panic", "panic_id", id, "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s (logged on the server as %s)", method, id)
}

func (s *Server) unaryGuard(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	rp := s.acquire()
	defer rp.release()
	ctx = context.WithValue(ctx, repoKey{}, rp)
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, recovered(ctx, info.FullMethod, r)
		}
		s.observeCall(info.FullMethod, err, start)
	}()
	resp, err = handler(ctx, req)
	return resp, rp.answerError(err)
}

func (s *Server) streamGuard(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	rp := s.acquire()
	defer rp.release()
	ss = repoStream{ss, context.WithValue(ss.Context(), repoKey{}, rp)}
	defer func() {
		if r := recover(); r != nil {
			err = recovered(ss.Context(), info.FullMethod, r)
		}
		s.observeCall(info.FullMethod, err, start)
	}()
	return rp.answerError(handler(srv, ss))
}

// observeCall reports a call that started at start and ended with err (a
// status already) to the observer.
func (s *Server) observeCall(method string, err error, start time.Time) {
	if o := s.opts.Observer; o != nil {
		o.Call(method, status.Code(err), time.Since(start))
	}
}

// answerError is err as a caller receives it (statusOf), with the
// positions of definitions relative to the repository's folder: where the
// server keeps its files is none of the caller's business.
func (r *repo) answerError(err error) error {
	err = statusOf(err)
	if err == nil || len(r.dirs) == 0 {
		return err
	}
	st, _ := status.FromError(err)
	msg := r.relative(st.Message())
	if msg == st.Message() {
		return err
	}
	return status.Error(st.Code(), msg)
}

// relative is msg with the repository's folder left out of the positions
// it names.
func (r *repo) relative(msg string) string {
	for _, prefix := range r.dirs {
		msg = strings.ReplaceAll(msg, prefix, "")
	}
	return msg
}

// repoPrefixes are the spellings of dir that begin the files of its
// definitions: as given, and absolute.
func repoPrefixes(dir string) []string {
	var out []string
	for _, d := range []string{dir, absOrEmpty(dir)} {
		if d = filepath.Clean(d); d != "" && d != "." {
			out = append(out, d+string(filepath.Separator))
		}
	}
	return out
}

func absOrEmpty(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	return abs
}

// query is a statement with its plan and the schema its answer is sent in:
// a feature lookup (st, plan), a relational query (rel), or the text of a
// plan (explain, for EXPLAIN).
type query struct {
	st      *statement.Statement
	plan    *planner.Plan
	rel     *relational.Query
	explain string
	// analyze runs the lookup and answers its plan with what each stage
	// did (EXPLAIN ANALYZE).
	analyze bool
	answer  answerSchemas // as sent: see wireSchema
	// repo is the repository a prepared statement was made on.
	repo *repo
	// native: a native query whose spine was uploaded by DoPut
	// (putNative), answered as native DoExchange answers.
	native bool
}

// planned is what q runs, for a Recorder; nil for the text of a plan.
func (q *query) planned() Planned {
	switch {
	case q.rel != nil:
		return q.rel
	case q.plan != nil:
		return q.plan
	}
	return nil
}

// classes are the tables of the classes q reads.
func (q *query) classes() []string {
	if q.rel != nil {
		return q.rel.Classes()
	}
	return q.plan.Classes()
}

// planSQL reads and plans sql. Statements (not prepared) cannot have
// parameters: that is checked before planning, for the clearer error.
func (s *Server) planSQL(ctx context.Context, text string, prepared bool) (*query, error) {
	if err := s.checkSQL(text); err != nil {
		return nil, err
	}
	start := trace.StageStart(s.tracer)
	st, rel, remembered, err := s.repoOf(ctx).sql.ReadQuery(text)
	if !remembered {
		trace.Recorded(ctx, s.tracer, "parse sql", start, err)
	}
	if err != nil {
		return nil, err
	}
	return s.planParsed(ctx, st, rel, prepared)
}

// planParsed plans what the SQL front end read: a lookup, or SQL beyond
// one (rel).
func (s *Server) planParsed(ctx context.Context, st *statement.Statement, rel *statement.Relational, prepared bool) (*query, error) {
	if rel != nil {
		return s.planRelational(ctx, rel)
	}
	return s.planStatement(ctx, st, prepared)
}

// planStatement plans a statement of any front end.
func (s *Server) planStatement(ctx context.Context, st *statement.Statement, prepared bool) (*query, error) {
	if !prepared && len(st.Params) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "%s: the query has %d parameter(s): prepare it and bind a batch of parameter rows", st.Params[0].Pos, len(st.Params))
	}
	if err := s.checkStatement(st); err != nil {
		return nil, err
	}
	plan, err := s.prepare(ctx, st)
	if err != nil {
		return nil, err
	}
	q := &query{st: st, plan: plan}
	if st.Options.Explain && st.Options.Analyze {
		q.analyze = true
		q.answer = s.answerSchema(explainSchema, false)
		return q, nil
	}
	if st.Options.Explain {
		q.explain = plan.Explain()
		q.answer = s.answerSchema(explainSchema, false)
		return q, nil
	}
	q.answer = s.answerSchema(plan.Schema(), false)
	return q, nil
}

// prepare plans st with the engine of ctx's repository. Its span, "plan",
// is recorded when the plan was made, not for a plan cache hit: a traced
// lookup costs a span per stage that did work (docs/OPERATIONS.md
// "Traces").
func (s *Server) prepare(ctx context.Context, st *statement.Statement) (*planner.Plan, error) {
	start := trace.StageStart(s.tracer)
	plan, cached, err := s.repoOf(ctx).engine.PrepareCached(ctx, st)
	if !cached {
		trace.Recorded(ctx, s.tracer, "plan", start, err)
	}
	return plan, err
}

// planRelational plans a query beyond a feature lookup.
func (s *Server) planRelational(ctx context.Context, rel *statement.Relational) (*query, error) {
	r := s.repoOf(ctx)
	if r.rel == nil {
		return nil, status.Error(codes.Unimplemented, "SQL beyond feature lookups is not available on this server (see its log)")
	}
	pctx, sp := trace.Start(ctx, s.tracer, "plan relational")
	rq, err := r.rel.Prepare(pctx, rel)
	trace.End(sp, err)
	if err != nil {
		return nil, err
	}
	q := &query{rel: rq}
	if rel.Explain {
		q.explain = rq.Explain()
		q.answer = s.answerSchema(explainSchema, false)
		return q, nil
	}
	q.answer = s.answerSchema(rq.Schema(), false)
	return q, nil
}

// explainSchema is the answer of EXPLAIN: the plan's text, a line a row.
var explainSchema = arrow.NewSchema([]arrow.Field{{Name: "plan", Type: arrow.BinaryTypes.String}}, nil)

func (s *Server) flightInfo(desc *arrowflight.FlightDescriptor, schema []byte, ticket []byte) *arrowflight.FlightInfo {
	return &arrowflight.FlightInfo{
		Schema:           schema,
		FlightDescriptor: desc,
		Endpoint:         []*arrowflight.FlightEndpoint{{Ticket: &arrowflight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

// GetFlightInfoStatement plans a query. The ticket carries the SQL text
// itself (see statementTicket), so any server of a fleet can answer it.
func (s *Server) GetFlightInfoStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	q, err := s.plan(ctx, cmd.GetQuery(), false)
	if err != nil {
		return nil, err
	}
	ticket, err := statementTicket(ticketSQL, []byte(cmd.GetQuery()))
	if err != nil {
		return nil, err
	}
	return s.flightInfo(desc, q.answer.info, ticket), nil
}

// GetSchemaStatement plans a query for its result schema.
func (s *Server) GetSchemaStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	q, err := s.plan(ctx, cmd.GetQuery(), false)
	if err != nil {
		return nil, err
	}
	return &arrowflight.SchemaResult{Schema: q.answer.info}, nil
}

// Statement tickets carry the query itself. A handle is the SQL text as
// is (the first format, still read), or ticketTag, a format version and a
// kind byte followed by the query: the tag byte never starts SQL text.
const (
	ticketTag       = 0
	ticketVersion   = 1
	ticketSQL       = 'q'
	ticketSubstrait = 's'
)

// statementTicket is the ticket of a query of kind ticketSQL or
// ticketSubstrait.
func statementTicket(kind byte, query []byte) ([]byte, error) {
	return flightsql.CreateStatementQueryTicket(append([]byte{ticketTag, ticketVersion, kind}, query...))
}

// readTicket splits a statement ticket's handle into its kind and query.
func readTicket(handle []byte) (kind byte, text []byte, err error) {
	if len(handle) == 0 || handle[0] != ticketTag {
		return ticketSQL, handle, nil
	}
	if len(handle) < 3 {
		return 0, nil, status.Errorf(codes.InvalidArgument, "malformed statement ticket (%d bytes): ask for a new FlightInfo", len(handle))
	}
	if handle[1] != ticketVersion {
		return 0, nil, status.Errorf(codes.InvalidArgument, "statement ticket of format %d; this server reads format %d: ask it for a new FlightInfo", handle[1], ticketVersion)
	}
	switch handle[2] {
	case ticketSQL, ticketSubstrait, ticketPreparedRange, ticketNativeRange:
		return handle[2], handle[3:], nil
	}
	return 0, nil, status.Errorf(codes.InvalidArgument, "statement ticket of unknown kind %q: ask for a new FlightInfo", handle[2])
}

// work is what a DoGet runs: a planned query, its input batches and the
// request's trace id (traceID).
type work struct {
	q      *query
	inputs []arrow.RecordBatch
	trace  string
}

func (w work) release() {
	for _, in := range w.inputs {
		in.Release()
	}
}

// statementWork is a statement ticket's query, with its literal inputs.
func (s *Server) statementWork(ctx context.Context, ticket flightsql.StatementQueryTicket) (work, error) {
	kind, text, err := readTicket(ticket.GetStatementHandle())
	if err != nil {
		return work{}, err
	}
	var q *query
	if kind == ticketSubstrait {
		q, err = s.planSubstrait(ctx, text, false)
	} else {
		q, err = s.plan(ctx, string(text), false)
	}
	if err != nil {
		return work{}, err
	}
	if q.st == nil || q.explain != "" {
		return s.traced(ctx, work{q: q})
	}
	in, err := s.literalInputs(q)
	if err != nil {
		return work{}, err
	}
	return s.traced(ctx, work{q: q, inputs: []arrow.RecordBatch{in}})
}

// literalInputs are the input rows q's statement spells out, within
// Limits.MaxInputRows.
func (s *Server) literalInputs(q *query) (arrow.RecordBatch, error) {
	in, err := q.st.LiteralInputs(s.opts.Mem)
	if err != nil {
		return nil, err
	}
	if err := s.checkInputRows(in.NumRows()); err != nil {
		in.Release()
		return nil, err
	}
	return in, nil
}

// traced is w with the request's trace id, which is set in the response
// header here, before the answer's first message. On error it releases
// w's inputs.
func (s *Server) traced(ctx context.Context, w work) (work, error) {
	trace, err := s.traceID(ctx)
	if err != nil {
		w.release()
		return work{}, err
	}
	w.trace = trace
	return w, nil
}

// stream runs w on a goroutine of its own, for the flightsql server's
// channel interface. It takes ownership of w's inputs.
func (s *Server) stream(ctx context.Context, w work) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	ch := make(chan arrowflight.StreamChunk, 1)
	go func() {
		defer close(ch)
		defer func() {
			if r := recover(); r != nil {
				ch <- arrowflight.StreamChunk{Err: recovered(ctx, "DoGet", r)}
			}
		}()
		err := s.run(ctx, w, func(rec arrow.RecordBatch) error {
			rec.Retain()
			select {
			case ch <- arrowflight.StreamChunk{Data: rec}:
				return nil
			case <-ctx.Done():
				rec.Release()
				return ctx.Err()
			}
		})
		if err != nil {
			select {
			case ch <- arrowflight.StreamChunk{Err: statusOf(err)}:
			case <-ctx.Done():
			}
		}
	}()
	return w.q.answer.all, ch, nil
}

// run runs w's query over each input batch in order and hands the results
// to emit, sliced into chunks of about ChunkBytes; emit borrows each chunk.
// An answer of no rows is one empty batch: the Flight SQL JDBC driver lists
// every column twice when no batch comes. It takes ownership of w's inputs.
func (s *Server) run(ctx context.Context, w work, emit func(arrow.RecordBatch) error) error {
	defer w.release()
	ctx = trace.With(ctx, w.trace)
	sent := false
	budget := s.answerBudget()
	send := func(rec arrow.RecordBatch) error {
		wire, err := toWire(s.opts.Mem, rec, w.q.answer.all)
		if err != nil {
			return err
		}
		defer wire.Release()
		if err := budget.take(wire); err != nil {
			return err
		}
		sent = true
		return chunks(wire, s.opts.ChunkBytes, emit)
	}
	var err error
	switch {
	case w.q.explain != "":
		err = send(explainRecord(s.opts.Mem, w.q.explain))
	case w.q.analyze:
		err = s.runAnalyze(ctx, w, send)
	case w.q.rel != nil:
		err = w.q.rel.Run(ctx, s.now(ctx), func(rec arrow.RecordBatch) error {
			if rec.NumRows() == 0 {
				return nil
			}
			return send(rec)
		})
	default:
		err = s.runLookup(ctx, w, send)
	}
	if err != nil || sent {
		return err
	}
	cols := emptyColumns(s.opts.Mem, w.q.answer.all)
	empty := array.NewRecordBatch(w.q.answer.all, cols, 0)
	releaseArrays(cols)
	defer empty.Release()
	return emit(empty)
}

// runLookup runs a lookup's plan over each input batch, chunk by chunk
// (spine.go), handing each result to send, which borrows it.
func (s *Server) runLookup(ctx context.Context, w work, send func(arrow.RecordBatch) error) error {
	now := s.now(ctx)
	opts := runOptions(w.q.st, now, w.trace)
	plannerOptions(ctx, &opts)
	remaining := w.q.st.Limit
	for _, in := range w.inputs {
		n := in.NumRows()
		if remaining >= 0 {
			n = min(n, remaining)
			remaining -= n
		}
		if n == 0 {
			continue
		}
		batch := in
		if n < in.NumRows() {
			batch = in.NewSlice(0, n)
			defer batch.Release()
		}
		err := s.runChunked(ctx, w.q.plan, batch, opts, func(res *planner.Result) error {
			defer res.Release()
			return send(res.Record)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// runAnalyze runs a lookup's plan over each input batch, as runLookup
// does, and sends the plan with what each run did instead of the answer.
func (s *Server) runAnalyze(ctx context.Context, w work, send func(arrow.RecordBatch) error) error {
	var text strings.Builder
	now := s.now(ctx)
	for _, in := range w.inputs {
		opts := runOptions(w.q.st, now, w.trace)
		opts.Analyze = true
		res, err := w.q.plan.Run(ctx, in, opts)
		if err != nil {
			return err
		}
		text.WriteString(w.q.plan.ExplainAnalyze(res.Analysis))
		res.Release()
	}
	rec := explainRecord(s.opts.Mem, text.String())
	defer rec.Release()
	return send(rec)
}

// explainRecord is a plan's text as the answer of EXPLAIN, a line a row.
func explainRecord(mem memory.Allocator, text string) arrow.RecordBatch {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.Append(line)
	}
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(explainSchema, []arrow.Array{col}, int64(col.Len()))
}

// emptyColumns are columns of no rows for schema; the caller releases them.
func emptyColumns(mem memory.Allocator, schema *arrow.Schema) []arrow.Array {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = array.MakeArrayOfNull(mem, f.Type, 0)
	}
	return cols
}

// chunks hands rec to emit in slices of about maxBytes; a record that fits
// goes whole, unsliced.
func chunks(rec arrow.RecordBatch, maxBytes int64, emit func(arrow.RecordBatch) error) error {
	per := rowsPerChunk(rec, maxBytes)
	if per >= rec.NumRows() {
		return emit(rec)
	}
	for i := int64(0); i < rec.NumRows(); i += per {
		part := rec.NewSlice(i, min(i+per, rec.NumRows()))
		err := emit(part)
		part.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// newHandle is an opaque, unguessable prepared statement handle.
func newHandle() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreatePreparedStatement plans a query once for many executions. The
// dataset schema is always filled; the parameter schema has one field per
// parameter, typed as the input column it fills (timestamps in
// milliseconds: see declaredParams).
func (s *Server) CreatePreparedStatement(ctx context.Context, req flightsql.ActionCreatePreparedStatementRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	q, err := s.plan(ctx, req.GetQuery(), true)
	if err != nil {
		return flightsql.ActionCreatePreparedStatementResult{}, err
	}
	return s.keepPrepared(ctx, q), nil
}

// keepPrepared keeps q under a new handle of the caller for many
// executions.
func (s *Server) keepPrepared(ctx context.Context, q *query) flightsql.ActionCreatePreparedStatementResult {
	h := newHandle()
	q.repo = s.repoOf(ctx)
	s.prepared.put(preparedKeyOf(ctx, h), q)
	isUpdate := false
	return flightsql.ActionCreatePreparedStatementResult{
		Handle:          []byte(h),
		DatasetSchema:   q.answer.all,
		ParameterSchema: declaredParams(q.st),
		IsUpdate:        &isUpdate,
	}
}

// ClosePreparedStatement forgets a prepared statement of the caller's.
func (s *Server) ClosePreparedStatement(ctx context.Context, req flightsql.ActionClosePreparedStatementRequest) error {
	s.prepared.remove(preparedKeyOf(ctx, string(req.GetPreparedStatementHandle())))
	return nil
}

// DoPutPreparedStatementQuery binds a batch of parameter rows (in one or
// several record batches) to a prepared statement: each parameter row is one
// input row. The rows are converted to the input types here, so a wrong
// batch fails now, naming the field.
func (s *Server) DoPutPreparedStatementQuery(ctx context.Context, cmd flightsql.PreparedStatementQuery, rdr arrowflight.MessageReader, _ arrowflight.MetadataWriter) ([]byte, error) {
	h := string(cmd.GetPreparedStatementHandle())
	q, err := s.preparedQuery(ctx, h)
	if err != nil {
		return nil, err
	}
	bound, err := s.bindAll(ctx, q, rdr)
	if err != nil {
		return nil, err
	}
	if err := s.prepared.bind(preparedKeyOf(ctx, h), bound); err != nil {
		release(bound)
		return nil, err
	}
	return []byte(h), nil
}

// bindAll binds every parameter batch rdr holds to q. Malformed IPC data
// (a truncated or garbled schema or batch) is the caller's error: arrow-go's
// reader can panic on it, and that panic is answered InvalidArgument.
func (s *Server) bindAll(ctx context.Context, q *query, rdr arrowflight.MessageReader) (bound []arrow.RecordBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.WarnContext(ctx, "a malformed parameter batch", "panic", fmt.Sprint(r))
			err = status.Error(codes.InvalidArgument, "reading the parameter batch: malformed Arrow IPC data")
		}
		if err != nil {
			release(bound)
			bound = nil
		}
	}()
	schema := rdr.Schema()
	if schema == nil {
		return nil, malformedIPC("no Arrow schema", rdr.Err())
	}
	if q.st == nil {
		return nil, status.Error(codes.InvalidArgument, "the statement has no parameters to bind: parameters are supported in feature lookups only (WHERE id = ?)")
	}
	if err := q.st.CheckParams(schema); err != nil {
		return nil, err
	}
	co := s.coalescer(func(b arrow.RecordBatch) error { bound = append(bound, b); return nil })
	defer co.release()
	rows := int64(0)
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if rec.NumRows() == 0 {
			continue
		}
		if rows += rec.NumRows(); s.checkInputRows(rows) != nil {
			return bound, s.checkInputRows(rows)
		}
		in, err := q.st.BindInputs(ctx, s.opts.Mem, rec)
		if err != nil {
			return bound, err
		}
		if err := co.add(in); err != nil {
			return bound, err
		}
	}
	if err := rdr.Err(); err != nil {
		return bound, malformedIPC("malformed Arrow IPC data", err)
	}
	return bound, co.flush()
}

// malformedIPC is the caller's error for a parameter stream arrow-go could
// not read. Its reader turns its own panics into errors holding the panic's
// text, which says nothing the caller can act on: those are logged, not
// answered.
func malformedIPC(what string, err error) error {
	if err == nil || strings.Contains(err.Error(), "runtime error") {
		slog.Warn("a malformed parameter batch", "what", what, "err", err)
		return status.Errorf(codes.InvalidArgument, "reading the parameter batch: %s", what)
	}
	return status.Errorf(codes.InvalidArgument, "reading the parameter batch: %s: %v", what, err)
}

// GetFlightInfoPreparedStatement returns where to fetch the result of a
// prepared statement with its current parameters: one endpoint, or, for a
// spine of more than SpineEndpointRows rows, one per range of that many
// (spine.go).
func (s *Server) GetFlightInfoPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	h := string(cmd.GetPreparedStatementHandle())
	q, err := s.preparedQuery(ctx, h)
	if err != nil {
		return nil, err
	}
	if bind, rows, ok := s.prepared.boundShape(preparedKeyOf(ctx, h)); ok && s.splitsSpine(q, rows) {
		eps, err := s.spineEndpoints(ticketPreparedRange, h, bind, rows)
		if err != nil {
			return nil, err
		}
		return &arrowflight.FlightInfo{Schema: q.answer.info, FlightDescriptor: desc, Endpoint: eps, TotalRecords: rows, TotalBytes: -1, Ordered: true}, nil
	}
	return s.flightInfo(desc, q.answer.info, desc.Cmd), nil
}

// GetSchemaPreparedStatement returns the result schema of a prepared
// statement.
func (s *Server) GetSchemaPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	q, err := s.preparedQuery(ctx, string(cmd.GetPreparedStatementHandle()))
	if err != nil {
		return nil, err
	}
	return &arrowflight.SchemaResult{Schema: q.answer.info}, nil
}

// preparedWork is a prepared statement's query with its bound parameter
// batches (its literal inputs when it has no parameters).
func (s *Server) preparedWork(ctx context.Context, cmd flightsql.PreparedStatementQuery) (work, error) {
	h := string(cmd.GetPreparedStatementHandle())
	q, err := s.preparedQuery(ctx, h)
	if err != nil {
		return work{}, err
	}
	if q.st == nil || q.explain != "" {
		return s.traced(ctx, work{q: q})
	}
	if len(q.st.Params) == 0 {
		in, err := s.literalInputs(q)
		if err != nil {
			return work{}, err
		}
		return s.traced(ctx, work{q: q, inputs: []arrow.RecordBatch{in}})
	}
	bound, err := s.prepared.bound(preparedKeyOf(ctx, h))
	if err != nil {
		return work{}, err
	}
	return s.traced(ctx, work{q: q, inputs: bound})
}

// registerSqlInfo registers the answers of GetSqlInfo (see sqlInfo).
func (s *Server) registerSqlInfo() {
	for id, v := range s.sqlInfo() {
		if err := s.RegisterSqlInfo(id, v); err != nil {
			panic(fmt.Sprintf("flight: SqlInfo %d: %v", id, err)) // a mistyped entry of sqlInfo
		}
	}
}

// arrowVersion is the Arrow columnar format version of the wire.
const arrowVersion = "1.5.0"
