package tiles_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/tiles"
)

// TestResident: a tile table held in memory holds exactly the table's
// tiles, grouped by key and ordered by bucket; its running totals answer
// a span of a key's tiles as DuckDB sums the same tiles; it is read again
// when a backfill rewrote the table, not kept when over the memory bound,
// evicted least recently used first, and every buffer returns to its
// allocator.
func TestResident(t *testing.T) {
	src, g := fixture(t)
	ctx := context.Background()
	stMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer stMem.AssertSize(t, 0)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := src.DB()
	open := func(opts ...tiles.Option) *tiles.Store {
		st, err := tiles.Open(ctx, db, src, append(opts, tiles.WithAllocator(stMem))...)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	defer st.Close()
	var specs []*tiles.Spec
	for _, group := range tiles.Materialized(g) {
		spec, err := tiles.SpecFor(g, group)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, spec)
	}
	backfill := func(now time.Time) {
		for _, spec := range specs {
			if _, err := tiles.Backfill(ctx, mem, src, st, spec, tiles.BackfillOptions{Now: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The last chunk cut short by the clock: the next backfill rewrites it.
	backfill(time.Date(2026, 1, 20, 5, 0, 0, 0, time.UTC))
	d := time.Hour
	resident := func(st *tiles.Store, spec *tiles.Spec) *tiles.Resident {
		t.Helper()
		cov, err := st.Coverage(ctx, spec, d)
		if err != nil {
			t.Fatal(err)
		}
		res, err := st.Resident(ctx, spec, d, cov)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// check compares res with want, the table's rows by key and bucket,
	// and, when current, spans of its running totals with the table's.
	check := func(spec *tiles.Spec, res *tiles.Resident, want [][]any, current bool) {
		t.Helper()
		byKey := map[int64][][]any{}
		for _, row := range want {
			byKey[row[0].(int64)] = append(byKey[row[0].(int64)], row)
		}
		keys := res.Keys.(*array.Int64)
		if keys.Len() != len(byKey) || int(res.Runs[keys.Len()]) != len(want) {
			t.Fatalf("%s: %d keys and %d tiles resident, the table holds %d and %d", spec.Table(d), keys.Len(), res.Runs[keys.Len()], len(byKey), len(want))
		}
		for k := range keys.Len() {
			rows := byKey[keys.Value(k)]
			lo, hi := res.Runs[k], res.Runs[k+1]
			if int(hi-lo) != len(rows) {
				t.Fatalf("key %d: %d tiles resident, %d in the table", keys.Value(k), hi-lo, len(rows))
			}
			for j, row := range rows {
				at := int(lo) + j
				if res.Buckets[at] != row[1].(int64) {
					t.Fatalf("key %d tile %d: bucket %d, want %d", keys.Value(k), j, res.Buckets[at], row[1])
				}
				for c, s := range res.States {
					if got := operators.GoValue(s, at); fmt.Sprint(got) != fmt.Sprint(row[2+c]) {
						t.Fatalf("key %d tile %d state %d: %v, want %v", keys.Value(k), j, c, got, row[2+c])
					}
				}
			}
		}
		if spec.Fn != "sum" {
			if res.Prefix != nil {
				t.Errorf("%s: running totals of %s", spec.Table(d), spec.Fn)
			}
			return
		}
		if !current {
			return
		}
		// Spans of a key's tiles, empty ones and whole runs included,
		// against DuckDB's sum of the same tiles.
		rng := rand.New(rand.NewPCG(1, 2))
		var sp aggregate.Spans
		var refs []string
		for range 300 {
			k := rng.IntN(keys.Len())
			lo, hi := res.Runs[k], res.Runs[k+1]
			a := lo + rng.Int32N(hi-lo+1)
			b := a + rng.Int32N(hi-a+1)
			if rng.IntN(10) == 0 {
				a, b = lo, hi
			}
			sp.Lo, sp.Hi = append(sp.Lo, a), append(sp.Hi, b)
			from, to := int64(math.MinInt64), int64(math.MinInt64)
			if a < b {
				from, to = res.Buckets[a], res.Buckets[b-1]
			}
			refs = append(refs, fmt.Sprintf("(SELECT coalesce(sum(sum), 0) FROM %q WHERE key = %d AND bucket_start BETWEEN %d AND %d)", spec.Table(d), keys.Value(k), from, to))
		}
		got, err := res.Prefix.Merge(mem, res.States, sp)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Release()
		for i, ref := range refs {
			var want float64
			if err := db.QueryRow("SELECT " + ref).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if v := got.(*array.Float64).Value(i); math.Abs(v-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("span %d..%d: %v, DuckDB %v", sp.Lo[i], sp.Hi[i], v, want)
			}
		}
	}
	first := map[string]*tiles.Resident{}
	before := map[string][][]any{}
	for _, spec := range specs {
		res := resident(st, spec)
		before[spec.Table(d)] = dump(t, db, spec.Table(d)) // by key, bucket
		check(spec, res, before[spec.Table(d)], true)
		again := resident(st, spec)
		if again != res {
			t.Errorf("%s: read again at the same coverage", spec.Table(d))
		}
		again.Release()
		first[spec.Table(d)] = res
	}

	// New events, and a backfill that rewrites the cut chunk.
	if _, err := db.Exec(`INSERT INTO txns SELECT 100000 + i, i % 7, 55.5, TIMESTAMPTZ '2026-01-20 01:30:00+00' + to_microseconds(i) FROM range(50) r(i)`); err != nil {
		t.Fatal(err)
	}
	backfill(time.Date(2026, 2, 15, 0, 0, 0, 0, time.UTC))
	for _, spec := range specs {
		res := resident(st, spec)
		if res == first[spec.Table(d)] {
			t.Errorf("%s: the tiles of before the backfill are still resident", spec.Table(d))
		}
		check(spec, res, dump(t, db, spec.Table(d)), true)
		// The tiles a run still held stay readable after the store
		// dropped them.
		check(spec, first[spec.Table(d)], before[spec.Table(d)], false)
		first[spec.Table(d)].Release()
		res.Release()
	}

	// Over the bound: not kept.
	small := open(tiles.WithCacheBytes(1))
	defer small.Close()
	if res := resident(small, specs[0]); res != nil {
		res.Release()
		t.Errorf("tiles resident in a store allowed 1 byte")
	}
	// Room for one table: reading the other evicts it.
	pa, pb := resident(st, specs[0]), resident(st, specs[1])
	one := open(tiles.WithCacheBytes(max(pa.Bytes(), pb.Bytes()) + min(pa.Bytes(), pb.Bytes())/2))
	// Found over the bound once read: that read answers, the next do not
	// read the table whole again.
	tight := open(tiles.WithCacheBytes(pa.Bytes() - 1))
	defer tight.Close()
	if res := resident(tight, specs[0]); res == nil {
		t.Errorf("the tiles read once were not answered")
	} else {
		res.Release()
	}
	if res := resident(tight, specs[0]); res != nil {
		res.Release()
		t.Errorf("a table over the bound read whole again")
	}
	pa.Release()
	pb.Release()
	defer one.Close()
	a := resident(one, specs[0])
	b := resident(one, specs[1])
	if a == nil || b == nil {
		t.Fatalf("a table alone does not fit")
	}
	a2 := resident(one, specs[0])
	if a2 == a {
		t.Errorf("the first table stayed resident beside the second, over the bound")
	}
	for _, r := range []*tiles.Resident{a, b, a2} {
		r.Release()
	}
}

// TestPrefixOverflow: int64 running totals that overflow within a key are
// not kept (merging falls back to MergeSpans), and a window whose true sum
// overflows is an error while one whose running totals fit is answered.
func TestPrefixOverflow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ints := func(v ...int64) arrow.Array {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues(v, nil)
		return b.NewArray()
	}
	over := ints(math.MaxInt64-1, 5)
	defer over.Release()
	if p := aggregate.NewPrefix("sum", []arrow.Array{over}, []int32{0, 2}); p != nil {
		t.Errorf("running totals kept past int64")
	}
	// Two keys: totals fit within each run, restarting at the second.
	big := int64(1) << 62
	s := ints(big, big-1, -big, big, big-1)
	defer s.Release()
	p := aggregate.NewPrefix("sum", []arrow.Array{s}, []int32{0, 3, 5})
	if p == nil {
		t.Fatal("no running totals")
	}
	got, err := p.Merge(mem, []arrow.Array{s}, aggregate.Spans{Lo: []int32{0, 1, 3, 2}, Hi: []int32{2, 3, 5, 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	for i, want := range []int64{2*big - 1, -1, 2*big - 1, 0} {
		if v := got.(*array.Int64).Value(i); v != want {
			t.Errorf("span %d: %d, want %d", i, v, want)
		}
	}
	// A span whose sum passes int64: 2^62 + 2^62 - 1 + 2^62 ... within a
	// run whose totals fit because of a negative tile before it.
	neg := ints(-big, -big, big, big, big-1)
	defer neg.Release()
	p = aggregate.NewPrefix("sum", []arrow.Array{neg}, []int32{0, 5})
	if p == nil {
		t.Fatal("no running totals")
	}
	if out, err := p.Merge(mem, []arrow.Array{neg}, aggregate.Spans{Lo: []int32{2}, Hi: []int32{5}}); err == nil {
		out.Release()
		t.Errorf("3·2^62 - 1 answered in int64")
	}
}
