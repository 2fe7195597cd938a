package statement

import (
	"time"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
)

// Relational is a query beyond a feature lookup (package relational runs
// it): SQL over the answers of scans of feature classes. Each table of the
// client's SQL that names a class is a Scan — its entities listed, their
// features computed — and the rest of the SQL (aggregates, joins, ORDER BY,
// sub-selects, ...) runs over the scans' results, never at a source.
type Relational struct {
	// Text is the query as the client wrote it.
	Text string
	// SQL is the query run over the scans: the client's, read and written
	// back (PostgreSQL's syntax, which DuckDB reads), with each class table
	// replaced by its scan's View and the __as_of__ conditions (read into
	// Scan.AsOf) replaced by TRUE.
	SQL   string
	Scans []*Scan
	// Windows says that the SQL has window functions.
	Windows bool
	// Explain asks for the plan instead of the answer (`EXPLAIN SELECT …`).
	Explain bool
	// Columns are where the client's text first names each column (by its
	// last name, lower case): errors of the SQL over the scans point there.
	Columns map[string]expr.Pos
}

// Scan is one table of a relational query: the entities of a class, with
// the features the query reads.
type Scan struct {
	// View is the name the SQL reads the scan's result by.
	View  string
	Class *features.Class
	// Outputs are the columns of the scan's result: features (and has-one
	// paths) of Class, named as the SQL reads them.
	Outputs []Output
	// AsOf is the evaluation time of every entity (`__as_of__ = …` in the
	// WHERE that reads the table); zero: the query's now.
	AsOf time.Time
	// Limit is the most entities the query can need (a LIMIT over this
	// table alone), -1 when it needs them all. It holds only when every
	// filter is pushed into the listing (WhereComplete).
	Limit int64
	// Filters are conditions of the WHERE over this table's features: the
	// listing of entities may apply those it can (the SQL applies them all
	// again).
	Filters []Filter
	// WhereComplete says that Filters are the whole WHERE of the select
	// that reads this table.
	WhereComplete bool
	// Pos is where the query names the table.
	Pos expr.Pos
}

// Filter is a condition on one feature of a scanned class: `feature op
// value` (op one of = <> < <= > >=), `feature IN (values)` (op "in"), or
// `feature IS [NOT] NULL` (op "null", "notnull"). Values are int64,
// float64, string or bool.
type Filter struct {
	Feature string
	Op      string
	Values  []any
}
