package tiles

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores"
)

// Store keeps tiles in a database (DuckDB or Postgres): one table per
// (windowed feature, bucket duration), a catalog of those tables with the
// definition they were computed under, and the ranges each covers.
//
// A range is written in one transaction (its tiles replaced, its coverage
// recorded), so an interrupted backfill leaves whole ranges or nothing, and
// running it again gives the same tiles.
type Store struct {
	db  *sql.DB
	src stores.Source // reads tiles as Arrow
	dl  Dialect
	// cache keeps whole tile tables in memory for training sets
	// (Resident).
	cache *residentCache
}

const (
	catalogTable  = "fletch_tile_catalog"
	coverageTable = "fletch_tile_coverage"
)

// Open opens the tile store in the database of src (a DuckDB or Postgres
// source; db is the same database through database/sql), creating its
// catalog when missing. Close releases the tiles it keeps resident.
func Open(ctx context.Context, db *sql.DB, src stores.Source, opts ...Option) (*Store, error) {
	dl, err := DialectOf(src)
	if err != nil {
		return nil, err
	}
	st := &Store{db: db, src: src, dl: dl, cache: newResidentCache()}
	for _, o := range opts {
		o(st)
	}
	ts := "TIMESTAMPTZ"
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + catalogTable + ` (tile_table VARCHAR PRIMARY KEY, feature VARCHAR NOT NULL, bucket_us BIGINT NOT NULL, definition VARCHAR NOT NULL, created_at ` + ts + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ` + coverageTable + ` (tile_table VARCHAR NOT NULL, range_start BIGINT NOT NULL, range_end BIGINT NOT NULL, events BIGINT NOT NULL, tiles BIGINT NOT NULL, written_at ` + ts + ` NOT NULL, PRIMARY KEY (tile_table, range_start))`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("tile store: %w", err)
		}
	}
	return st, nil
}

func (st *Store) sqlType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.INT64:
		return "BIGINT"
	case arrow.FLOAT64:
		return st.dl.double()
	case arrow.STRING:
		return "VARCHAR"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.TIMESTAMP:
		return "TIMESTAMPTZ"
	case arrow.DATE32:
		return "DATE"
	case arrow.BINARY:
		if st.dl == DuckDB {
			return "BLOB"
		}
		return "BYTEA"
	}
	return "VARCHAR"
}

// Prepare makes s's tile table of bucket d current: created when missing,
// emptied (with its coverage) when it was computed under another
// definition.
func (st *Store) Prepare(ctx context.Context, s *Spec, d time.Duration) error {
	table := s.Table(d)
	def, ok, err := st.definition(ctx, table)
	if err != nil {
		return err
	}
	if ok && def == s.Definition() {
		return nil
	}
	st.cache.drop(table)
	var cols []string
	for _, f := range s.Fields() {
		cols = append(cols, quote(f.Name)+" "+st.sqlType(f.Type))
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS ` + quote(table),
		`CREATE TABLE ` + quote(table) + ` (` + strings.Join(cols, ", ") + `)`,
		`DELETE FROM ` + coverageTable + ` WHERE tile_table = '` + table + `'`,
		`DELETE FROM ` + catalogTable + ` WHERE tile_table = '` + table + `'`,
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tile store: %w", err)
		}
	}
	_, err = st.db.ExecContext(ctx, `INSERT INTO `+catalogTable+` VALUES ($1, $2, $3, $4, $5)`,
		table, s.Group.QualifiedName(), d.Microseconds(), s.Definition(), time.Now().UTC())
	return err
}

func (st *Store) definition(ctx context.Context, table string) (string, bool, error) {
	var def string
	err := st.db.QueryRowContext(ctx, `SELECT definition FROM `+catalogTable+` WHERE tile_table = $1`, table).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("tile store: %w", err)
	}
	return def, true, nil
}

// Covered is one range a tile table holds, and what computing it read.
type Covered struct {
	Range
	Events, Tiles int64
	Written       time.Time
}

// Coverage lists the ranges of s's tiles of bucket d, by start; none when
// the table was computed under another definition than s's.
func (st *Store) Coverage(ctx context.Context, s *Spec, d time.Duration) ([]Covered, error) {
	table := s.Table(d)
	def, ok, err := st.definition(ctx, table)
	if err != nil || !ok || def != s.Definition() {
		return nil, err
	}
	rows, err := st.db.QueryContext(ctx, `SELECT range_start, range_end, events, tiles, written_at FROM `+coverageTable+` WHERE tile_table = $1 ORDER BY range_start`, table)
	if err != nil {
		return nil, fmt.Errorf("tile store: %w", err)
	}
	defer rows.Close()
	var out []Covered
	for rows.Next() {
		var c Covered
		if err := rows.Scan(&c.Lo, &c.Hi, &c.Events, &c.Tiles, &c.Written); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Replace writes rec (Fields of s) as the tiles of s's bucket d whose
// buckets start in chunk, and records that chunk's range r as covered, in
// one transaction.
func (st *Store) Replace(ctx context.Context, s *Spec, d time.Duration, chunk, r Range, rec arrow.RecordBatch, events int64) error {
	table := s.Table(d)
	// The resident copy is stale whatever the outcome (its version, the
	// coverage, would tell too; this frees the memory now).
	defer st.cache.drop(table)
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	del := []string{
		fmt.Sprintf(`DELETE FROM %s WHERE bucket_start >= %d AND bucket_start < %d`, quote(table), chunk.Lo, chunk.Hi),
		fmt.Sprintf(`DELETE FROM %s WHERE tile_table = '%s' AND range_start >= %d AND range_start < %d`, coverageTable, table, chunk.Lo, chunk.Hi),
	}
	cov := fmt.Sprintf(`INSERT INTO %s VALUES ('%s', %d, %d, %d, %d, '%s')`, coverageTable, table, r.Lo, r.Hi, events, rec.NumRows(), time.Now().UTC().Format(time.RFC3339Nano))
	rows := func(yield func([]any) error) error {
		get := make([]func(int) any, rec.NumCols())
		for c := range get {
			get[c] = goValue(rec.Column(c))
		}
		vals := make([]any, rec.NumCols())
		for i := range int(rec.NumRows()) {
			for c := range vals {
				vals[c] = get[c](i)
			}
			if err := yield(vals); err != nil {
				return err
			}
		}
		return nil
	}
	return conn.Raw(func(dc any) error {
		switch c := dc.(type) {
		case *stdlib.Conn:
			tx, err := c.Conn().Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			for _, q := range append(del, cov) {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			var all [][]any
			if err := rows(func(v []any) error { all = append(all, append([]any(nil), v...)); return nil }); err != nil {
				return err
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, fieldNames(s), pgx.CopyFromRows(all)); err != nil {
				return err
			}
			return tx.Commit(ctx)
		case driver.Conn:
			ex := c.(driver.ExecerContext)
			exec := func(q string) error { _, err := ex.ExecContext(ctx, q, nil); return err }
			if err := exec("BEGIN TRANSACTION"); err != nil {
				return err
			}
			err := func() error {
				for _, q := range del {
					if err := exec(q); err != nil {
						return err
					}
				}
				app, err := duckdb.NewAppenderFromConn(c, "", table)
				if err != nil {
					return err
				}
				vals := make([]driver.Value, rec.NumCols())
				if err := rows(func(v []any) error {
					for i := range v {
						vals[i] = v[i]
					}
					return app.AppendRow(vals...)
				}); err != nil {
					app.Close()
					return err
				}
				if err := app.Close(); err != nil {
					return err
				}
				return exec(cov)
			}()
			if err != nil {
				_ = exec("ROLLBACK")
				return err
			}
			return exec("COMMIT")
		}
		return fmt.Errorf("tile store: unsupported driver %T", dc)
	})
}

func fieldNames(s *Spec) []string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	return names
}

// goValue reads a column's values for a database driver.
func goValue(a arrow.Array) func(int) any {
	if b, ok := a.(*array.Binary); ok {
		return func(i int) any {
			if b.IsNull(i) {
				return nil
			}
			return append([]byte(nil), b.Value(i)...)
		}
	}
	return func(i int) any { return operators.GoValue(a, i) }
}

// readAllKeys is the most keys a tile read sends to the store: beyond, it
// reads every tile of the range, and the caller drops the other keys'
// (sending 10,000 keys cost more than reading the range, BenchmarkTrainingSet).
const readAllKeys = 1000

// Read returns s's tiles of bucket d whose buckets start in r: those of
// keys (every key when nil), and possibly others (the caller keeps the
// ones it needs), as a record of Fields, ordered by key and bucket.
func (st *Store) Read(ctx context.Context, mem memory.Allocator, s *Spec, d time.Duration, keys arrow.Array, r Range) (arrow.RecordBatch, error) {
	// Ordered, so that the planner need not sort them.
	q := fmt.Sprintf(`SELECT * FROM %s WHERE bucket_start >= %d AND bucket_start < %d ORDER BY key, bucket_start`, quote(s.Table(d)), r.Lo, r.Hi)
	req := stores.FetchRequest{SQL: q, Schema: arrow.NewSchema(s.Fields(), nil)}
	if keys != nil && keys.Len() <= readAllKeys {
		req.KeyColumn, req.Keys = "key", keys
	}
	rec, err := st.src.Fetch(ctx, mem, req)
	if err != nil {
		return nil, fmt.Errorf("tile store: %w", err)
	}
	return rec, nil
}

// TableStatus is what a tile table holds.
type TableStatus struct {
	Table, Feature string
	Bucket         time.Duration
	Definition     string
	Ranges         []Covered
}

// Status lists every tile table with its ranges, by table.
func (st *Store) Status(ctx context.Context) ([]TableStatus, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT tile_table, feature, bucket_us, definition FROM `+catalogTable+` ORDER BY tile_table`)
	if err != nil {
		return nil, fmt.Errorf("tile store: %w", err)
	}
	var out []TableStatus
	for rows.Next() {
		var t TableStatus
		var us int64
		if err := rows.Scan(&t.Table, &t.Feature, &us, &t.Definition); err != nil {
			rows.Close()
			return nil, err
		}
		t.Bucket = time.Duration(us) * time.Microsecond
		out = append(out, t)
	}
	rows.Close()
	for i := range out {
		cr, err := st.db.QueryContext(ctx, `SELECT range_start, range_end, events, tiles, written_at FROM `+coverageTable+` WHERE tile_table = $1 ORDER BY range_start`, out[i].Table)
		if err != nil {
			return nil, err
		}
		for cr.Next() {
			var c Covered
			if err := cr.Scan(&c.Lo, &c.Hi, &c.Events, &c.Tiles, &c.Written); err != nil {
				cr.Close()
				return nil, err
			}
			out[i].Ranges = append(out[i].Ranges, c)
		}
		cr.Close()
	}
	return out, nil
}
