// Package planner turns feature queries into plans and runs them: it binds
// the names of a query against the feature graph, derives each output from
// its producers (input columns, SQL resolvers, expressions, aggregations over
// relations), prunes what is not needed, and executes the plan as stages of
// vectorized operators over Arrow record batches, independent stages
// concurrently. Plans are cached by statement key.
//
// It knows no wire protocol (front ends build statements, flight/ and the CLI run them) and no
// database driver (sources come in through the Sources interface).
package planner
