// Package operators holds fletch's vectorized operators over Arrow arrays:
// hash indexes and point-in-time lookups (the joins between feature
// classes), the has-many expansion, gathers, deduplication and constant
// broadcast. The function library (functions/) and grouped aggregation
// (aggregate/) live in sub-packages.
//
// Operators work on whole columns, never row by row through interfaces, and
// know nothing about feature classes, resolvers or queries: the planner
// wires them into plans.
package operators
