//go:build !duckdb_arrow

package wide

import (
	"database/sql"
	"testing"
)

// arrowFloor has nothing to measure in a build without DuckDB's Arrow
// interface (the duckdb_arrow tag).
func arrowFloor(*testing.B, string, *sql.DB, string, func(int) int64) {}
