package planner

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features/expr"
)

// AsOfColumn is the input column that gives each input row its own
// evaluation time (the point-in-time path).
const AsOfColumn = "__as_of__"

// Query is a feature query, whatever front end it came from (SQL text,
// Substrait, the native feature query, the CLI).
type Query struct {
	// Class is the root feature class (table name or Python name).
	Class string
	// Inputs holds one row per requested entity. Its columns are named by
	// features of Class: the primary key (`id`) or the features the key is
	// derived from (`user_id`, `item_id`), plus optionally AsOfColumn, a
	// timestamp giving that row's evaluation time.
	Inputs arrow.RecordBatch
	// Outputs are the requested columns, in order.
	Outputs []Output
	// Now is the evaluation time of rows without their own; zero means the
	// time the query starts.
	Now time.Time
}

// Output is one requested column: a feature path (`full_name`,
// `item.title`, `review_count__604800__`) or any expression over the class.
type Output struct {
	Expr expr.Node
	// Name is the result column's name; empty means derived from Expr.
	Name string
}
