package flight

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/fletch-engine/fletch/statement"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// preparedStore keeps prepared statements by owner and handle: at most max
// of them, least recently used evicted first, and none unused for longer
// than ttl. It is safe for concurrent use.
type preparedStore struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	byKey map[preparedKey]*list.Element
	lru   *list.List // of *preparedEntry, most recently used first
	// binds counts the binds, naming each: a spine range's ticket names
	// the bind it reads (spine.go).
	binds uint64
}

// preparedKey names a prepared statement: its handle, within the
// statements of the token that prepared it (auth off: one owner, ""), so
// that no token can bind, run or close another token's statement.
type preparedKey struct {
	owner, handle string
}

type preparedEntry struct {
	key  preparedKey
	q    *query
	used time.Time
	// bound are the input batches made from the last parameter batch
	// bound; hasBound tells "bound to zero rows" from "never bound".
	bound    []arrow.RecordBatch
	hasBound bool
	// bind names the last bind (preparedStore.binds); rows are its rows.
	bind uint64
	rows int64
}

func newPreparedStore(max int, ttl time.Duration, now func() time.Time) *preparedStore {
	return &preparedStore{max: max, ttl: ttl, now: now, byKey: map[preparedKey]*list.Element{}, lru: list.New()}
}

func (p *preparedStore) put(k preparedKey, q *query) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.add(k, q)
}

// add enters q under k. p.mu is held.
func (p *preparedStore) add(k preparedKey, q *query) *preparedEntry {
	p.expire()
	for p.lru.Len() >= p.max {
		p.drop(p.lru.Back())
	}
	e := &preparedEntry{key: k, q: q, used: p.now()}
	p.byKey[k] = p.lru.PushFront(e)
	return e
}

// putBound enters q under k bound to inputs (a native query's uploaded
// spine), which the store owns from now on; it returns the bind's name.
func (p *preparedStore) putBound(k preparedKey, q *query, inputs []arrow.RecordBatch) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.add(k, q)
	p.setBound(e, inputs)
	return e.bind
}

// setBound replaces e's bound inputs. p.mu is held.
func (p *preparedStore) setBound(e *preparedEntry, inputs []arrow.RecordBatch) {
	release(e.bound)
	p.binds++
	e.bound, e.hasBound, e.bind, e.rows = inputs, true, p.binds, 0
	for _, in := range inputs {
		e.rows += in.NumRows()
	}
}

// entry returns the live entry of handle, marking it used. p.mu is held.
func (p *preparedStore) entry(k preparedKey) (*preparedEntry, error) {
	p.expire()
	el, ok := p.byKey[k]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown or expired prepared statement handle %q: prepare the query again", k.handle)
	}
	p.lru.MoveToFront(el)
	e := el.Value.(*preparedEntry)
	e.used = p.now()
	return e, nil
}

func (p *preparedStore) get(k preparedKey) (*query, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.entry(k)
	if err != nil {
		return nil, err
	}
	return e.q, nil
}

// bind replaces the bound inputs of handle; the store owns them from now on.
func (p *preparedStore) bind(k preparedKey, inputs []arrow.RecordBatch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.entry(k)
	if err != nil {
		return err
	}
	p.setBound(e, inputs)
	return nil
}

// boundShape is the name and row count of handle's last bind (ok false
// when it was never bound).
func (p *preparedStore) boundShape(k preparedKey) (bind uint64, rows int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.entry(k)
	if err != nil || !e.hasBound {
		return 0, 0, false
	}
	return e.bind, e.rows, true
}

// boundRange returns the bound input rows [off, off+n) of handle's bind
// named bind, as slices retained for the caller. A ticket of an earlier
// bind is refused: its rows are gone.
func (p *preparedStore) boundRange(k preparedKey, bind uint64, off, n int64) ([]arrow.RecordBatch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.entry(k)
	if err != nil {
		return nil, err
	}
	if !e.hasBound || e.bind != bind {
		return nil, status.Error(codes.FailedPrecondition, "the spine of this ticket was replaced (new parameters were bound since its FlightInfo): ask for a new FlightInfo")
	}
	if off < 0 || n < 0 || off+n > e.rows {
		return nil, status.Errorf(codes.InvalidArgument, "malformed spine ticket: rows %d..%d of %d", off, off+n, e.rows)
	}
	var out []arrow.RecordBatch
	for _, b := range e.bound {
		rows := b.NumRows()
		if n > 0 && off < rows {
			take := min(rows-off, n)
			out = append(out, b.NewSlice(off, off+take))
			n -= take
		}
		off = max(off-rows, 0)
	}
	return out, nil
}

// bound returns the bound inputs of handle, retained for the caller: a
// concurrent bind or eviction cannot release them under a running query.
func (p *preparedStore) bound(k preparedKey) ([]arrow.RecordBatch, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.entry(k)
	if err != nil {
		return nil, err
	}
	if !e.hasBound {
		return nil, status.Errorf(codes.InvalidArgument, "the prepared statement has %d parameter(s) and none are bound: bind a batch of parameter rows (DoPut) before executing", len(e.q.st.Params))
	}
	out := make([]arrow.RecordBatch, len(e.bound))
	for i, b := range e.bound {
		b.Retain()
		out[i] = b
	}
	return out, nil
}

func (p *preparedStore) remove(k preparedKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.byKey[k]; ok {
		p.drop(el)
	}
}

// expire drops the entries unused for longer than ttl. p.mu is held.
func (p *preparedStore) expire() {
	deadline := p.now().Add(-p.ttl)
	for el := p.lru.Back(); el != nil && el.Value.(*preparedEntry).used.Before(deadline); el = p.lru.Back() {
		p.drop(el)
	}
}

func (p *preparedStore) drop(el *list.Element) {
	e := p.lru.Remove(el).(*preparedEntry)
	delete(p.byKey, e.key)
	release(e.bound)
}

// closeAll releases every entry (at server shutdown).
func (p *preparedStore) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.lru.Len() > 0 {
		p.drop(p.lru.Back())
	}
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// declaredParams is the parameter schema a prepared statement announces:
// the statement's, with timestamps declared in milliseconds. The Flight SQL
// JDBC driver (18.3) writes setTimestamp's epoch milliseconds into a vector
// of whatever unit is declared (apache/arrow-java#838): declared in
// microseconds, `__as_of__ = ?` would land in January 1970. Binding still
// takes any unit (statement.Statement.CheckParams), so ADBC and pyarrow, which send
// microseconds, keep their precision.
func declaredParams(st *statement.Statement) *arrow.Schema {
	if st == nil { // SQL over features takes no parameters
		return arrow.NewSchema(nil, nil)
	}
	schema := st.ParamSchema()
	fields := schema.Fields()
	for i, f := range fields {
		if ts, ok := f.Type.(*arrow.TimestampType); ok {
			fields[i].Type = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: ts.TimeZone}
		}
	}
	return arrow.NewSchema(fields, nil)
}

// readOnly answers every update and ingestion: Flight SQL writes nothing
// into fletch.
func readOnly(what string) error {
	return status.Errorf(codes.Unimplemented, "fletch is read-only: %s is not supported; execute queries instead (a prepared query bound to a batch of parameter rows answers one row per parameter row)", what)
}

func (s *Server) DoPutCommandStatementUpdate(ctx context.Context, cmd flightsql.StatementUpdate) (int64, error) {
	return 0, readOnly("an update statement")
}

func (s *Server) DoPutPreparedStatementUpdate(ctx context.Context, cmd flightsql.PreparedStatementUpdate, rdr arrowflight.MessageReader) (int64, error) {
	return 0, readOnly("executing a prepared statement as an update (JDBC's executeUpdate or executeBatch)")
}

func (s *Server) DoPutCommandStatementIngest(ctx context.Context, cmd flightsql.StatementIngest, rdr arrowflight.MessageReader) (int64, error) {
	return 0, readOnly("bulk ingestion")
}
