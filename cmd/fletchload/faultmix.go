package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// kind is one sort of request of the fault mode's mix.
type kind uint8

const (
	kindUser       kind = iota // one user by id, a statement
	kindItem                   // one item by id: title and price from Postgres, genre from the online store
	kindGenre                  // one item's genre only: served from Redis once cached
	kindUsersIn                // 20 users in an IN list
	kindItemsBulk              // 50 items bound as a parameter batch of a prepared statement
	kindOffline                // 10 users at a point in time (__as_of__), prepared: a windowed count
	kindBadSyntax              // malformed SQL
	kindBadFeature             // a feature that does not exist
	kindBadScope               // a class outside the token's scopes
	kindCancel                 // the mass cancellation's calls (not in the mix)
	nKinds
)

var kindNames = [nKinds]string{"user", "item", "genre", "users_in", "items_bulk", "offline", "bad_syntax", "bad_feature", "bad_scope", "cancel"}

func (k kind) String() string { return kindNames[k] }
func (k kind) bad() bool      { return k >= kindBadSyntax && k <= kindBadScope }

// mix is the share of each kind in the load, in percent.
var mix = [...]struct {
	k    kind
	pct  int
	desc string
}{
	{kindUser, 30, `SELECT id, full_name, email FROM user WHERE id = '{id}'`},
	{kindItem, 15, `SELECT id, title, price, genre_from_llm FROM item WHERE id = '{id}'`},
	{kindGenre, 10, `SELECT id, genre_from_llm FROM item WHERE id = '{id}'`},
	{kindUsersIn, 10, `SELECT id, full_name FROM user WHERE id IN (20 ids)`},
	{kindItemsBulk, 10, `SELECT id, title, price FROM item WHERE id = ? (50 rows bound)`},
	{kindOffline, 15, `SELECT id, "review_count[30d]" FROM user WHERE id = ? AND __as_of__ = ? (10 rows bound)`},
	{kindBadSyntax, 4, `SELEC full_name FROM user WHERE id = '1'`},
	{kindBadFeature, 3, `SELECT full_nam FROM user WHERE id = '1'`},
	{kindBadScope, 3, `SELECT title FROM item WHERE id = '1' (token reading users only)`},
}

// expectedCodes are the codes a bad request must be refused with
// (docs/SQL.md "Errors"). An out-of-scope class answers PermissionDenied;
// once hidden classes read as missing (issue 16, item 1) it is the
// InvalidArgument of an unknown table, which is as right.
var expectedCodes = map[kind][]codes.Code{
	kindBadSyntax:  {codes.InvalidArgument},
	kindBadFeature: {codes.InvalidArgument},
	kindBadScope:   {codes.PermissionDenied, codes.InvalidArgument},
}

// reference is the expected answers, read from Postgres with SQL of its own
// (not through fletch).
type reference struct {
	users   map[string]refUser
	items   map[string]refItem
	asOf    []time.Time
	reviews map[string][]int64 // user → review count in the 30 days up to asOf[i]
	nUsers  int
	nItems  int
}

type refUser struct{ fullName, email *string }
type refItem struct {
	title string
	price float64
	genre *string
}

func loadReference(ctx context.Context, dsn string, anchor time.Time) (*reference, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	r := &reference{users: map[string]refUser{}, items: map[string]refItem{}, reviews: map[string][]int64{},
		asOf: []time.Time{anchor, anchor.Add(-10 * 24 * time.Hour)}}
	rows, err := conn.Query(ctx, `SELECT hid, first_name || ' ' || last_name, email FROM marketplace_users`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var u refUser
		if err := rows.Scan(&id, &u.fullName, &u.email); err != nil {
			return nil, err
		}
		r.users[id] = u
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, `SELECT id, title, list_price, genre FROM marketplace_items`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var it refItem
		if err := rows.Scan(&id, &it.title, &it.price, &it.genre); err != nil {
			return nil, err
		}
		r.items[id] = it
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A review counts at t when created in (t - 30 days, t] (docs/SEMANTICS.md:
	// windows are `created_at > now - window`, and nothing after now is seen).
	rows, err = conn.Query(ctx, `
		SELECT u.hid, t.i, count(r.id) FILTER (WHERE r.created_at > t.at - interval '30 days' AND r.created_at <= t.at)
		FROM marketplace_users u
		CROSS JOIN (VALUES (0, $1::timestamptz), (1, $2::timestamptz)) AS t(i, at)
		LEFT JOIN marketplace_reviews r ON r.user_hid = u.hid
		GROUP BY 1, 2`, r.asOf[0], r.asOf[1])
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		var i int
		var n int64
		if err := rows.Scan(&id, &i, &n); err != nil {
			return nil, err
		}
		if r.reviews[id] == nil {
			r.reviews[id] = make([]int64, len(r.asOf))
		}
		r.reviews[id][i] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	r.nUsers, r.nItems = len(r.users), len(r.items)
	if r.nUsers == 0 || r.nItems == 0 {
		return nil, errors.New("the reference is empty: no users or items in Postgres")
	}
	return r, nil
}

// wrongAnswer is an answer that differs from the reference: never expected.
type wrongAnswer struct{ msg string }

func (w *wrongAnswer) Error() string { return "wrong answer: " + w.msg }

func wrongf(format string, a ...any) error { return &wrongAnswer{fmt.Sprintf(format, a...)} }

// worker is one load worker's connection, prepared statements and state.
type worker struct {
	cl                 *flightsql.Client
	rng                *rand.Rand
	mem                memory.Allocator
	ref                *reference
	scoped             context.Context // the users-only token's calls
	itemsBulk, offline *flightsql.PreparedStatement
	cur                kind
	records            []record
}

func (w *worker) close() {
	for _, p := range []*flightsql.PreparedStatement{w.itemsBulk, w.offline} {
		if p != nil {
			p.Close(context.Background())
		}
	}
}

func (w *worker) prepare(ctx context.Context) error {
	var err error
	if w.itemsBulk, err = w.cl.Prepare(ctx, `SELECT id, title, price FROM item WHERE id = ?`); err != nil {
		return fmt.Errorf("prepare items: %w", err)
	}
	if w.offline, err = w.cl.Prepare(ctx, `SELECT id, "review_count[30d]" FROM user WHERE id = ? AND __as_of__ = ?`); err != nil {
		return fmt.Errorf("prepare offline: %w", err)
	}
	return nil
}

func (w *worker) pick() kind {
	n := w.rng.IntN(100)
	for _, m := range mix {
		if n < m.pct {
			return m.k
		}
		n -= m.pct
	}
	return kindUser
}

func (w *worker) userID() string { return strconv.Itoa(1 + w.rng.IntN(w.ref.nUsers)) }
func (w *worker) itemID() string { return strconv.Itoa(1 + w.rng.IntN(w.ref.nItems)) }

// request runs one request of the mix and checks its answer.
func (w *worker) request(ctx context.Context, _ []string) (int64, error) {
	w.cur = w.pick()
	return w.run(ctx, w.cur)
}

func (w *worker) run(ctx context.Context, k kind) (int64, error) {
	switch k {
	case kindUser:
		id := w.userID()
		rows, err := w.statement(ctx, "SELECT id, full_name, email FROM user WHERE id = '"+id+"'")
		if err != nil {
			return 0, err
		}
		return w.checkUsers(rows, []string{id}, true)
	case kindItem, kindGenre:
		id := w.itemID()
		q := "SELECT id, title, price, genre_from_llm FROM item WHERE id = '" + id + "'"
		if k == kindGenre {
			q = "SELECT id, genre_from_llm FROM item WHERE id = '" + id + "'"
		}
		rows, err := w.statement(ctx, q)
		if err != nil {
			return 0, err
		}
		return w.checkItems(rows, []string{id})
	case kindUsersIn:
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = w.userID()
		}
		rows, err := w.statement(ctx, "SELECT id, full_name FROM user WHERE id IN ('"+strings.Join(ids, "', '")+"')")
		if err != nil {
			return 0, err
		}
		return w.checkUsers(rows, ids, false)
	case kindItemsBulk:
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = w.itemID()
		}
		rows, err := w.prepared(ctx, w.itemsBulk, ids, nil)
		if err != nil {
			return 0, err
		}
		return w.checkItems(rows, ids)
	case kindOffline:
		ids, at := make([]string, 10), make([]int, 10)
		for i := range ids {
			ids[i], at[i] = w.userID(), w.rng.IntN(len(w.ref.asOf))
		}
		rows, err := w.prepared(ctx, w.offline, ids, at)
		if err != nil {
			return 0, err
		}
		return w.checkOffline(rows, ids, at)
	case kindBadSyntax:
		return w.statement2(ctx, "SELEC full_name FROM user WHERE id = '1'")
	case kindBadFeature:
		return w.statement2(ctx, "SELECT full_nam FROM user WHERE id = '1'")
	case kindBadScope:
		return w.statement2(w.scopedCtx(ctx), "SELECT title FROM item WHERE id = '1'")
	}
	return 0, fmt.Errorf("kind %d is not in the mix", k)
}

// scopedCtx is ctx (its deadline, its cancellation) with the users-only
// token instead of the load's.
func (w *worker) scopedCtx(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(w.scoped)
	return metadata.NewOutgoingContext(ctx, md)
}

// statement2 runs a statement whose answer is not checked (a bad request:
// its code is what matters).
func (w *worker) statement2(ctx context.Context, q string) (int64, error) {
	rows, err := w.statement(ctx, q)
	return int64(len(rows)), err
}

type row map[string]any

func (w *worker) statement(ctx context.Context, q string) ([]row, error) {
	info, err := w.cl.Execute(ctx, q)
	if err != nil {
		return nil, err
	}
	return readRows(ctx, w.cl, info.Endpoint[0].Ticket)
}

// prepared binds ids (and, for the point-in-time statement, the as-of
// times asOf indexes) and runs the statement.
func (w *worker) prepared(ctx context.Context, p *flightsql.PreparedStatement, ids []string, asOf []int) ([]row, error) {
	schema := p.ParameterSchema()
	b := array.NewRecordBuilder(w.mem, schema)
	defer b.Release()
	for f := range schema.NumFields() {
		for i, id := range ids {
			switch fb := b.Field(f).(type) {
			case *array.StringBuilder:
				fb.Append(id)
			case *array.TimestampBuilder:
				if asOf == nil {
					return nil, fmt.Errorf("parameter %s: no time to bind", schema.Field(f).Name)
				}
				unit := fb.Type().(*arrow.TimestampType).Unit
				ts, err := arrow.TimestampFromTime(w.ref.asOf[asOf[i]], unit)
				if err != nil {
					return nil, err
				}
				fb.Append(ts)
			default:
				return nil, fmt.Errorf("parameter %s of type %s is not supported", schema.Field(f).Name, schema.Field(f).Type)
			}
		}
	}
	rec := b.NewRecordBatch()
	p.SetParameters(rec)
	rec.Release()
	info, err := p.Execute(ctx)
	if err != nil {
		return nil, err
	}
	return readRows(ctx, w.cl, info.Endpoint[0].Ticket)
}

// readRows reads an answer into rows by column name: a few dozen rows a
// request, checked one by one.
func readRows(ctx context.Context, cl *flightsql.Client, ticket *flight.Ticket) ([]row, error) {
	rdr, err := cl.DoGet(ctx, ticket)
	if err != nil {
		return nil, err
	}
	defer rdr.Release()
	var out []row
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := range int(rec.NumRows()) {
			r := make(row, rec.NumCols())
			for c, f := range rec.Schema().Fields() {
				r[f.Name] = cell(rec.Column(c), i)
			}
			out = append(out, r)
		}
	}
	return out, rdr.Err()
}

func cell(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	case *array.StringView:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Float64:
		return a.Value(i)
	}
	return a.ValueStr(i)
}

// byID indexes rows by their id column, refusing an answer without one row
// per id asked.
func byID(rows []row, ids []string) (map[string]row, error) {
	m := make(map[string]row, len(rows))
	for _, r := range rows {
		id, ok := r["id"].(string)
		if !ok {
			return nil, wrongf("a row without a string id: %v", r)
		}
		m[id] = r
	}
	for _, id := range ids {
		if _, ok := m[id]; !ok {
			return nil, wrongf("no row for id %s (%d rows for %d ids)", id, len(rows), len(ids))
		}
	}
	return m, nil
}

func sameString(got any, want *string) bool {
	if want == nil {
		return got == nil
	}
	s, ok := got.(string)
	return ok && s == *want
}

func (w *worker) checkUsers(rows []row, ids []string, email bool) (int64, error) {
	m, err := byID(rows, ids)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		want, got := w.ref.users[id], m[id]
		if !sameString(got["full_name"], want.fullName) || (email && !sameString(got["email"], want.email)) {
			return 0, wrongf("user %s: %v, Postgres says full_name %v email %v", id, got, deref(want.fullName), deref(want.email))
		}
	}
	return int64(len(rows)), nil
}

func (w *worker) checkItems(rows []row, ids []string) (int64, error) {
	m, err := byID(rows, ids)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		want, got := w.ref.items[id], m[id]
		if t, asked := got["title"]; asked && t != want.title {
			return 0, wrongf("item %s: title %v, Postgres says %q", id, t, want.title)
		}
		if p, asked := got["price"]; asked {
			if f, ok := p.(float64); !ok || math.Abs(f-want.price) > 1e-9*math.Max(1, math.Abs(want.price)) {
				return 0, wrongf("item %s: price %v, Postgres says %v", id, p, want.price)
			}
		}
		if g, asked := got["genre_from_llm"]; asked && !sameString(g, want.genre) {
			return 0, wrongf("item %s: genre %v, Postgres says %v", id, g, deref(want.genre))
		}
	}
	return int64(len(rows)), nil
}

// checkOffline compares the point-in-time counts. The same id may be asked
// at two times in one batch: rows are matched in order (one answer row per
// input row, in input order).
func (w *worker) checkOffline(rows []row, ids []string, at []int) (int64, error) {
	if len(rows) != len(ids) {
		return 0, wrongf("%d rows for %d input rows", len(rows), len(ids))
	}
	for i, id := range ids {
		got, want := rows[i]["review_count[30d]"], w.ref.reviews[id][at[i]]
		if rows[i]["id"] != id || got != want {
			return 0, wrongf("row %d: user %v at %s: review_count[30d] %v, Postgres says %d for user %s",
				i, rows[i]["id"], w.ref.asOf[at[i]].Format(time.RFC3339), got, want, id)
		}
	}
	return int64(len(rows)), nil
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// code is an error's gRPC code as the caller saw it: a wrong answer is
// reported apart, and a deadline or cancellation of the caller's own
// context is DeadlineExceeded or Canceled whatever the transport said.
func code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}
