package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/storetest"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// fromJSON builds a record of the given fields from JSON rows.
func fromJSON(t *testing.T, mem memory.Allocator, fields []arrow.Field, rows string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, arrow.NewSchema(fields, nil), strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func keysOf(t *testing.T, mem memory.Allocator, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	a, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func get(t *testing.T, s *Store, mem memory.Allocator, class string, keys arrow.Array, fields []arrow.Field) *stores.OnlineValues {
	t.Helper()
	v, err := s.Get(context.Background(), mem, class, keys, arrow.NewSchema(fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func observedStrings(v *stores.OnlineValues) []string {
	out := make([]string, len(v.Observed))
	for i, o := range v.Observed {
		out[i] = o.String()
	}
	return out
}

func TestRoundTripAllTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
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
	values := fromJSON(t, mem, fields, rows)
	defer values.Release()
	keys := keysOf(t, mem, arrow.BinaryTypes.String, `["a", "b", "c"]`)
	defer keys.Release()

	s := New()
	observed := []time.Time{t0, t0.Add(time.Second), t0.Add(time.Microsecond)}
	if err := s.Set(context.Background(), "User", keys, values, observed); err != nil {
		t.Fatal(err)
	}
	got := get(t, s, mem, "User", keys, fields)
	defer got.Release()
	if !array.RecordEqual(got.Values, values) {
		t.Errorf("values:\n%v\nwant:\n%v", got.Values, values)
	}
	for i, o := range got.Observed {
		ts := o.(*array.Timestamp)
		for r, want := range observed {
			if ts.IsNull(r) || !ts.Value(r).ToTime(arrow.Microsecond).Equal(want) {
				t.Errorf("feature %s row %d: observed %v, want %v", fields[i].Name, r, ts.ValueStr(r), want)
			}
		}
	}
}

func TestMissingAndNewerWins(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	f := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	s := New()
	set := func(keysJS, rowsJS string, at ...time.Time) {
		keys := keysOf(t, mem, arrow.PrimitiveTypes.Int64, keysJS)
		defer keys.Release()
		rec := fromJSON(t, mem, f, rowsJS)
		defer rec.Release()
		if err := s.Set(context.Background(), "Item", keys, rec, at); err != nil {
			t.Fatal(err)
		}
	}
	set(`[1, 2, 3]`, `[{"v": 10}, {"v": 20}, {"v": null}]`, t0, t0, t0)
	// key 1: older value is ignored; key 2: newer replaces; key 3: same time replaces; null key skipped.
	set(`[1, 2, 3, null]`, `[{"v": 11}, {"v": 21}, {"v": 31}, {"v": 99}]`, t0.Add(-time.Hour), t0.Add(time.Hour), t0, t0)

	keys := keysOf(t, mem, arrow.PrimitiveTypes.Int64, `[3, 2, 1, 4, null, 1]`)
	defer keys.Release()
	got := get(t, s, mem, "Item", keys, f)
	defer got.Release()
	if want := `[31 21 10 (null) (null) 10]`; got.Values.Column(0).String() != want {
		t.Errorf("values = %v, want %v", got.Values.Column(0), want)
	}
	obs := got.Observed[0].(*array.Timestamp)
	wantObs := []any{t0, t0.Add(time.Hour), t0, nil, nil, t0}
	for r, w := range wantObs {
		switch {
		case w == nil && obs.IsValid(r):
			t.Errorf("row %d: observed %v, want missing", r, obs.ValueStr(r))
		case w != nil && (obs.IsNull(r) || !obs.Value(r).ToTime(arrow.Microsecond).Equal(w.(time.Time))):
			t.Errorf("row %d: observed %v, want %v", r, obs.ValueStr(r), w)
		}
	}

	// Another class, another key type, an unknown feature, a changed type: all missing.
	sk := keysOf(t, mem, arrow.BinaryTypes.String, `["1"]`)
	defer sk.Release()
	for _, c := range []struct {
		class  string
		keys   arrow.Array
		fields []arrow.Field
	}{
		{"User", keys, f},
		{"Item", sk, f},
		{"Item", keys, []arrow.Field{{Name: "other", Type: arrow.PrimitiveTypes.Int64}}},
		{"Item", keys, []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Float64}}},
	} {
		v := get(t, s, mem, c.class, c.keys, c.fields)
		if v.Values.Column(0).NullN() != c.keys.Len() || v.Observed[0].NullN() != c.keys.Len() {
			t.Errorf("%s %s %v: got %v / %v, want all missing", c.class, c.keys.DataType(), c.fields, v.Values.Column(0), observedStrings(v))
		}
		v.Release()
	}
}

func TestSetErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := New()
	keys := keysOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2]`)
	defer keys.Release()
	rec := fromJSON(t, mem, []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int32}}, `[{"v": 1}, {"v": 2}]`)
	defer rec.Release()
	if err := s.Set(context.Background(), "C", keys, rec, []time.Time{t0}); err == nil || !strings.Contains(err.Error(), "observation times") {
		t.Errorf("short observed: err = %v", err)
	}
	if err := s.Set(context.Background(), "C", keys, rec, []time.Time{t0, t0}); err == nil || !strings.Contains(err.Error(), "int32") {
		t.Errorf("uncacheable type: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, mem, "C", keys, rec.Schema()); err == nil {
		t.Error("Get with a cancelled context: no error")
	}
}

func TestCodecRejectsTruncatedValues(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a := keysOf(t, mem, arrow.ListOf(arrow.BinaryTypes.String), `[["abc", "de"]]`)
	defer a.Release()
	enc, err := stores.AppendValue(nil, a, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(enc) {
		b := array.NewBuilder(mem, a.DataType())
		if _, err := stores.DecodeValue(enc[:n], b); err == nil {
			t.Errorf("decoding %d of %d bytes: no error", n, len(enc))
		}
		b.Release()
	}
}

func TestConcurrentUse(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := New()
	f := []arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			keys := keysOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
			defer keys.Release()
			rec := fromJSON(t, mem, f, fmt.Sprintf(`[{"v": %d}, {"v": %d}, {"v": %d}]`, g, g, g))
			defer rec.Release()
			at := t0.Add(time.Duration(g) * time.Second)
			for range 50 {
				if err := s.Set(context.Background(), "C", keys, rec, []time.Time{at, at, at}); err != nil {
					t.Error(err)
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
	keys := keysOf(t, mem, arrow.PrimitiveTypes.Int64, `[1, 2, 3]`)
	defer keys.Release()
	got := get(t, s, mem, "C", keys, f)
	defer got.Release()
	if want := "[7 7 7]"; got.Values.Column(0).String() != want {
		t.Errorf("after concurrent sets: %v, want the newest %s", got.Values.Column(0), want)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) stores.OnlineStore { return New() })
}
