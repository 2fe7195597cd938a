package offline

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// DuckDB is a Sink appending to a table of a DuckDB database.
type DuckDB struct {
	db            *sql.DB
	schema, table string
}

// OpenDuckDB creates table (schema-qualified or not; default DefaultTable)
// in db when missing. db stays the caller's: it may be a source's database
// too, since one DuckDB file opens once per process.
func OpenDuckDB(ctx context.Context, db *sql.DB, table string) (*DuckDB, error) {
	if table == "" {
		table = DefaultTable
	}
	d := &DuckDB{db: db, table: table}
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		d.schema, d.table = table[:i], table[i+1:]
	}
	// No index: appends stay cheap, and a point-in-time read scans the
	// columns it needs, pruned by DuckDB's per-row-group min/max.
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+d.quoted()+` (
	class       VARCHAR     NOT NULL,
	entity_key  VARCHAR     NOT NULL,
	feature     VARCHAR     NOT NULL,
	value       JSON,
	observed_at TIMESTAMPTZ NOT NULL,
	trace_id    VARCHAR     NOT NULL
)`)
	if err != nil {
		return nil, fmt.Errorf("offline store: creating table %s: %w", table, err)
	}
	return d, nil
}

func (d *DuckDB) quoted() string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	if d.schema == "" {
		return q(d.table)
	}
	return q(d.schema) + "." + q(d.table)
}

// Write appends rows with DuckDB's appender, committed together.
func (d *DuckDB) Write(ctx context.Context, rows []Row) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), d.schema, d.table)
		if err != nil {
			return err
		}
		for i := range rows {
			r := &rows[i]
			var value driver.Value
			if r.Value != nil {
				value = json.RawMessage(r.Value) // the appender marshals a JSON column's value
			}
			if err := app.AppendRow(r.Class, r.Key, r.Feature, value, r.Observed, r.TraceID); err != nil {
				app.Close()
				return err
			}
		}
		return app.Close()
	})
}

// Close does nothing: the database is the caller's.
func (d *DuckDB) Close() error { return nil }

// asOf runs the as-of join with DuckDB's ASOF JOIN: the query's rows and
// features go as LIST parameters, the log is narrowed to their keys and
// features first, and ties at one instant go to the greatest trace_id
// (arg_max_null: a logged null is an answer too).
func (d *DuckDB) asOf(ctx context.Context, q *asOfQuery, hit func(asOfHit)) error {
	fi := make([]int32, len(q.features))
	for j := range fi {
		fi[j] = int32(j)
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// DuckDB estimates the unnested rows at one, and below
	// asof_loop_join_threshold it runs an ASOF join as a nested loop over
	// the whole log (28 s instead of 0.1 s for 10,000 spine rows, see
	// BenchmarkAsOf): this connection, which a source may share, plans the
	// join as a sort-merge, then gets its default back.
	if _, err := conn.ExecContext(ctx, "SET asof_loop_join_threshold = 0"); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), "RESET asof_loop_join_threshold")
	rows, err := conn.QueryContext(ctx, `WITH probe AS (
	SELECT s.*, f.* FROM
		(SELECT unnest($1::VARCHAR[]) AS entity_key, unnest($2::BIGINT[]) AS t, unnest($3::INTEGER[]) AS r) s,
		(SELECT unnest($4::VARCHAR[]) AS feature, unnest($5::INTEGER[]) AS fi) f
), logged AS (
	SELECT entity_key, feature, epoch_us(observed_at) AS observed_us, arg_max_null(value::VARCHAR, trace_id) AS value
	FROM `+d.quoted()+`
	WHERE class = $6 AND feature IN (SELECT unnest($4::VARCHAR[])) AND entity_key IN (SELECT unnest($1::VARCHAR[]))
	GROUP BY entity_key, feature, observed_us
)
SELECT p.r, p.fi, l.value, l.observed_us
FROM probe p ASOF JOIN logged l ON p.entity_key = l.entity_key AND p.feature = l.feature AND p.t >= l.observed_us`,
		q.keys, q.at, q.rows, q.features, fi, q.class)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h asOfHit
		var value sql.NullString
		if err := rows.Scan(&h.row, &h.feature, &value, &h.observed); err != nil {
			return err
		}
		if value.Valid {
			h.value = []byte(value.String)
		}
		hit(h)
	}
	return rows.Err()
}
