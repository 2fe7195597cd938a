// Package pgonline is the PostgreSQL online store: one row per (class,
// entity) holding that entity's packed features (stores/packed, the
// layout the Redis and memory stores keep), read for all the keys of a
// request with one query, and written in one transaction that locks the
// stored entities, merges the written ones into them in Go (packed.Merge)
// and replaces them, so that a stored value observed later is never
// replaced and a write of some features keeps the others. Entities not
// stored yet are upserted, the merge in SQL (mergeFunction, packed.Merge
// in PL/pgSQL) should another writer have inserted one meanwhile. Per
// class, a row of a directory table numbers its features
// (packed.Directory). docs/STORES.md has the layout.
//
// It knows nothing of feature classes beyond their names, nor of
// staleness: the planner decides what is fresh enough. Resolver queries
// against Postgres are stores/postgres, not this.
package pgonline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/packed"
)

// DefaultTable is the entities' table when Options.Table is empty.
const DefaultTable = "fletch_online"

// Options configures the store.
type Options struct {
	// DSN is a libpq connection string or URL.
	DSN string
	// Table holds the entities (schema-qualified or not; default
	// DefaultTable); the directory is the table <Table>_slots and the
	// merge function <Table>_merge_v3, beside it. They are created when
	// missing.
	Table string
	// MaxConns bounds the pool (0: pgx's default, the larger of 4 and the
	// number of CPUs).
	MaxConns int
}

// Store is a stores.OnlineStore over PostgreSQL. It is safe for concurrent
// use.
type Store struct {
	pool  *pgxpool.Pool
	where string // the table and server, for error messages
	// the statements, with the table's names in them
	getSQL, lockSQL, replaceSQL, setSQL, assignSQL, loadSQL, updateSQL string
	// dirs: class → *packed.Directory, kept in the directory table
	dirs sync.Map
}

var (
	_ stores.OnlineStore = (*Store)(nil)
	_ stores.Pinger      = (*Store)(nil)
)

// connectTimeout bounds connecting when the DSN says nothing: a cache
// that cannot be reached must fail fast, the planner computes instead.
const connectTimeout = 5 * time.Second

// Open connects, creates the tables and the merge function when missing
// (under an advisory lock: several servers may start at once), and checks
// that a table already there is one of this store's.
func Open(ctx context.Context, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(o.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, errors.New("postgres online store: the dsn is not a valid connection string or URL")
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = int32(o.MaxConns)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	// The store's two statements have one good plan whatever the keys
	// (an index probe per key): planning each execution anew for its
	// array (Postgres's default while it learns) was a third of a 1-key
	// Get's time on the test server.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	// That one plan must be the index probe per key whatever the table's
	// statistics when it is made. A generic plan made while the table was
	// empty (a new store, the first reads of a warm-up) joined the keys
	// with every entity of the class (a hash join; or, with hash joins
	// ruled out, a nested loop over the class rescanning the keys, ~40 s
	// for 10,000 keys), and kept doing so until autovacuum's ANALYZE
	// replanned, a minute or more later: p99 271 ms at 250 reads/s after
	// a warm-up (docs/BENCHMARKS.md §18). The statements look each key up
	// in a subquery of its own (getSQL), and the pool's connections rule
	// out the scans that read more than the key's row: an empty table's
	// sequential scan costs nothing to the planner.
	for _, p := range []string{"enable_seqscan", "enable_bitmapscan"} {
		cfg.ConnConfig.RuntimeParams[p] = "off"
	}
	// A request's context ending cancels its query on the server too.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 2 * time.Second}
	}
	table := o.Table
	if table == "" {
		table = DefaultTable
	}
	id := pgx.Identifier(strings.Split(table, "."))
	sibling := func(suffix string) string {
		n := slices.Clone(id)
		n[len(n)-1] += suffix
		return n.Sanitize()
	}
	entities, slotsTable, merge := id.Sanitize(), sibling("_slots"), sibling("_merge_v3")
	s := &Store{
		where: fmt.Sprintf("table %s at %s:%d/%s", table, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database),
		// The keys' ordinality is the row each entity answers (keys
		// repeated in a request each get theirs, and no map from key to
		// row is built); rows come in order, as stores.ValuesBuilder
		// takes them. Each key is a subquery of its own (LATERAL, not
		// pulled up: LIMIT), so that the one plan is an index probe per
		// key whatever the table's statistics (see Open).
		getSQL: `SELECT o.i, e.packed FROM unnest($2::text[]) WITH ORDINALITY AS o(entity, i) CROSS JOIN LATERAL (SELECT packed FROM ` + entities +
			` WHERE class = $1 AND entity = o.entity LIMIT 1) AS e ORDER BY o.i`,
		// A Set locks the stored entities in the keys' order (bytewise:
		// Set sorts them), merges in Go, and replaces them (write); the
		// replacing upsert finds each row by its key.
		lockSQL: `SELECT o.i, e.packed FROM unnest($2::text[]) WITH ORDINALITY AS o(entity, i) CROSS JOIN LATERAL (SELECT packed FROM ` + entities +
			` WHERE class = $1 AND entity = o.entity LIMIT 1 FOR UPDATE) AS e`,
		replaceSQL: `INSERT INTO ` + entities + ` AS e (class, entity, packed) SELECT $1, u.entity, u.packed FROM unnest($2::text[], $3::bytea[]) AS u(entity, packed)
ON CONFLICT (class, entity) DO UPDATE SET packed = excluded.packed`,
		setSQL: `INSERT INTO ` + entities + ` AS e (class, entity, packed) SELECT $1, u.entity, u.packed FROM unnest($2::text[], $3::bytea[]) AS u(entity, packed)
ON CONFLICT (class, entity) DO UPDATE SET packed = ` + merge + `(e.packed, excluded.packed)`,
		assignSQL: `INSERT INTO ` + slotsTable + ` (class, id, features) VALUES ($1, $2, '{}') ON CONFLICT (class) DO NOTHING`,
		loadSQL:   `SELECT id, features FROM ` + slotsTable + ` WHERE class = $1`,
		updateSQL: `UPDATE ` + slotsTable + ` SET features = $2 WHERE class = $1`,
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres online store: %s: %w", s.where, err)
	}
	if err := s.create(ctx, table, entities, slotsTable, merge); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// create makes what is missing of the store's tables and function.
// Entities are stored inline and compressed when large (STORAGE MAIN)
// rather than moved to a TOAST table, which would cost a read per entity.
func (s *Store) create(ctx context.Context, table, entities, slotsTable, merge string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres online store: cannot connect to %s: %w", s.where, err)
	}
	defer tx.Rollback(ctx)
	var missingTable, missingFunc bool
	err = tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(hashtext('fletch online store ' || $1)),
		to_regclass($2) IS NULL, to_regprocedure($3 || '(bytea,bytea)') IS NULL`, table, entities, merge).Scan(nil, &missingTable, &missingFunc)
	if err != nil {
		return fmt.Errorf("postgres online store: cannot connect to %s: %w", s.where, err)
	}
	if missingTable {
		_, err = tx.Exec(ctx, `CREATE TABLE `+entities+` (class text NOT NULL, entity text NOT NULL, packed bytea NOT NULL, PRIMARY KEY (class, entity));
ALTER TABLE `+entities+` ALTER COLUMN packed SET STORAGE MAIN;
CREATE TABLE IF NOT EXISTS `+slotsTable+` (class text PRIMARY KEY, id text NOT NULL, features text[] NOT NULL)`)
		if err != nil {
			return fmt.Errorf("postgres online store: creating %s: %w", s.where, err)
		}
	}
	if missingFunc {
		if _, err = tx.Exec(ctx, strings.Replace(mergeFunction, "merge_fn", merge, 1)); err != nil {
			return fmt.Errorf("postgres online store: creating the function %s: %w", merge, err)
		}
	}
	// A table of the name that is not this store's is refused here rather
	// than at the first query.
	if _, err = tx.Exec(ctx, `SELECT class, entity, packed FROM `+entities+` LIMIT 0; SELECT class, id, features FROM `+slotsTable+` LIMIT 0`); err != nil {
		return fmt.Errorf("postgres online store: %s is not a fletch online store (want the columns class, entity, packed, and a table %s with class, id, features): %w", s.where, slotsTable, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres online store: creating %s: %w", s.where, err)
	}
	return nil
}

// Ping checks that the server answers (stores.Pinger, for /readyz). A
// connection that died while idle (the server restarted) fails its first
// use: that one is retried, so that a server back is ready at once.
func (s *Store) Ping(ctx context.Context) error {
	err := s.pool.Ping(ctx)
	if err != nil && retryable(ctx, err) {
		err = s.pool.Ping(ctx)
	}
	if err != nil {
		return fmt.Errorf("postgres online store: cannot reach %s: %w", s.where, err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// dir is class's slot directory.
func (s *Store) dir(class string) *packed.Directory {
	if d, ok := s.dirs.Load(class); ok {
		return d.(*packed.Directory)
	}
	d, _ := s.dirs.LoadOrStore(class, packed.NewDirectory(slotSource{s, class}))
	return d.(*packed.Directory)
}

// slotSource keeps a class's packed.Directory in a row of the directory
// table: its id, and its features ("name:type"), feature i+1 of the array
// having slot i.
type slotSource struct {
	s     *Store
	class string
}

// maxSlots is packed's bound on a class's slots (2-byte slot numbers).
const maxSlots = 1 << 16

func (src slotSource) Assign(ctx context.Context, newID string, features []string) (string, []int, error) {
	var id string
	var known []string
	err := pgx.BeginFunc(ctx, src.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, src.s.assignSQL, src.class, newID); err != nil {
			return err
		}
		// FOR UPDATE: processes assigning slots of one class take turns.
		if err := tx.QueryRow(ctx, src.s.loadSQL+" FOR UPDATE", src.class).Scan(&id, &known); err != nil {
			return err
		}
		n := len(known)
		for _, f := range features {
			if !slices.Contains(known, f) {
				known = append(known, f)
			}
		}
		if len(known) == n {
			return nil
		}
		if len(known) > maxSlots {
			return fmt.Errorf("a class has at most %d (feature, type) slots", maxSlots)
		}
		_, err := tx.Exec(ctx, src.s.updateSQL, src.class, known)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("postgres online store: directory of %s in %s: %w", src.class, src.s.where, err)
	}
	out := make([]int, len(features))
	for i, f := range features {
		out[i] = slices.Index(known, f)
	}
	return id, out, nil
}

func (src slotSource) Load(ctx context.Context) (string, map[string]int, error) {
	var id string
	var known []string
	err := src.s.pool.QueryRow(ctx, src.s.loadSQL, src.class).Scan(&id, &known)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("postgres online store: directory of %s in %s: %w", src.class, src.s.where, err)
	}
	out := make(map[string]int, len(known))
	for i, f := range known {
		out[f] = i
	}
	return id, out, nil
}

// entityKeys returns the non-null keys as stores.EntityKey writes them and
// the row each answers.
func entityKeys(keys arrow.Array) (entities []string, rows []int, err error) {
	if err := stores.CheckKeys(keys); err != nil {
		return nil, nil, fmt.Errorf("postgres online store: %w", err)
	}
	entities, rows = make([]string, 0, keys.Len()), make([]int, 0, keys.Len())
	for r := range keys.Len() {
		k, ok, err := stores.EntityKey(keys, r)
		if err != nil {
			return nil, nil, fmt.Errorf("postgres online store: %w", err)
		}
		if ok {
			entities, rows = append(entities, k), append(rows, r)
		}
	}
	return entities, rows, nil
}

// Get reads the entities of every key with one query and decodes the
// asked features straight from the rows' bytes into the answer.
func (s *Store) Get(ctx context.Context, mem memory.Allocator, class string, keys arrow.Array, want *arrow.Schema) (*stores.OnlineValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entities, at, err := entityKeys(keys)
	if err != nil {
		return nil, err
	}
	dir := s.dir(class)
	f, err := dir.Fields(ctx, want, false)
	if err != nil {
		return nil, fmt.Errorf("postgres online store: %s: %w", class, err)
	}
	v, foreign, err := s.get(ctx, mem, class, entities, at, keys.Len(), f, want)
	if err != nil && retryable(ctx, err) {
		// A connection that died while idle (the server restarted) fails
		// its first query; ask once more.
		v, foreign, err = s.get(ctx, mem, class, entities, at, keys.Len(), f, want)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres online store: get %s (%d keys) from %s: %w", class, len(entities), s.where, err)
	}
	if foreign > 0 {
		dir.Stale()
	}
	return v, nil
}

// get answers the asked features of entities, entities[i] in row at[i] of
// rows, and how many entities were of another directory.
func (s *Store) get(ctx context.Context, mem memory.Allocator, class string, entities []string, at []int, rows int, f *packed.Fields, want *arrow.Schema) (*stores.OnlineValues, int, error) {
	vb, err := stores.NewValuesBuilder(mem, want, rows)
	if err != nil {
		return nil, 0, err
	}
	defer vb.Release()
	u := packed.NewUnpacker(f)
	if len(entities) > 0 {
		err := s.read(ctx, class, entities, func(i int, blob []byte) error {
			if i < 0 || i >= len(at) {
				return fmt.Errorf("the server answered row %d of %d keys", i, len(at))
			}
			// The bytes are the connection's until the next row: Unpack
			// decodes them before returning.
			if err := u.Unpack(vb, at[i], unsafe.String(unsafe.SliceData(blob), len(blob))); err != nil {
				return fmt.Errorf("%s %s: %w", class, entities[i], err)
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return vb.Finish(), u.Foreign(), nil
}

// read runs the Get query, calling each with the 0-based index in
// entities and the stored bytes of every entity found.
func (s *Store) read(ctx context.Context, class string, entities []string, each func(i int, blob []byte) error) error {
	rows, err := s.pool.Query(ctx, s.getSQL, class, entities)
	if err != nil {
		return err
	}
	return eachEntity(rows, each)
}

// eachEntity reads rows of (key's ordinality, packed entity), calling
// each with the 0-based index of the key and the entity's bytes (the
// connection's until the next row), and closes rows.
func eachEntity(rows pgx.Rows, each func(i int, blob []byte) error) error {
	defer rows.Close()
	fd := rows.FieldDescriptions()
	if len(fd) != 2 || fd[0].Format != pgx.BinaryFormatCode || fd[1].Format != pgx.BinaryFormatCode {
		return errors.New("the server answered in an unexpected format")
	}
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw[0]) != 8 {
			return errors.New("the server answered a malformed row number")
		}
		if err := each(int(binary.BigEndian.Uint64(raw[0]))-1, raw[1]); err != nil {
			return err
		}
	}
	return rows.Err()
}

// retryable tells whether err may be a connection that died while idle:
// not a server's answer, not the caller's context.
func retryable(ctx context.Context, err error) bool {
	var pgErr *pgconn.PgError
	return ctx.Err() == nil && !errors.As(err, &pgErr) && pgconn.SafeToRetry(err)
}

// Set packs each entity's values and merges them all into the stored
// entities in one transaction (write). The entities go in key order, so
// that concurrent writers lock rows in one order; a key written twice in
// one Set is merged in Go first, rows in order (one statement cannot
// update a row twice).
func (s *Store) Set(ctx context.Context, class string, keys arrow.Array, values arrow.RecordBatch, observed []time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if int64(keys.Len()) != values.NumRows() || len(observed) != keys.Len() {
		return fmt.Errorf("postgres online store: %d keys, %d rows of values and %d observation times; want as many of each", keys.Len(), values.NumRows(), len(observed))
	}
	entities, rows, err := entityKeys(keys)
	if err != nil {
		return err
	}
	if len(entities) == 0 {
		return nil
	}
	f, err := s.dir(class).Fields(ctx, values.Schema(), true)
	if err != nil {
		return fmt.Errorf("postgres online store: %s: %w", class, err)
	}
	order := make([]int, len(entities))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(entities[a], entities[b]) })
	ks, bs := make([]string, 0, len(order)), make([][]byte, 0, len(order))
	for _, i := range order {
		blob, err := packed.Append(nil, observed[rows[i]], f, values, rows[i])
		if err != nil {
			return fmt.Errorf("postgres online store: %w", err)
		}
		if n := len(ks); n > 0 && ks[n-1] == entities[i] {
			merged, err := packed.Merge(string(bs[n-1]), string(blob))
			if err != nil {
				return fmt.Errorf("postgres online store: %w", err)
			}
			bs[n-1] = []byte(merged)
			continue
		}
		ks, bs = append(ks, entities[i]), append(bs, blob)
	}
	err = s.write(ctx, class, ks, bs)
	if err != nil && retryable(ctx, err) {
		// merging the same values twice is harmless
		err = s.write(ctx, class, ks, bs)
	}
	if err != nil {
		return fmt.Errorf("postgres online store: set %s (%d keys) in %s: %w", class, len(ks), s.where, err)
	}
	return nil
}

// write merges given[i] into the stored entity of entities[i], for every
// i, in one transaction: the stored entities are read and locked (FOR
// UPDATE, in key order), merged in Go (packed.Merge), and written back;
// entities not stored yet are inserted with the upsert, whose ON CONFLICT
// merges with the SQL function should another writer have inserted one
// meanwhile. The function alone, in PL/pgSQL, cost ~0.9 ms of the
// server's CPU per entity of 250 features: the write-backs of a burst of
// misses kept the server's cores merging (docs/BENCHMARKS.md §18).
//
// Rows are locked in key order (bytewise, as Set sorts), so writers of
// stored entities never deadlock; two writers inserting and locking the
// same new entities at once may, and the one the server aborts tries
// again.
func (s *Store) write(ctx context.Context, class string, entities []string, given [][]byte) error {
	var err error
	for range 3 {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.writeTx(ctx, tx, class, entities, given) })
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40P01" { // deadlock_detected
			return err
		}
	}
	return err
}

func (s *Store) writeTx(ctx context.Context, tx pgx.Tx, class string, entities []string, given [][]byte) error {
	rows, err := tx.Query(ctx, s.lockSQL, class, entities)
	if err != nil {
		return err
	}
	stored := make([]bool, len(entities))
	var ks []string
	var bs [][]byte
	err = eachEntity(rows, func(i int, blob []byte) error {
		if i < 0 || i >= len(entities) || stored[i] {
			return fmt.Errorf("the server answered row %d of %d keys", i, len(entities))
		}
		merged, err := packed.Merge(string(blob), string(given[i]))
		if err != nil {
			// bytes that are not an entity: the upsert's function writes
			// given over them, as it always did
			return nil
		}
		stored[i] = true
		ks, bs = append(ks, entities[i]), append(bs, []byte(merged))
		return nil
	})
	if err != nil {
		return err
	}
	if len(ks) > 0 {
		if _, err := tx.Exec(ctx, s.replaceSQL, class, ks, bs); err != nil {
			return err
		}
	}
	ks, bs = ks[:0], bs[:0]
	for i, ok := range stored {
		if !ok {
			ks, bs = append(ks, entities[i]), append(bs, given[i])
		}
	}
	if len(ks) > 0 {
		if _, err := tx.Exec(ctx, s.setSQL, class, ks, bs); err != nil {
			return err
		}
	}
	return nil
}
