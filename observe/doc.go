// Package observe is what a server tells its operators: Prometheus
// metrics (Metrics, fed by the flight server and the planner through
// their Observer interfaces), structured logs that name the trace id of
// the query they belong to (Handler), and the HTTP port serving /metrics,
// /healthz and /readyz (Serve). docs/OPERATIONS.md lists the metrics.
//
// It knows the metrics library and the shape of what is observed; it knows
// nothing of how queries are planned or answered.
package observe
