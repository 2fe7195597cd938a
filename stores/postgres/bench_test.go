package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

// BenchmarkFetch is one resolver query of one request for 1, 100 and
// 10,000 string keys over a 200,000-row table, 20 rows per key (as the
// DuckDB source's BenchmarkKeyPushdown), decoded into Arrow.
func BenchmarkFetch(b *testing.B) {
	src := openTest(b, Options{}, `
		CREATE TABLE events AS
		SELECT 'u' || (i % 10000) AS user_id, i AS id, i * 0.5 AS amount, 'kind ' || (i % 7) AS kind,
		       TIMESTAMPTZ '2024-01-01 00:00:00+00' + make_interval(secs => i) AS at
		FROM generate_series(1, 200000) i;
		CREATE INDEX ON events (user_id);
		ANALYZE events;`)
	const query = "SELECT user_id, id, amount::float8 AS amount, kind, at FROM events"
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			mem := memory.NewGoAllocator()
			kb := array.NewStringBuilder(mem)
			for i := range n {
				kb.Append(fmt.Sprintf("u%d", i*(10000/n)))
			}
			keys := kb.NewArray()
			kb.Release()
			defer keys.Release()
			req := stores.FetchRequest{SQL: query, KeyColumn: "user_id", Keys: keys}
			rows := int64(0)
			for b.Loop() {
				rec, err := src.Fetch(context.Background(), mem, req)
				if err != nil {
					b.Fatal(err)
				}
				rows = rec.NumRows()
				rec.Release()
			}
			b.ReportMetric(float64(rows), "rows")
		})
		// The floor: the same query through pgx, its rows read but not
		// decoded.
		b.Run(fmt.Sprintf("keys=%d/pgx-undecoded", n), func(b *testing.B) {
			keys := make([]string, n)
			for i := range keys {
				keys[i] = fmt.Sprintf("u%d", i*(10000/n))
			}
			q := restrictToKeys(query, nil, "user_id", "text", 1)
			for b.Loop() {
				rows, err := src.Pool().Query(context.Background(), q, binaryResults, keys)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					_ = rows.RawValues()
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
