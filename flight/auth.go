package flight

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
)

// How the server applies package auth. With Options.Auth set, every RPC
// (unary and stream, Handshake included) must carry a token, as Bearer or as
// the password of Basic: arrow-go's stock middleware accepts only one of
// them per RPC, and clients differ (INTEROP.md). The principal rides in the
// context; queries are authorized against every class their plan reads,
// before anything runs. Without Options.Auth everything is open.

const handshakeMethod = "/arrow.flight.protocol.FlightService/Handshake"

type principalKey struct{}

// principal is the caller of ctx, nil when auth is off.
func principal(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

// authenticate returns ctx carrying the caller's principal, and the token
// presented (to answer a Handshake with). Off, it lets everyone through.
func (s *Server) authenticate(ctx context.Context) (context.Context, string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	header := md.Get("authorization")
	verifier := s.repoOf(ctx).auth
	if verifier == nil {
		// Echoed on Handshake so that clients configured with credentials
		// (ADBC fails without the header) still connect to an open server.
		token, _ := auth.TokenOf(header)
		return ctx, token, nil
	}
	token, err := auth.TokenOf(header)
	if err != nil {
		return nil, "", status.Error(codes.Unauthenticated, err.Error())
	}
	p, err := verifier.Verify(token)
	if err != nil {
		return nil, "", status.Error(codes.Unauthenticated, err.Error())
	}
	return context.WithValue(ctx, principalKey{}, p), token, nil
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, _, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authStream authenticates a stream. A Handshake answers
// `authorization: Bearer <token>` in its response headers, which the JDBC
// driver, ADBC and arrow-go's AuthenticateBasicToken send on later calls.
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, token, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	if info.FullMethod == handshakeMethod && token != "" {
		if err := ss.SetHeader(metadata.Pairs("authorization", "Bearer "+token)); err != nil {
			return err
		}
	}
	return handler(srv, authedStream{ss, ctx})
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

// authorize refuses the caller of ctx the classes (table names) it may not
// read, with PermissionDenied naming them; nil when it may read them all or
// auth is off. Every front end calls it with plan.Classes() after planning
// and before running anything.
func (s *Server) authorize(ctx context.Context, classes ...string) error {
	p := principal(ctx)
	if p == nil {
		return nil
	}
	if err := p.Deny(classes...); err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	return nil
}

// visibleTo is what the caller of ctx may read (by table name); nil when
// auth is off.
func visibleTo(ctx context.Context) func(table string) bool {
	if p := principal(ctx); p != nil {
		return p.CanRead
	}
	return nil
}

// ownError is the error a query gets read with the caller's eyes (verr,
// against the classes it may see) when that is one of its own: a class
// it may not read is unknown to it, as one that does not exist. Nil when
// it is the error everyone gets (err), which restrict treats, or none.
func ownError(err, verr error) error {
	if verr != nil && (err == nil || verr.Error() != err.Error()) {
		return verr
	}
	return nil
}

// canRead says whether the caller of ctx may see class in the catalogue.
func (s *Server) canRead(ctx context.Context, class string) bool {
	p := principal(ctx)
	return p == nil || p.CanRead(class)
}

// plan parses, plans and authorizes sql for the caller of ctx. A class the
// caller may not read is, where the query names it as a table, an unknown
// table exactly like one that does not exist: the query is read again with
// the caller's eyes (sql.ParseQueryVisible) to say so. (Reading it so in
// the first place would key the front end's cache by caller.)
func (s *Server) plan(ctx context.Context, text string, prepared bool) (*query, error) {
	q, err := s.planSQL(ctx, text, prepared)
	if p := principal(ctx); p != nil && (err != nil || p.Deny(q.classes()...) != nil) {
		// An error of its own (not the one everyone gets) names no hidden
		// class: the query was read without them.
		st, rel, verr := sql.ParseQueryVisible(s.repoOf(ctx).graph, text, p.CanRead, s.readableBy(ctx, p))
		if own := ownError(err, verr); own != nil {
			return nil, own
		}
		// Read so, a `*` is the columns the caller may read (a BI tool's
		// browse of a class with a column computed from a hidden one).
		if verr == nil && err == nil {
			if mine, merr := s.planParsed(ctx, st, rel, prepared); merr == nil && p.Deny(mine.classes()...) == nil {
				q = mine
			}
		}
	}
	return s.guard(ctx, q, err)
}

// guard is what every front end does with what it planned: a failure is
// restricted (it must not name hidden classes), a plan is authorized
// against every class it reads.
func (s *Server) guard(ctx context.Context, q *query, err error) (*query, error) {
	if err != nil {
		return nil, s.restrict(ctx, err)
	}
	if err := s.authorize(ctx, q.classes()...); err != nil {
		if ferr := s.deniedFeature(ctx, q); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	return q, nil
}

// deniedFeature refuses a query whose tables the caller may read but
// one of whose columns needs a class it may not (a has-one path, an
// aggregation over a relation): by that column's own name, so that the
// refusal does not name the hidden class. Nil when no single column is to
// blame.
func (s *Server) deniedFeature(ctx context.Context, q *query) error {
	p := principal(ctx)
	type one struct {
		class  *features.Class
		inputs []arrow.Field
		out    statement.Output
	}
	var outs []one
	switch {
	case q.st != nil:
		for _, o := range q.st.Outputs {
			outs = append(outs, one{q.st.Class, q.st.Inputs, o})
		}
	case q.rel != nil:
		for _, sc := range q.rel.Relational().Scans {
			if sc.Class.Primary == nil {
				continue
			}
			in := []arrow.Field{{Name: sc.Class.Primary.Name, Type: sc.Class.Primary.Type.Arrow()}}
			for _, o := range sc.Outputs {
				outs = append(outs, one{sc.Class, in, o})
			}
		}
	}
	for _, o := range outs {
		if !s.reachesHidden(ctx, p, o.class, o.inputs, o.out) {
			continue
		}
		name := o.out.Name
		if name == "" {
			name = o.out.Expr.String()
		}
		where := ""
		if pos := o.out.Expr.Position(); pos.Line > 0 {
			where = pos.String() + ": "
		}
		return status.Errorf(codes.PermissionDenied, "%stoken %q may not read column %s of %s: it is computed from data outside the token's scopes (%s)", where, p.Name, name, o.class.Table, strings.Join(p.Scopes(), ", "))
	}
	return nil
}

// reachesHidden says whether out, asked of class over inputs, reads a
// class p may not read (planned alone; false when it does not plan).
func (s *Server) reachesHidden(ctx context.Context, p *auth.Principal, class *features.Class, inputs []arrow.Field, out statement.Output) bool {
	st, err := statement.New(class, inputs, []statement.Output{out})
	if err != nil {
		return false
	}
	plan, err := s.repoOf(ctx).engine.Prepare(st)
	return err == nil && p.Deny(plan.Classes()...) != nil
}

// readableBy says which features p may read whole: those whose values
// read no class outside its scopes (planner.Engine.Reads).
func (s *Server) readableBy(ctx context.Context, p *auth.Principal) func(*features.Feature) bool {
	e := s.repoOf(ctx).engine
	return func(f *features.Feature) bool { return p.Deny(e.Reads(f)...) == nil }
}

// restrict keeps a failed query's error from telling the caller about
// classes it may not read: messages name tables and suggest names, so one
// that names a hidden class refuses the query as reaching data out of
// scope, without the name: the caller may have come to the class by a
// relation of another name (`product: Widget`).
func (s *Server) restrict(ctx context.Context, err error) error {
	p := principal(ctx)
	if p == nil {
		return err
	}
	hidden, err := statement.Hide(s.repoOf(ctx).graph, err, p.CanRead)
	if len(hidden) == 0 {
		return err
	}
	where := ""
	var se *statement.Error
	if errors.As(err, &se) && se.Pos.Line > 0 {
		where = se.Pos.String() + ": "
	}
	return status.Errorf(codes.PermissionDenied, "%stoken %q may not read part of this query: it reaches data outside the token's scopes (%s)", where, p.Name, strings.Join(p.Scopes(), ", "))
}

// preparedKey is handle among the prepared statements of the caller of
// ctx: another token's handle is unknown to it.
func preparedKeyOf(ctx context.Context, handle string) preparedKey {
	k := preparedKey{handle: handle}
	if p := principal(ctx); p != nil {
		k.owner = p.Name
	}
	return k
}

// preparedQuery is the caller's prepared statement of handle, authorized
// again: a handle is a capability only for who prepared it, and only while
// it may read what the statement reads.
func (s *Server) preparedQuery(ctx context.Context, handle string) (*query, error) {
	q, err := s.prepared.get(preparedKeyOf(ctx, handle))
	if err != nil {
		return nil, err
	}
	if q.repo != nil && q.repo != s.repoOf(ctx) {
		return nil, errReloaded
	}
	if err := s.authorize(ctx, q.classes()...); err != nil {
		return nil, err
	}
	return q, nil
}
