package flight

import (
	"context"
	"fmt"
	"strings"
	"time"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// Session options a client may set (SetSessionOptions). catalog and
// schema are what JDBC's `catalog=` / ADBC's current catalog and schema
// set: fletch has one of each, so they are checked, not switched. optNow
// is the evaluation time of the session's later queries that do not say
// `__as_of__`.
const (
	optCatalog = "catalog"
	optSchema  = "schema"
	optNow     = "fletch.now"
	// The planner options of materialized offline queries (docs/TILES.md).
	optMaterialized = "fletch.use_materialized_offline_query"
	optAlign        = "fletch.align_offline_chalk_window_with_materialization"
	// optRecompute is Chalk's recompute_features: true (the default),
	// false (read the values served from the offline store) or a list of
	// the features still recomputed (docs/STORES.md).
	optRecompute = "fletch.recompute_features"
)

var sessionOptionNames = []string{optCatalog, optSchema, optNow, optMaterialized, optAlign, optRecompute}

// Sessions are stateless: the options travel in arrow-go's
// `arrow_flight_session` cookie, so sessions cost the server no memory and
// any server of a fleet reads them. They are read only where a call needs
// them (the evaluation time and the session RPCs), and a cookie is sent only
// when SetSessionOptions or CloseSession changes the session: arrow-go's
// middleware decoded and re-encoded a session on every call, 5 % of a
// one-entity query's CPU on the server, for clients that mostly never set
// an option.
var sessions = session.NewStatelessServerSessionManager()

// sessionCookie is the session cookie's header prefix; a call without it
// has the empty session.
const sessionCookie = session.StatelessSessionCookieName + "="

// currentSession is the call's session, decoded from its cookie; a call
// without one, or whose cookie cannot be read (a cookie is the client's to
// garble), starts a fresh session.
func currentSession(ctx context.Context) session.ServerSession {
	if s, err := sessions.GetSession(ctx); err == nil {
		return s
	}
	s, _ := sessions.CreateSession(ctx) // cannot fail: stateless
	return s
}

// hasSessionCookie says whether the call carries a session cookie, without
// parsing cookies: the query path asks on every call.
func hasSessionCookie(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	for _, c := range md.Get("cookie") {
		if strings.Contains(c, sessionCookie) {
			return true
		}
	}
	return false
}

// sendSession sends the session's cookie in the response header, where
// every client reads it (the Java client reads trailers only on errors).
// The session RPCs are DoActions, so this must run before the result is
// sent.
func sendSession(ctx context.Context, sess session.ServerSession) error {
	c, err := session.CreateCookieForSession(sess)
	if err != nil {
		return status.Errorf(codes.Internal, "encoding the session cookie: %v", err)
	}
	if sess.Closed() {
		c.Value, c.MaxAge = "", -1 // the client drops its cookie
	}
	if err := grpc.SetHeader(ctx, metadata.Pairs("set-cookie", c.String())); err != nil {
		return status.Errorf(codes.Internal, "sending the session cookie: %v", err)
	}
	return nil
}

// now is the evaluation time of the queries of ctx's session: its
// fletch.now option, else the server's clock.
func (s *Server) now(ctx context.Context) time.Time {
	if hasSessionCookie(ctx) {
		if v := currentSession(ctx).GetSessionOption(optNow); v != nil {
			// Checked when it was set; a cookie the client edited since
			// falls back to the clock.
			if t, err := coerce.ParseTime(v.GetStringValue()); err == nil {
				return t
			}
		}
	}
	return s.opts.Now()
}

// sessionBool reads a boolean option: a bool, or the string true/false.
func sessionBool(v *arrowflight.SessionOptionValue) (bool, bool) {
	switch o := v.GetOptionValue().(type) {
	case *pb.SessionOptionValue_BoolValue:
		return o.BoolValue, true
	case *pb.SessionOptionValue_StringValue:
		switch strings.ToLower(o.StringValue) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// plannerOptions applies the session's planner options to o.
func plannerOptions(ctx context.Context, o *planner.RunOptions) {
	if !hasSessionCookie(ctx) {
		return
	}
	sess := currentSession(ctx)
	for name, to := range map[string]*bool{optMaterialized: &o.Materialized, optAlign: &o.AlignWindows} {
		if v := sess.GetSessionOption(name); v != nil {
			if b, ok := sessionBool(v); ok {
				*to = b
			}
		}
	}
	if v := sess.GetSessionOption(optRecompute); v != nil {
		if b, ok := sessionBool(v); ok {
			o.FromLog = !b
		} else if list := v.GetStringListValue(); list != nil {
			o.FromLog, o.Recompute = true, list.GetValues()
		}
	}
}

// checkSessionOption says what is wrong with setting name to v, nil when
// nothing is.
func checkSessionOption(name string, v *arrowflight.SessionOptionValue) (pb.SetSessionOptionsResult_ErrorValue, error) {
	str, isString := v.GetOptionValue().(*pb.SessionOptionValue_StringValue)
	switch name {
	case optCatalog, optSchema:
		want := map[string]string{optCatalog: statement.Catalog, optSchema: statement.Schema}[name]
		if !isString || !strings.EqualFold(str.StringValue, want) {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: fletch has the one %s %q, not %s", name, name, want, v)
		}
	case optMaterialized, optAlign:
		if _, ok := sessionBool(v); !ok {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: want true or false, not %s", name, v)
		}
	case optRecompute:
		if _, ok := sessionBool(v); !ok && v.GetStringListValue() == nil {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: want true, false or a list of feature names, not %s", name, v)
		}
	case optNow:
		if !isString {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: want a timestamp string (2024-01-31T12:00:00Z), not %s", name, v)
		}
		if _, err := coerce.ParseTime(str.StringValue); err != nil {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: %v", name, err)
		}
	default:
		return arrowflight.SetSessionOptionsResultErrorInvalidName, fmt.Errorf("unknown session option %q%s", name, suggest.DidYouMean(name, sessionOptionNames))
	}
	return 0, nil
}

// SetSessionOptions sets the options that are valid and reports each
// invalid one in the result (the Flight RPC's contract); a value with no
// value unsets the option.
func (s *Server) SetSessionOptions(ctx context.Context, req *arrowflight.SetSessionOptionsRequest) (*arrowflight.SetSessionOptionsResult, error) {
	sess := currentSession(ctx)
	res := &arrowflight.SetSessionOptionsResult{}
	for name, v := range req.GetSessionOptions() {
		if v.GetOptionValue() == nil {
			sess.EraseSessionOption(name)
			continue
		}
		if code, err := checkSessionOption(name, v); err != nil {
			if res.Errors == nil {
				res.Errors = map[string]*arrowflight.SetSessionOptionsResultError{}
			}
			res.Errors[name] = &arrowflight.SetSessionOptionsResultError{Value: code}
			// The result has room for a code only: the reason goes in a
			// trailer for the clients that show them.
			_ = grpc.SetTrailer(ctx, map[string][]string{"fletch-session-error-" + strings.ReplaceAll(name, ".", "-"): {err.Error()}})
			continue
		}
		sess.SetSessionOption(name, v)
	}
	if err := sendSession(ctx, sess); err != nil {
		return nil, err
	}
	return res, nil
}

// GetSessionOptions answers the session's options, with the catalog and
// schema in effect when the session did not set them.
func (s *Server) GetSessionOptions(ctx context.Context, req *arrowflight.GetSessionOptionsRequest) (*arrowflight.GetSessionOptionsResult, error) {
	opts := currentSession(ctx).GetSessionOptions()
	for name, def := range map[string]string{optCatalog: statement.Catalog, optSchema: statement.Schema} {
		if _, ok := opts[name]; !ok {
			opts[name] = &arrowflight.SessionOptionValue{OptionValue: &pb.SessionOptionValue_StringValue{StringValue: def}}
		}
	}
	return &arrowflight.GetSessionOptionsResult{SessionOptions: opts}, nil
}

// CloseSession ends the session: the client is told to drop its cookie,
// and later calls start afresh.
func (s *Server) CloseSession(ctx context.Context, req *arrowflight.CloseSessionRequest) (*arrowflight.CloseSessionResult, error) {
	sess := currentSession(ctx)
	if err := sess.Close(); err != nil {
		return nil, status.Errorf(codes.Internal, "closing the session: %v", err)
	}
	if err := sendSession(ctx, sess); err != nil {
		return nil, err
	}
	return &arrowflight.CloseSessionResult{Status: arrowflight.CloseSessionResultClosed}, nil
}
