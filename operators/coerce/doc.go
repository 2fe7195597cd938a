// Package coerce converts Arrow arrays between the types fletch computes
// on. The planner, the SQL front end, the stores and the Flight server all
// receive columns in whatever types a client or a source chose (a key as
// string_view, an id as uint32, a timestamp in ns with a zone, a DuckDB
// DECIMAL(38, 0)) and need one answer to "does this convert, and to what";
// this package is that answer, so that they cannot disagree.
//
// It knows nothing of features, plans or front ends: it imports only
// arrow-go and the standard library, and its errors name rows and values,
// not columns (the caller knows the column).
//
// Conversions go through arrow-go's compute.CastArray wherever that is
// correct and frees what it allocates. The hand-written paths each say
// why they exist; in short, arrow-go v18.8 has no string_view or decimal32/64
// cast kernels, its integer-to-string and list casts leak buffers, its
// string parsing neither trims spaces nor names the row, and its timestamp
// casts refuse to drop sub-unit digits and read a zoned timestamp's date in
// the zone instead of UTC.
package coerce
