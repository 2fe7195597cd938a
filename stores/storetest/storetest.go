// Package storetest is the behaviour every stores.OnlineStore must have, as
// one suite that the memory, Redis and DynamoDB stores all run against
// their real backends: values of every cacheable type and nulls round-trip,
// a stored value observed later is never replaced, a Set of some features
// keeps the others, a value cached under another type reads as missing.
//
// It knows nothing of any backend: a store under test comes from the
// caller's open function.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores"
)

// Open returns an empty store for one subtest (a fresh key prefix or table
// on a shared server) and registers its cleanup with t.Cleanup.
type Open func(t *testing.T) stores.OnlineStore

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// Run runs every case of the suite as a subtest of t.
func Run(t *testing.T, open Open) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, stores.OnlineStore)
	}{
		{"RoundTripAllTypes", roundTripAllTypes},
		{"MissingAndNewerWins", missingAndNewerWins},
		{"SubsetKeepsOtherFeatures", subsetKeepsOtherFeatures},
		{"TypeChangeReadsMissing", typeChangeReadsMissing},
		{"ManyKeys", manyKeys},
		{"RandomHistory", randomHistory},
		{"Errors", errorCases},
		{"ConcurrentUse", concurrentUse},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, open(t))
		})
	}
}

func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// record builds a record of the given fields from JSON rows.
func record(t *testing.T, mem memory.Allocator, fields []arrow.Field, rows string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, arrow.NewSchema(fields, nil), strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func column(t *testing.T, mem memory.Allocator, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	a, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func set(t *testing.T, s stores.OnlineStore, mem memory.Allocator, class string, keys arrow.Array, fields []arrow.Field, rows string, at ...time.Time) {
	t.Helper()
	rec := record(t, mem, fields, rows)
	defer rec.Release()
	if err := s.Set(context.Background(), class, keys, rec, at); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s stores.OnlineStore, mem memory.Allocator, class string, keys arrow.Array, fields []arrow.Field) *stores.OnlineValues {
	t.Helper()
	v, err := s.Get(context.Background(), mem, class, keys, arrow.NewSchema(fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	if v.Values.NumRows() != int64(keys.Len()) || len(v.Observed) != len(fields) {
		t.Fatalf("Get of %d keys × %d features: %d rows, %d observed columns", keys.Len(), len(fields), v.Values.NumRows(), len(v.Observed))
	}
	return v
}

// checkObserved compares one feature's observation times with want, where
// a nil entry means nothing is stored.
func checkObserved(t *testing.T, feature string, got arrow.Array, want []any) {
	t.Helper()
	ts := got.(*array.Timestamp)
	if !arrow.TypeEqual(ts.DataType(), features.TimestampType) {
		t.Errorf("feature %s: observed has type %s, want %s", feature, ts.DataType(), features.TimestampType)
	}
	for r, w := range want {
		switch {
		case w == nil && ts.IsValid(r):
			t.Errorf("feature %s row %d: observed %v, want missing", feature, r, ts.ValueStr(r))
		case w != nil && (ts.IsNull(r) || !ts.Value(r).ToTime(arrow.Microsecond).Equal(w.(time.Time))):
			t.Errorf("feature %s row %d: observed %v, want %v", feature, r, ts.ValueStr(r), w)
		}
	}
}

func roundTripAllTypes(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	fields := []arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "at", Type: features.TimestampType, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ls", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "lln", Type: arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int64)), Nullable: true},
	}
	rows := `[
		{"n": -9007199254740993, "x": 1.5e-300, "s": "héllo", "b": true, "at": "2024-01-02T03:04:05.123456Z", "d": "1999-12-31", "ls": ["a", null, ""], "lln": [[1, null], [], null]},
		{"n": null, "x": null, "s": null, "b": null, "at": null, "d": null, "ls": null, "lln": null},
		{"n": 0, "x": -0.0, "s": "", "b": false, "at": "1960-01-01T00:00:00Z", "d": "1900-01-01", "ls": [], "lln": []}
	]`
	values := record(t, mem, fields, rows)
	defer values.Release()
	observed := []time.Time{t0, t0.Add(time.Second), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)}
	for _, keyType := range []arrow.DataType{arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64} {
		keys := column(t, mem, keyType, `["1", "-2", "30"]`)
		if keyType.ID() == arrow.INT64 {
			keys.Release()
			keys = column(t, mem, keyType, `[1, -2, 30]`)
		}
		if err := s.Set(context.Background(), "User", keys, values, observed); err != nil {
			t.Fatal(err)
		}
		got := get(t, s, mem, "User", keys, fields)
		if !array.RecordEqual(got.Values, values) {
			t.Errorf("%s keys: values:\n%v\nwant:\n%v", keyType, got.Values, values)
		}
		for i, o := range got.Observed {
			checkObserved(t, fields[i].Name, o, []any{observed[0], observed[1], observed[2]})
		}
		got.Release()
		keys.Release()
	}
}

func missingAndNewerWins(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	f := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	k := func(js string) arrow.Array { return column(t, mem, arrow.PrimitiveTypes.Int64, js) }
	keys := k(`[1, 2, 3]`)
	set(t, s, mem, "Item", keys, f, `[{"v": 10}, {"v": 20}, {"v": null}]`, t0, t0, t0)
	keys.Release()
	// key 1: older value is ignored; key 2: newer replaces; key 3: same time replaces; null key skipped.
	keys = k(`[1, 2, 3, null]`)
	set(t, s, mem, "Item", keys, f, `[{"v": 11}, {"v": 21}, {"v": 31}, {"v": 99}]`, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0)
	keys.Release()
	// key 5 twice in one Set: the newer row wins, in either order.
	keys = k(`[5, 5, 6, 6]`)
	set(t, s, mem, "Item", keys, f, `[{"v": 50}, {"v": 51}, {"v": 61}, {"v": 60}]`, t0, t0.Add(-time.Second), t0.Add(time.Second), t0)
	keys.Release()

	keys = k(`[3, 2, 1, 4, null, 1, 5, 6]`)
	defer keys.Release()
	got := get(t, s, mem, "Item", keys, f)
	defer got.Release()
	if want := `[31 21 10 (null) (null) 10 50 61]`; got.Values.Column(0).String() != want {
		t.Errorf("values = %v, want %v", got.Values.Column(0), want)
	}
	checkObserved(t, "v", got.Observed[0], []any{t0, t0.Add(time.Hour), t0, nil, nil, t0, t0, t0.Add(time.Second)})

	// Another class, another key type, an unknown feature: all missing.
	sk := column(t, mem, arrow.BinaryTypes.String, `["1", "2"]`)
	defer sk.Release()
	for _, c := range []struct {
		class  string
		keys   arrow.Array
		fields []arrow.Field
	}{
		{"User", keys, f},
		{"Item", sk, f},
		{"Item", keys, []arrow.Field{{Name: "other", Type: arrow.PrimitiveTypes.Int64}}},
	} {
		v := get(t, s, mem, c.class, c.keys, c.fields)
		if v.Values.Column(0).NullN() != c.keys.Len() || v.Observed[0].NullN() != c.keys.Len() {
			t.Errorf("%s %s %v: got %v / %v, want all missing", c.class, c.keys.DataType(), c.fields, v.Values.Column(0), v.Observed[0])
		}
		v.Release()
	}

	// Zero keys: zero rows.
	empty := k(`[]`)
	defer empty.Release()
	get(t, s, mem, "Item", empty, f).Release()
}

func subsetKeepsOtherFeatures(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	a := arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}
	b := arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true}
	c := arrow.Field{Name: "c", Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	keys := column(t, mem, arrow.BinaryTypes.String, `["u1", "u2"]`)
	defer keys.Release()
	set(t, s, mem, "User", keys, []arrow.Field{a, b}, `[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]`, t0, t0)
	// b newer for u1 only, older for u2; c is new.
	set(t, s, mem, "User", keys, []arrow.Field{b, c}, `[{"b": "x2", "c": 1.5}, {"b": "y2", "c": 2.5}]`, t0.Add(time.Minute), t0.Add(-time.Minute))
	got := get(t, s, mem, "User", keys, []arrow.Field{c, a, b})
	defer got.Release()
	for i, want := range []string{`[1.5 2.5]`, `[1 2]`, `["x2" "y"]`} {
		if s := got.Values.Column(i).String(); s != want {
			t.Errorf("feature %s = %s, want %s", got.Values.ColumnName(i), s, want)
		}
	}
	checkObserved(t, "c", got.Observed[0], []any{t0.Add(time.Minute), t0.Add(-time.Minute)})
	checkObserved(t, "a", got.Observed[1], []any{t0, t0})
	checkObserved(t, "b", got.Observed[2], []any{t0.Add(time.Minute), t0})
}

// A feature whose type changed reads as missing until the new type is
// written; the write needs no newer time than the old value's.
func typeChangeReadsMissing(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	asInt := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	asFloat := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}
	asList := []arrow.Field{{Name: "v", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true}}
	keys := column(t, mem, arrow.PrimitiveTypes.Int64, `[7]`)
	defer keys.Release()
	set(t, s, mem, "C", keys, asInt, `[{"v": 1}]`, t0)
	for _, fields := range [][]arrow.Field{asFloat, asList} {
		v := get(t, s, mem, "C", keys, fields)
		if v.Values.Column(0).IsValid(0) || v.Observed[0].IsValid(0) {
			t.Errorf("int cached, read as %s: %v / %v, want missing", fields[0].Type, v.Values.Column(0), v.Observed[0])
		}
		v.Release()
	}
	set(t, s, mem, "C", keys, asFloat, `[{"v": 2.5}]`, t0)
	v := get(t, s, mem, "C", keys, asFloat)
	defer v.Release()
	if got := v.Values.Column(0).String(); got != "[2.5]" {
		t.Errorf("after writing the new type: %s, want [2.5]", got)
	}
}

// Enough keys and features to cross every batching boundary of a remote
// store (pipelines, DynamoDB's 25- and 100-item requests).
func manyKeys(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	const n, nf = 1234, 30
	fields := make([]arrow.Field, nf)
	for i := range fields {
		fields[i] = arrow.Field{Name: fmt.Sprintf("feature_with_a_long_name_%02d", i), Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	kb := array.NewInt64Builder(mem)
	rb := array.NewRecordBuilder(mem, schema)
	observed := make([]time.Time, n)
	for r := range n {
		kb.Append(int64(r * 7))
		for i := range nf {
			if (r+i)%11 == 0 {
				rb.Field(i).AppendNull()
			} else {
				rb.Field(i).(*array.Float64Builder).Append(float64(r) + float64(i)/100)
			}
		}
		observed[r] = t0.Add(time.Duration(r) * time.Millisecond)
	}
	keys := kb.NewArray()
	defer keys.Release()
	kb.Release()
	values := rb.NewRecordBatch()
	defer values.Release()
	rb.Release()
	if err := s.Set(context.Background(), "Big", keys, values, observed); err != nil {
		t.Fatal(err)
	}

	// Read back in reverse order, with keys never written in between.
	rk := array.NewInt64Builder(mem)
	for r := n - 1; r >= 0; r-- {
		rk.Append(int64(r * 7))
		rk.Append(int64(r*7 + 1))
	}
	rkeys := rk.NewArray()
	defer rkeys.Release()
	rk.Release()
	got := get(t, s, mem, "Big", rkeys, fields)
	defer got.Release()
	for i := range nf {
		col := got.Values.Column(i).(*array.Float64)
		obs := got.Observed[i].(*array.Timestamp)
		want := values.Column(i).(*array.Float64)
		for j := range rkeys.Len() {
			r := n - 1 - j/2
			if j%2 == 1 {
				if col.IsValid(j) || obs.IsValid(j) {
					t.Fatalf("feature %d key %d: got %v, want missing", i, r*7+1, col.ValueStr(j))
				}
				continue
			}
			if col.IsValid(j) != want.IsValid(r) || (want.IsValid(r) && col.Value(j) != want.Value(r)) ||
				obs.IsNull(j) || !obs.Value(j).ToTime(arrow.Microsecond).Equal(observed[r]) {
				t.Fatalf("feature %d key %d: got %s at %s, want %s at %v", i, r*7, col.ValueStr(j), obs.ValueStr(j), want.ValueStr(r), observed[r])
			}
		}
	}
}

// randomHistory writes random subsets of features of every cacheable
// type, for random keys at random times (often equal ones), then reads
// every feature in a shuffled order for written and unwritten keys. Each
// cell must be what a plain map of the writes says: the value written
// last among those observed latest, observed then; missing where nothing
// was written. Entities thus hold features of several times and rows mix
// stored and missing features.
func randomHistory(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	rng := rand.New(rand.NewPCG(7, 11))
	fields := []arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "at", Type: features.TimestampType, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ln", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
	}
	random := func(f int) any {
		if rng.IntN(5) == 0 {
			return nil
		}
		switch f {
		case 0:
			return rng.Int64() - 1<<62
		case 1:
			return rng.NormFloat64()
		case 2:
			return strings.Repeat("é", rng.IntN(4))
		case 3:
			return rng.IntN(2) == 0
		case 4:
			return arrow.Timestamp(rng.Int64N(1 << 50))
		case 5:
			return arrow.Date32(rng.Int32N(40000) - 20000)
		}
		l := make([]int64, rng.IntN(3))
		for i := range l {
			l[i] = rng.Int64N(100)
		}
		return l
	}
	type cell struct {
		v  any
		at time.Time
	}
	model := map[int64]map[int]cell{}
	for range 40 {
		var picked []int
		for _, f := range rng.Perm(len(fields))[:1+rng.IntN(len(fields))] {
			picked = append(picked, f)
		}
		keys := rng.Perm(16)[:1+rng.IntN(6)]
		ids := make([]int64, len(keys))
		rows := make([][]any, len(keys))
		at := make([]time.Time, len(keys))
		for r, k := range keys {
			ids[r], at[r] = int64(k), t0.Add(time.Duration(rng.IntN(4))*time.Minute)
			for _, f := range picked {
				rows[r] = append(rows[r], random(f))
			}
		}
		sub := make([]arrow.Field, len(picked))
		for j, f := range picked {
			sub[j] = fields[f]
		}
		kb := Int64Keys(mem, ids...)
		rec := anyRecord(mem, sub, rows)
		err := s.Set(context.Background(), "R", kb, rec, at)
		kb.Release()
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		for r, id := range ids {
			if model[id] == nil {
				model[id] = map[int]cell{}
			}
			for j, f := range picked {
				if old, ok := model[id][f]; !ok || !old.at.After(at[r]) {
					model[id][f] = cell{rows[r][j], at[r]}
				}
			}
		}
	}

	order := rng.Perm(len(fields))
	asked := make([]arrow.Field, len(order))
	for j, f := range order {
		asked[j] = fields[f]
	}
	ids := make([]int64, 0, 20)
	for _, k := range rng.Perm(20) {
		ids = append(ids, int64(k))
	}
	keys := Int64Keys(mem, ids...)
	defer keys.Release()
	got := get(t, s, mem, "R", keys, asked)
	defer got.Release()
	rows := make([][]any, len(ids))
	for r, id := range ids {
		for _, f := range order {
			rows[r] = append(rows[r], model[id][f].v)
		}
	}
	want := anyRecord(mem, asked, rows)
	defer want.Release()
	for j, f := range asked {
		if !array.Equal(got.Values.Column(j), want.Column(j)) {
			t.Errorf("feature %s: got %v, want %v", f.Name, got.Values.Column(j), want.Column(j))
		}
		times := make([]any, len(ids))
		for r, id := range ids {
			if c, ok := model[id][order[j]]; ok {
				times[r] = c.at
			}
		}
		checkObserved(t, f.Name, got.Observed[j], times)
	}
}

// anyRecord is rows of values (nil, int64, float64, string, bool,
// arrow.Timestamp, arrow.Date32, []int64) as a record of fields.
func anyRecord(mem memory.Allocator, fields []arrow.Field, rows [][]any) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for _, row := range rows {
		for j, v := range row {
			switch v := v.(type) {
			case nil:
				b.Field(j).AppendNull()
			case int64:
				b.Field(j).(*array.Int64Builder).Append(v)
			case float64:
				b.Field(j).(*array.Float64Builder).Append(v)
			case string:
				b.Field(j).(*array.StringBuilder).Append(v)
			case bool:
				b.Field(j).(*array.BooleanBuilder).Append(v)
			case arrow.Timestamp:
				b.Field(j).(*array.TimestampBuilder).Append(v)
			case arrow.Date32:
				b.Field(j).(*array.Date32Builder).Append(v)
			case []int64:
				lb := b.Field(j).(*array.ListBuilder)
				lb.Append(true)
				lb.ValueBuilder().(*array.Int64Builder).AppendValues(v, nil)
			}
		}
	}
	return b.NewRecordBatch()
}

func errorCases(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	keys := column(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`)
	defer keys.Release()
	rec := record(t, mem, []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int32}}, `[{"v": 1}, {"v": 2}]`)
	defer rec.Release()
	if err := s.Set(context.Background(), "C", keys, rec, []time.Time{t0}); err == nil || !strings.Contains(err.Error(), "observation times") {
		t.Errorf("short observed: err = %v", err)
	}
	if err := s.Set(context.Background(), "C", keys, rec, []time.Time{t0, t0}); err == nil || !strings.Contains(err.Error(), "int32") {
		t.Errorf("uncacheable type: err = %v", err)
	}
	bad := column(t, mem, arrow.PrimitiveTypes.Float64, `[1.5]`)
	defer bad.Release()
	if _, err := s.Get(context.Background(), mem, "C", bad, rec.Schema()); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("float64 keys: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, mem, "C", keys, rec.Schema()); err == nil {
		t.Error("Get with a cancelled context: no error")
	}
}

func concurrentUse(t *testing.T, s stores.OnlineStore) {
	mem := checked(t)
	f := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			keys := column(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
			defer keys.Release()
			rec := record(t, mem, f, fmt.Sprintf(`[{"v": %d}, {"v": %d}, {"v": %d}]`, g, g, g))
			defer rec.Release()
			at := t0.Add(time.Duration(g) * time.Second)
			for range 20 {
				if err := s.Set(context.Background(), "C", keys, rec, []time.Time{at, at, at}); err != nil {
					t.Error(err)
					return
				}
				v, err := s.Get(context.Background(), mem, "C", keys, rec.Schema())
				if err != nil {
					t.Error(err)
					return
				}
				v.Release()
			}
		})
	}
	wg.Wait()
	keys := column(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
	defer keys.Release()
	got := get(t, s, mem, "C", keys, f)
	defer got.Release()
	if want := "[7 7 7]"; got.Values.Column(0).String() != want {
		t.Errorf("after concurrent sets: %v, want the newest %s", got.Values.Column(0), want)
	}
}

// Server returns the address of a test server from the environment
// variable env (scripts/services exports them). Without it the test is
// skipped, except under CI=true, where it fails: CI never skips silently.
func Server(t testing.TB, env string) string {
	t.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: scripts/services start exports it", env)
		}
		t.Skipf("%s is not set: run eval \"$(scripts/services start)\" first", env)
	}
	return addr
}

// Int64Keys is an int64 key array, for the stores' own tests and
// benchmarks.
func Int64Keys(mem memory.Allocator, keys ...int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(keys, nil)
	return b.NewArray()
}

// FloatRecord is rows of float64 features named names, value(r, i) in row
// r of feature i: the shape of the benchmarks' cached values.
func FloatRecord(mem memory.Allocator, names []string, rows int, value func(r, i int) float64) arrow.RecordBatch {
	fields := make([]arrow.Field, len(names))
	for i, n := range names {
		fields[i] = arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	for r := range rows {
		for i := range names {
			b.Field(i).(*array.Float64Builder).Append(value(r, i))
		}
	}
	return b.NewRecordBatch()
}
