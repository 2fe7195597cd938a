//go:build duckdb_arrow

package wide

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"testing"

	duckdbgo "github.com/duckdb/duckdb-go/v2"
)

// arrowFloor benchmarks q for the ids through DuckDB's Arrow interface:
// the floor of Source.Fetch's path for many keys.
func arrowFloor(b *testing.B, name string, db *sql.DB, q string, id func(int) int64) {
	b.Run(name, func(b *testing.B) {
		percentiles(b, func(i int) error { return bareArrow(context.Background(), db, q, id(i)) })
	})
}

// bareArrow runs q for id through DuckDB's Arrow interface on a pooled
// connection, as Source.Fetch does, and reads its records without copying
// them.
func bareArrow(ctx context.Context, db *sql.DB, q string, id int64) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		a, err := duckdbgo.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err := a.QueryContext(ctx, q, id)
		if err != nil {
			return err
		}
		defer rr.Release()
		var rows int64
		for rr.Next() {
			rows += rr.RecordBatch().NumRows()
		}
		if rows != 1 {
			return fmt.Errorf("%d rows", rows)
		}
		return rr.Err()
	})
}
