package pgonline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/packed"
	"github.com/fletch-engine/fletch/stores/postgres/pgtest"
	"github.com/fletch-engine/fletch/stores/storetest"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// open returns a store in a schema of its own on the test server
// (pgtest.DSN), dropped when the test ends.
func open(t testing.TB) *Store {
	s, err := Open(context.Background(), Options{DSN: pgtest.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) stores.OnlineStore { return open(t) })
}

// The merge function, Set and packed.Merge make the same bytes: random
// writes (random subsets of features in random orders, few distinct times,
// some over an entity of the older layout or another directory) merged by
// the function on the server, stored by Set, and merged by packed.Merge
// beside them.
func TestMergeFunctionIsPackedMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	rng := rand.New(rand.NewPCG(5, 8))
	names := []string{"a", "bb", "c", "dd", "e", "ff", "g", "hh", "long"}
	dir := s.dir("M")
	want := map[int64]string{} // key → what packed.Merge made of its writes
	for i := range 400 {
		id := int64(rng.IntN(12))
		if i < 6 {
			// an entity of the older layout, or of another directory
			old := "\x00\x01v\x00\x00\x00\x01\x00"
			if i >= 3 {
				old = "\x03dir2" + strings.Repeat("\x00", 8) + "\x00\x01\x00\x01\x01\x09\x00"
			}
			if _, err := s.pool.Exec(ctx, `INSERT INTO fletch_online VALUES ('M', $1, $2)
				ON CONFLICT (class, entity) DO UPDATE SET packed = excluded.packed`, fmt.Sprintf("i:%d", id), []byte(old)); err != nil {
				t.Fatal(err)
			}
			want[id] = old
		}
		picked := make([]string, 1+rng.IntN(len(names)))
		for j, k := range rng.Perm(len(names))[:len(picked)] {
			picked[j] = names[k]
		}
		keys := storetest.Int64Keys(mem, id)
		rec := storetest.FloatRecord(mem, picked, 1, func(_, j int) float64 { return float64(i*10 + j) })
		if rec.Schema().HasField("long") && i%2 == 0 {
			// a value of 255 bytes or more: the 5-byte length
			rec.Release()
			rec = longRecord(t, mem, picked, i)
		}
		at := t0.Add(time.Duration(rng.IntN(3)) * time.Second)
		f, err := dir.Fields(ctx, rec.Schema(), true)
		if err != nil {
			t.Fatal(err)
		}
		given, err := packed.Append(nil, at, f, rec, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored := want[id]
		if want[id], err = packed.Merge(stored, string(given)); err != nil {
			t.Fatal(err)
		}
		// the function alone (Set merges in Go unless the row changed
		// under it: TestConcurrentSetsMerge)
		var byFunction []byte
		if err := s.pool.QueryRow(ctx, `SELECT fletch_online_merge_v3($1::bytea, $2::bytea)`, nilIfEmpty(stored), given).Scan(&byFunction); err != nil {
			t.Fatal(err)
		}
		if string(byFunction) != want[id] {
			t.Fatalf("write %d to %d: the function made\n% x\npacked.Merge made\n% x", i, id, byFunction, want[id])
		}
		err = s.Set(ctx, "M", keys, rec, []time.Time{at})
		rec.Release()
		keys.Release()
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if err := s.pool.QueryRow(ctx, `SELECT packed FROM fletch_online WHERE class = 'M' AND entity = $1`, fmt.Sprintf("i:%d", id)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if string(got) != want[id] {
			t.Fatalf("write %d to %d: Set stored\n% x\npacked.Merge made\n% x", i, id, got, want[id])
		}
	}
}

// The store's statements probe the index per key whatever the table's
// statistics when their plan was made: plans made on the empty table (the
// first reads of a new store, as a warm-up does) and explained once it
// holds thousands of entities look each key up in the index, and never
// scan the class. Before, the read joined the keys with a hash over every
// entity of the class until autovacuum's ANALYZE replanned.
func TestPlansProbeTheIndex(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	s := open(t)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	statements := []struct{ name, sql, args string }{
		{"get", s.getSQL, `('C', '{i:7,i:9}')`},
		{"lock", s.lockSQL, `('C', '{i:7,i:9}')`},
		{"replace", s.replaceSQL, `('C', '{i:7,i:9}', '{"\\x03","\\x03"}')`},
	}
	for _, st := range statements {
		// the plans are made now, on the empty table (force_generic_plan)
		if _, err := conn.Exec(ctx, "PREPARE probe_"+st.name+" AS "+st.sql); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "EXPLAIN EXECUTE probe_"+st.name+st.args); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3000
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i)
	}
	keys := storetest.Int64Keys(mem, ids...)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"a", "b"}, n, func(r, i int) float64 { return float64(r + i) })
	defer rec.Release()
	observed := make([]time.Time, n)
	for i := range observed {
		observed[i] = t0
	}
	if err := s.Set(ctx, "C", keys, rec, observed); err != nil {
		t.Fatal(err)
	}
	for _, st := range statements {
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) EXECUTE probe_"+st.name+st.args)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		probes := strings.Contains(plan, "Index Scan using fletch_online_pkey on fletch_online") &&
			strings.Contains(plan, "Index Cond: ((class = $1) AND (entity = o.entity))")
		if st.name == "replace" {
			// the upsert finds each row by its key (its arbiter index)
			probes = strings.Contains(plan, "Conflict Arbiter Indexes: fletch_online_pkey") && !strings.Contains(plan, "Scan on fletch_online")
		}
		if !probes || strings.Contains(plan, "Join") || strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Bitmap") || strings.Contains(plan, "Materialize") {
			t.Errorf("%s, planned on the empty table, over %d entities:\n%s\nwant an index probe per key", st.name, n, plan)
		}
	}
}

// nilIfEmpty is b, or nil (SQL's NULL, a missing entity) for "".
func nilIfEmpty(b string) []byte {
	if b == "" {
		return nil
	}
	return []byte(b)
}

// Concurrent Sets of the same entities, each writing its own features at
// its own times, keep per feature the value observed last, to the byte:
// the stored entities are packed.Merge's of all the writes. Rows written
// between a Set's read and its write are merged by the SQL function, so
// this runs both paths (several stores: several pools, as several
// servers).
func TestConcurrentSetsMerge(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	const writers, rounds, nkeys = 6, 15, 20
	names := make([]string, writers)
	for w := range names {
		names[w] = fmt.Sprintf("f%d", w)
	}
	ids := make([]int64, nkeys)
	for i := range ids {
		ids[i] = int64(i)
	}
	keys := storetest.Int64Keys(mem, ids...)
	defer keys.Release()
	stores := make([]*Store, 3)
	for i := range stores {
		s, err := Open(ctx, Options{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	// Every writer knows every feature's slot before the race, so that
	// the directory is the same for all.
	all := storetest.FloatRecord(mem, names, nkeys, func(r, i int) float64 { return -1 })
	defer all.Release()
	observed := make([]time.Time, nkeys)
	for i := range observed {
		observed[i] = t0
	}
	if err := stores[0].Set(ctx, "K", keys, all, observed); err != nil {
		t.Fatal(err)
	}
	f, err := stores[0].dir("K").Fields(ctx, all.Schema(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, nkeys)
	for r := range nkeys {
		b, err := packed.Append(nil, t0, f, all, r)
		if err != nil {
			t.Fatal(err)
		}
		want[r] = string(b)
	}
	// writer w writes features w and (w+1)%writers, each round at a time
	// of its own (no two writes of a feature at one time)
	recs := make([][]arrow.RecordBatch, writers)
	var wg sync.WaitGroup
	for w := range writers {
		recs[w] = make([]arrow.RecordBatch, rounds)
		for k := range rounds {
			rec := storetest.FloatRecord(mem, []string{names[w], names[(w+1)%writers]}, nkeys, func(r, i int) float64 { return float64(w*1000 + k*10 + i) })
			recs[w][k] = rec
			defer rec.Release()
		}
		wg.Go(func() {
			s := stores[w%len(stores)]
			times := make([]time.Time, nkeys)
			for k := range rounds {
				for r := range times {
					times[r] = writeTime(w, k, r)
				}
				if err := s.Set(ctx, "K", keys, recs[w][k], times); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range writers {
		wf, err := stores[0].dir("K").Fields(ctx, recs[w][0].Schema(), false)
		if err != nil {
			t.Fatal(err)
		}
		for k := range rounds {
			for r := range nkeys {
				b, err := packed.Append(nil, writeTime(w, k, r), wf, recs[w][k], r)
				if err != nil {
					t.Fatal(err)
				}
				if want[r], err = packed.Merge(want[r], string(b)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	rows, err := stores[0].pool.Query(ctx, `SELECT entity, packed FROM fletch_online WHERE class = 'K'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var e string
		var b []byte
		if err := rows.Scan(&e, &b); err != nil {
			t.Fatal(err)
		}
		got[e] = string(b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for r := range nkeys {
		if e := fmt.Sprintf("i:%d", r); got[e] != want[r] {
			t.Errorf("entity %s: stored\n% x\nwant (packed.Merge of every write)\n% x", e, got[e], want[r])
		}
	}
}

// writeTime is when writer w's round k observed entity r: distinct for
// every (w, k), in an order that interleaves the writers.
func writeTime(w, k, r int) time.Time {
	return t0.Add(time.Duration((k*7+w*13)%97*100+w) * time.Millisecond).Add(time.Duration(r) * time.Minute)
}

// longRecord is a record of names whose feature "long" is a string of 300
// bytes and the others floats.
func longRecord(t *testing.T, mem memory.Allocator, names []string, i int) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(names))
	row := make([]string, len(names))
	for j, n := range names {
		fields[j] = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		row[j] = fmt.Sprintf("%q: %d", n, i*10+j)
		if n == "long" {
			fields[j].Type = arrow.BinaryTypes.String
			row[j] = fmt.Sprintf("%q: %q", n, strings.Repeat("x", 300+i))
		}
	}
	rec, _, err := array.RecordFromJSON(mem, arrow.NewSchema(fields, nil), strings.NewReader("[{"+strings.Join(row, ", ")+"}]"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A class's directory lost (its row deleted) and made again by another
// process numbers features anew: the entities written before read as
// missing, never as another feature's value, in both processes.
func TestDirectoryLost(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := storetest.Int64Keys(mem, 1, 2)
	defer keys.Release()
	x := storetest.FloatRecord(mem, []string{"x"}, 2, func(r, _ int) float64 { return float64(r) + 0.5 })
	defer x.Release()
	y := storetest.FloatRecord(mem, []string{"y"}, 2, func(r, _ int) float64 { return float64(r) + 100 })
	defer y.Release()
	both := arrow.NewSchema([]arrow.Field{x.Schema().Field(0), y.Schema().Field(0)}, nil)
	get := func(s *Store) string {
		t.Helper()
		got, err := s.Get(ctx, mem, "C", keys, both)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Release()
		return got.Values.Column(0).String() + " " + got.Values.Column(1).String()
	}
	if err := a.Set(ctx, "C", keys, x, []time.Time{t0, t0}); err != nil { // x is slot 0
		t.Fatal(err)
	}
	if got := get(b); got != "[0.5 1.5] [(null) (null)]" {
		t.Fatalf("another process reads %s", got)
	}
	if _, err := a.pool.Exec(ctx, `DELETE FROM fletch_online_slots WHERE class = 'C'`); err != nil {
		t.Fatal(err)
	}
	// b makes the directory again (it has not seen y): y is slot 0 now.
	// Key 1 is written over, key 2 keeps its entity of the old directory.
	ones := storetest.Int64Keys(mem, 1)
	defer ones.Release()
	y1 := y.NewSlice(0, 1)
	defer y1.Release()
	if err := b.Set(ctx, "C", ones, y1, []time.Time{t0}); err != nil {
		t.Fatal(err)
	}
	if got := get(b); got != "[(null) (null)] [100 (null)]" {
		t.Errorf("the process that made the directory anew reads %s", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := get(a)
		if got == "[(null) (null)] [100 (null)]" {
			break
		}
		if got != "[(null) 1.5] [(null) (null)]" || time.Now().After(deadline) {
			t.Fatalf("the process that knew the old directory reads %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The server going away and coming back (a proxy cut): Get and Set fail
// with an error naming the table and server, and work again once it is
// back, on the same Store.
func TestServerDownAndBack(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	proxy, dsn := pgtest.StartProxy(t, pgtest.DSN(t))
	s, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys := storetest.Int64Keys(mem, 1)
	defer keys.Release()
	rec := storetest.FloatRecord(mem, []string{"v"}, 1, func(int, int) float64 { return 1.5 })
	defer rec.Release()
	setGet := func() (string, error) {
		if err := s.Set(ctx, "C", keys, rec, []time.Time{t0}); err != nil {
			return "", err
		}
		v, err := s.Get(ctx, mem, "C", keys, rec.Schema())
		if err != nil {
			return "", err
		}
		defer v.Release()
		return v.Values.Column(0).String(), nil
	}
	if got, err := setGet(); err != nil || got != "[1.5]" {
		t.Fatalf("server up: %s, %v", got, err)
	}
	proxy.Stop()
	if _, err := s.Get(ctx, mem, "C", keys, rec.Schema()); err == nil || !strings.Contains(err.Error(), "table fletch_online at 127.0.0.1:") {
		t.Errorf("Get, server down: err = %v, want one naming the table and server", err)
	}
	if err := s.Set(ctx, "C", keys, rec, []time.Time{t0}); err == nil || !strings.Contains(err.Error(), "table fletch_online at 127.0.0.1:") {
		t.Errorf("Set, server down: err = %v, want one naming the table and server", err)
	}
	proxy.Start(t)
	if got, err := setGet(); err != nil || got != "[1.5]" {
		t.Errorf("server back: %s, %v", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := Open(ctx, Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.pool.Exec(ctx, `CREATE TABLE not_ours (id int)`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{DSN: "postgres://u:secret@[::1"}, "the dsn is not a valid connection string or URL"},
		{Options{DSN: "postgres://postgres@127.0.0.1:1/fletch?sslmode=disable&connect_timeout=2"}, "cannot connect to table fletch_online at 127.0.0.1:1/fletch"},
		{Options{DSN: dsn, Table: "not_ours"}, "is not a fletch online store"},
	} {
		s, err := Open(ctx, c.o)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%s): err = %v, want one with %q", c.o.DSN, err, c.want)
		}
	}
}
