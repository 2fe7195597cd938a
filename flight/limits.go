package flight

// Limits: what one call may ask of the server, each refused with a clear
// error naming the fletch.yaml key that sets it (docs/CONFIG.md,
// server.limits), before the work it would cost.

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// Limits bound one call. Zero fields take the defaults below; a negative
// one is no bound.
type Limits struct {
	// MaxSQLBytes bounds the text of a SQL query.
	MaxSQLBytes int
	// MaxIdentifierBytes bounds a name the caller makes up: an output's
	// name (`AS …`, the native query's keys), which becomes a column of the
	// answer's schema and part of the plan cache's key.
	MaxIdentifierBytes int
	// MaxInputRows bounds the input rows of one call: the keys of an IN
	// list, the parameter rows bound to a prepared statement, the rows of a
	// native query's input stream.
	MaxInputRows int64
	// MaxAnswerBytes bounds the Arrow data of one answer.
	MaxAnswerBytes int64
	// MaxQueries and MaxQueriesPerToken bound the queries running at once,
	// overall and per token (auth on; without auth there are no tokens to
	// tell apart). A query beyond them is refused at once.
	MaxQueries         int
	MaxQueriesPerToken int
	// MaxExpressionDepth bounds the nesting of an output's expression (at
	// most statement.MaxDepth), MaxExpressionNodes the nodes of all the
	// outputs of a query; both are checked before the query is planned.
	MaxExpressionDepth int
	MaxExpressionNodes int
}

// The defaults: far above what a feature lookup needs (the bulk benchmark
// is 10,000 rows and a few MB), low enough that one call cannot take the
// server's memory. Input rows run in chunks (spine.go), so what
// MaxInputRows bounds is a bound spine kept for its endpoints: 10 million
// rows of an integer key and a time are 160 MB.
const (
	DefaultMaxSQLBytes        = 1 << 20
	DefaultMaxIdentifierBytes = 1024
	DefaultMaxInputRows       = 10_000_000
	DefaultMaxAnswerBytes     = 1 << 30
	DefaultMaxExpressionNodes = 10_000
)

func (l *Limits) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxSQLBytes, DefaultMaxSQLBytes)
	def(&l.MaxIdentifierBytes, DefaultMaxIdentifierBytes)
	def(&l.MaxExpressionDepth, statement.DefaultMaxDepth)
	def(&l.MaxExpressionNodes, DefaultMaxExpressionNodes)
	if l.MaxInputRows == 0 {
		l.MaxInputRows = DefaultMaxInputRows
	}
	if l.MaxAnswerBytes == 0 {
		l.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
}

func tooMuch(format string, args ...any) error {
	return status.Errorf(codes.ResourceExhausted, format, args...)
}

// checkSQL refuses a SQL text over MaxSQLBytes, before it is parsed.
func (s *Server) checkSQL(text string) error {
	if max := s.opts.Limits.MaxSQLBytes; max > 0 && len(text) > max {
		return tooMuch("the query text is %d bytes; at most %d are read (server.limits.max_sql_bytes)", len(text), max)
	}
	return nil
}

// checkStatement refuses output names over MaxIdentifierBytes, and
// expressions nested deeper than MaxExpressionDepth or larger than
// MaxExpressionNodes, before the statement is planned: in one walk of
// each output's expression, which stops once a bound is passed.
func (s *Server) checkStatement(st *statement.Statement) error {
	l := s.opts.Limits
	nodes := 0
	for i, o := range st.Outputs {
		if l.MaxIdentifierBytes > 0 && len(o.Name) > l.MaxIdentifierBytes {
			return status.Errorf(codes.InvalidArgument, "output %d: its name is %d bytes; at most %d (server.limits.max_identifier_bytes)", i+1, len(o.Name), l.MaxIdentifierBytes)
		}
		// The front end bounded the depth by statement.MaxDepth: this
		// walk is short.
		if d := expr.Depth(o.Expr); l.MaxExpressionDepth > 0 && d > l.MaxExpressionDepth {
			return status.Errorf(codes.InvalidArgument, "%s: output %d is nested %d deep; at most %d (server.limits.max_expression_depth)", o.Expr.Position(), i+1, d, l.MaxExpressionDepth)
		}
		rest := 0 // no bound
		if l.MaxExpressionNodes > 0 {
			rest = max(l.MaxExpressionNodes-nodes, 1)
		}
		nodes += size(o.Expr, rest)
		if l.MaxExpressionNodes > 0 && nodes > l.MaxExpressionNodes {
			return tooMuch("%s: the query's expressions have more than %d nodes (server.limits.max_expression_nodes): ask for fewer or smaller outputs", o.Expr.Position(), l.MaxExpressionNodes)
		}
	}
	return nil
}

// size counts the nodes of n, no further than one past max (max ≤ 0: all).
func size(n expr.Node, max int) int {
	count := 0
	expr.Walk(n, func(expr.Node) bool {
		count++
		return max <= 0 || count <= max
	})
	return count
}

// checkInputRows refuses a call of n input rows over MaxInputRows.
func (s *Server) checkInputRows(n int64) error {
	if max := s.opts.Limits.MaxInputRows; max > 0 && n > max {
		return tooMuch("the call has %d input rows or more; at most %d are taken in one call (server.limits.max_input_rows): split it", n, max)
	}
	return nil
}

// answerBudget counts the bytes of an answer against MaxAnswerBytes.
type answerBudget struct {
	max, sent int64
}

func (s *Server) answerBudget() *answerBudget {
	return &answerBudget{max: s.opts.Limits.MaxAnswerBytes}
}

// take counts rec, refusing it when the answer would pass the bound.
func (b *answerBudget) take(rec arrow.RecordBatch) error {
	if b.max <= 0 {
		return nil
	}
	for _, c := range rec.Columns() {
		b.sent += dataBytes(c.Data())
	}
	if b.sent > b.max {
		return tooMuch("the answer passed %d bytes (server.limits.max_answer_bytes): ask for fewer rows or outputs", b.max)
	}
	return nil
}

// dataBytes is the size of d's buffers as the answer sends them: a column
// sent twice (an output repeated) counts twice, unlike
// util.TotalRecordSize, which also allocates a map per call.
func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

// admission counts the queries running, overall and per token.
type admission struct {
	running atomic.Int64
	mu      sync.Mutex
	byToken map[string]int
}

// admit counts a query of ctx's caller in, or refuses it when a bound is
// reached; done counts it out.
func (s *Server) admit(ctx context.Context) (done func(), err error) {
	l, a := s.opts.Limits, &s.admission
	if l.MaxQueries > 0 {
		if n := a.running.Add(1); n > int64(l.MaxQueries) {
			a.running.Add(-1)
			return nil, tooMuch("the server runs %d queries at once (server.limits.max_queries): try again shortly", l.MaxQueries)
		}
	}
	p := principal(ctx)
	if p == nil || l.MaxQueriesPerToken <= 0 {
		return func() { a.release(l, "") }, nil
	}
	a.mu.Lock()
	if a.byToken[p.Name] >= l.MaxQueriesPerToken {
		a.mu.Unlock()
		a.release(l, "")
		return nil, tooMuch("token %q runs %d queries at once (server.limits.max_queries_per_token): try again when one has answered", p.Name, l.MaxQueriesPerToken)
	}
	if a.byToken == nil {
		a.byToken = map[string]int{}
	}
	a.byToken[p.Name]++
	a.mu.Unlock()
	return func() { a.release(l, p.Name) }, nil
}

func (a *admission) release(l Limits, token string) {
	if l.MaxQueries > 0 {
		a.running.Add(-1)
	}
	if token == "" {
		return
	}
	a.mu.Lock()
	if a.byToken[token]--; a.byToken[token] <= 0 {
		delete(a.byToken, token) // the map holds the tokens running now, no more
	}
	a.mu.Unlock()
}
