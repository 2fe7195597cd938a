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
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/flight/sqlfront"
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
)

var sessionOptionNames = []string{optCatalog, optSchema, optNow}

// sessionOptions installs arrow-go's session middleware with stateless
// sessions: the options travel in the `arrow_flight_session` cookie, so
// sessions cost the server no memory and any server of a fleet reads them.
func sessionOptions() []grpc.ServerOption {
	mw := arrowflight.CreateServerMiddleware(session.NewServerSessionMiddleware(lenientSessions{session.NewStatelessServerSessionManager()}))
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(mw.Unary), grpc.ChainStreamInterceptor(mw.Stream)}
}

// lenientSessions starts a fresh session where the session cookie cannot
// be read: the middleware would panic on that error, and a cookie is the
// client's to garble.
type lenientSessions struct{ session.ServerSessionManager }

func (m lenientSessions) GetSession(ctx context.Context) (session.ServerSession, error) {
	s, err := m.ServerSessionManager.GetSession(ctx)
	if err != nil {
		return nil, session.ErrNoSession
	}
	return s, nil
}

// currentSession is the session of the call; the middleware gives every
// call one.
func currentSession(ctx context.Context) (session.ServerSession, error) {
	s, err := session.GetSessionFromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Internal, "no session on this call: the session middleware is not installed")
	}
	return s, nil
}

// now is the evaluation time of the queries of ctx's session: its
// fletch.now option, else the server's clock.
func (s *Server) now(ctx context.Context) time.Time {
	if sess, err := session.GetSessionFromContext(ctx); err == nil {
		if v := sess.GetSessionOption(optNow); v != nil {
			// Checked when it was set; a cookie the client edited since
			// falls back to the clock.
			if t, err := sqlfront.ParseTime(v.GetStringValue()); err == nil {
				return t
			}
		}
	}
	return s.opts.Now()
}

// checkSessionOption says what is wrong with setting name to v, nil when
// nothing is.
func checkSessionOption(name string, v *arrowflight.SessionOptionValue) (pb.SetSessionOptionsResult_ErrorValue, error) {
	str, isString := v.GetOptionValue().(*pb.SessionOptionValue_StringValue)
	switch name {
	case optCatalog, optSchema:
		want := map[string]string{optCatalog: sqlfront.Catalog, optSchema: sqlfront.Schema}[name]
		if !isString || !strings.EqualFold(str.StringValue, want) {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: fletch has the one %s %q, not %s", name, name, want, v)
		}
	case optNow:
		if !isString {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: want a timestamp string (2024-01-31T12:00:00Z), not %s", name, v)
		}
		if _, err := sqlfront.ParseTime(str.StringValue); err != nil {
			return arrowflight.SetSessionOptionsResultErrorInvalidValue, fmt.Errorf("session option %s: %v", name, err)
		}
	default:
		return arrowflight.SetSessionOptionsResultErrorInvalidName, fmt.Errorf("unknown session option %q%s", name, features.DidYouMean(name, sessionOptionNames))
	}
	return 0, nil
}

// SetSessionOptions sets the options that are valid and reports each
// invalid one in the result (the Flight RPC's contract); a value with no
// value unsets the option.
func (s *Server) SetSessionOptions(ctx context.Context, req *arrowflight.SetSessionOptionsRequest) (*arrowflight.SetSessionOptionsResult, error) {
	sess, err := currentSession(ctx)
	if err != nil {
		return nil, err
	}
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
	return res, nil
}

// GetSessionOptions answers the session's options, with the catalog and
// schema in effect when the session did not set them.
func (s *Server) GetSessionOptions(ctx context.Context, req *arrowflight.GetSessionOptionsRequest) (*arrowflight.GetSessionOptionsResult, error) {
	sess, err := currentSession(ctx)
	if err != nil {
		return nil, err
	}
	opts := sess.GetSessionOptions()
	for name, def := range map[string]string{optCatalog: sqlfront.Catalog, optSchema: sqlfront.Schema} {
		if _, ok := opts[name]; !ok {
			opts[name] = &arrowflight.SessionOptionValue{OptionValue: &pb.SessionOptionValue_StringValue{StringValue: def}}
		}
	}
	return &arrowflight.GetSessionOptionsResult{SessionOptions: opts}, nil
}

// CloseSession ends the session: the middleware tells the client to drop
// its cookie, and later calls start afresh.
func (s *Server) CloseSession(ctx context.Context, req *arrowflight.CloseSessionRequest) (*arrowflight.CloseSessionResult, error) {
	sess, err := currentSession(ctx)
	if err != nil {
		return nil, err
	}
	if err := sess.Close(); err != nil {
		return nil, status.Errorf(codes.Internal, "closing the session: %v", err)
	}
	return &arrowflight.CloseSessionResult{Status: arrowflight.CloseSessionResultClosed}, nil
}
