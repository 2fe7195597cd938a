package flight

import (
	"context"
	"fmt"

	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"

	"github.com/fletch-engine/fletch/internal/trace"
	"github.com/fletch-engine/fletch/substrait"
)

// planSubstrait reads, plans and authorizes a Substrait plan for the caller
// of ctx, as plan does for SQL text.
func (s *Server) planSubstrait(ctx context.Context, plan []byte, prepared bool) (*query, error) {
	_, sp := trace.Start(ctx, s.tracer, "parse substrait")
	g := s.repoOf(ctx).graph
	st, err := substrait.Parse(g, plan)
	if vis := visibleTo(ctx); vis != nil && (err != nil || !vis(st.Class.Table)) {
		_, verr := substrait.Parse(g.Restricted(vis), plan)
		if own := ownError(err, verr); own != nil {
			trace.End(sp, own)
			return nil, own
		}
	}
	trace.End(sp, err)
	var q *query
	if err == nil {
		q, err = s.planStatement(ctx, st, prepared)
	}
	return s.guard(ctx, q, err)
}

// GetFlightInfoSubstraitPlan plans a Substrait plan. Like a SQL statement's,
// the ticket carries the plan itself.
func (s *Server) GetFlightInfoSubstraitPlan(ctx context.Context, cmd flightsql.StatementSubstraitPlan, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	plan := cmd.GetPlan().Plan
	q, err := s.planSubstrait(ctx, plan, false)
	if err != nil {
		return nil, err
	}
	ticket, err := statementTicket(ticketSubstrait, plan)
	if err != nil {
		return nil, err
	}
	return s.flightInfo(desc, q.answer.info, ticket), nil
}

// GetSchemaSubstraitPlan plans a Substrait plan for its result schema.
func (s *Server) GetSchemaSubstraitPlan(ctx context.Context, cmd flightsql.StatementSubstraitPlan, desc *arrowflight.FlightDescriptor) (*arrowflight.SchemaResult, error) {
	q, err := s.planSubstrait(ctx, cmd.GetPlan().Plan, false)
	if err != nil {
		return nil, err
	}
	return &arrowflight.SchemaResult{Schema: q.answer.info}, nil
}

// CreatePreparedSubstraitPlan prepares a Substrait plan: executed, bound
// and closed as a prepared SQL statement is. Its dynamic parameters are the
// parameters, in the order of their references.
func (s *Server) CreatePreparedSubstraitPlan(ctx context.Context, req flightsql.ActionCreatePreparedSubstraitPlanRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	q, err := s.planSubstrait(ctx, req.GetPlan().Plan, true)
	if err != nil {
		return flightsql.ActionCreatePreparedStatementResult{}, err
	}
	return s.keepPrepared(ctx, q), nil
}

// registerSubstraitInfo reports Substrait support in SqlInfo, over what the
// catalogue registered.
func (s *Server) registerSubstraitInfo() {
	for id, v := range map[flightsql.SqlInfo]any{
		flightsql.SqlInfoFlightSqlServerSubstrait:           true,
		flightsql.SqlInfoFlightSqlServerSubstraitMinVersion: substrait.MinVersion,
		flightsql.SqlInfoFlightSqlServerSubstraitMaxVersion: substrait.MaxVersion,
	} {
		if err := s.RegisterSqlInfo(id, v); err != nil {
			panic(fmt.Sprintf("flight: SqlInfo %d: %v", id, err)) // a typo in the table above
		}
	}
}
