package offline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is a Sink writing to a Postgres table with COPY.
type Postgres struct {
	pool  *pgxpool.Pool
	table pgx.Identifier
}

var columns = []string{"class", "entity_key", "feature", "value", "observed_at", "trace_id"}

// OpenPostgres connects to dsn and creates table (schema-qualified or
// not; default DefaultTable) and its index when missing.
func OpenPostgres(ctx context.Context, dsn, table string) (*Postgres, error) {
	if table == "" {
		table = DefaultTable
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("offline store: %w", err)
	}
	id := pgx.Identifier(strings.Split(table, "."))
	name := id.Sanitize()
	index := pgx.Identifier{id[len(id)-1] + "_by_feature_key_time"}.Sanitize()
	_, err = pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+name+` (
	class       text        NOT NULL,
	entity_key  text        NOT NULL,
	feature     text        NOT NULL,
	value       jsonb,
	observed_at timestamptz NOT NULL,
	trace_id    text        NOT NULL
);
CREATE INDEX IF NOT EXISTS `+index+` ON `+name+` (feature, entity_key, observed_at)`)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("offline store: creating table %s: %w", table, err)
	}
	return &Postgres{pool: pool, table: id}, nil
}

// Write copies rows into the table in one COPY.
func (p *Postgres) Write(ctx context.Context, rows []Row) error {
	_, err := p.pool.CopyFrom(ctx, p.table, columns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		var value any // a nil []byte would be the JSON "null", not NULL
		if r.Value != nil {
			value = r.Value
		}
		return []any{r.Class, r.Key, r.Feature, value, r.Observed, r.TraceID}, nil
	}))
	return err
}

// Close closes the connections.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// asOf runs the as-of join as one LATERAL query: per row and feature, the
// latest logged value at or before the row's time, found through the
// (feature, entity_key, observed_at) index; ties at one instant go to the
// greatest trace_id.
func (p *Postgres) asOf(ctx context.Context, q *asOfQuery, hit func(asOfHit)) error {
	at := make([]time.Time, len(q.at))
	for i, us := range q.at {
		at[i] = time.UnixMicro(us).UTC()
	}
	rows, err := p.pool.Query(ctx, `SELECT s.r, f.fi - 1, l.value::text, l.observed_at
FROM unnest($1::text[], $2::timestamptz[], $3::int4[]) AS s(entity_key, t, r)
CROSS JOIN unnest($4::text[]) WITH ORDINALITY AS f(feature, fi)
JOIN LATERAL (
	SELECT value, observed_at FROM `+p.table.Sanitize()+` l
	WHERE l.feature = f.feature AND l.entity_key = s.entity_key AND l.observed_at <= s.t AND l.class = $5
	ORDER BY l.observed_at DESC, l.trace_id DESC
	LIMIT 1
) l ON true`, q.keys, at, q.rows, q.features, q.class)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h asOfHit
		var fi int64
		var value *string
		var obs time.Time
		if err := rows.Scan(&h.row, &fi, &value, &obs); err != nil {
			return err
		}
		h.feature = int32(fi)
		if value != nil {
			h.value = []byte(*value)
		}
		h.observed = obs.UnixMicro()
		hit(h)
	}
	return rows.Err()
}
