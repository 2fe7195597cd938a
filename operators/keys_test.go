package operators

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The joins are checked against nested loops over the same random data:
// keys with duplicates and nulls, event times with nulls and ties.
func TestLookupAndExpandAgainstNestedLoops(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	const nIndexed, nProbe = 400, 300
	ib := array.NewInt64Builder(mem)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond})
	for range nIndexed {
		if rng.IntN(20) == 0 {
			ib.AppendNull()
		} else {
			ib.Append(rng.Int64N(50))
		}
		if rng.IntN(15) == 0 {
			tb.AppendNull()
		} else {
			tb.Append(arrow.Timestamp(rng.Int64N(100)))
		}
	}
	keys := ib.NewArray().(*array.Int64)
	defer keys.Release()
	events := tb.NewArray().(*array.Timestamp)
	defer events.Release()
	for range nProbe {
		if rng.IntN(25) == 0 {
			ib.AppendNull()
		} else {
			ib.Append(rng.Int64N(60))
		}
	}
	probe := ib.NewArray().(*array.Int64)
	defer probe.Release()
	ib.Release()
	tb.Release()
	times := make([]int64, nProbe)
	for i := range times {
		times[i] = rng.Int64N(110)
	}
	ix, err := NewKeyIndex(keys)
	if err != nil {
		t.Fatal(err)
	}
	vis := Visibility{EventTimes: events, ProbeTimes: times}
	latest, err := ix.LookupLatest(probe, vis)
	if err != nil {
		t.Fatal(err)
	}
	parents, rows, offsets, err := ix.Expand(probe, vis)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nProbe {
		want := int32(-1)
		var all []int32
		for r := range nIndexed {
			if probe.IsNull(i) || keys.IsNull(r) || keys.Value(r) != probe.Value(i) || events.IsNull(r) || int64(events.Value(r)) > times[i] {
				continue
			}
			all = append(all, int32(r))
			if want < 0 || events.Value(r) >= events.Value(int(want)) {
				want = int32(r)
			}
		}
		if latest[i] != want {
			t.Errorf("probe %d: latest row %d, want %d", i, latest[i], want)
		}
		got := rows[offsets[i]:offsets[i+1]]
		if !slices.Equal(got, all) {
			t.Errorf("probe %d: expanded rows %v, want %v", i, got, all)
		}
		for _, p := range parents[offsets[i]:offsets[i+1]] {
			if p != int32(i) {
				t.Errorf("probe %d: pair tagged with parent %d", i, p)
			}
		}
	}
	// Timeless: every row with the key is visible; the last one wins.
	timeless, err := ix.LookupLatest(probe, Visibility{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range nProbe {
		want := int32(-1)
		for r := range nIndexed {
			if !probe.IsNull(i) && !keys.IsNull(r) && keys.Value(r) == probe.Value(i) {
				want = int32(r)
			}
		}
		if timeless[i] != want {
			t.Errorf("timeless probe %d: row %d, want %d", i, timeless[i], want)
		}
	}
}

func TestStringKeysDistinctAndGather(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewStringBuilder(mem)
	b.AppendValues([]string{"a", "b", "a", "", "b"}, []bool{true, true, true, false, true})
	keys := b.NewArray()
	b.Release()
	defer keys.Release()
	times := []int64{1, 1, 1, 1, 2}
	firsts, pos, err := Distinct(keys, times)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(firsts, []int32{0, 1, 4}) || !slices.Equal(pos, []int32{0, 1, 0, -1, 2}) {
		t.Fatalf("Distinct = %v, %v", firsts, pos)
	}
	g, err := Gather(mem, keys, []int32{4, -1, 0})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if g.String() != `["b" (null) "a"]` {
		t.Errorf("Gather = %s", g)
	}
	if _, err := NewKeyIndex(array.MakeArrayOfNull(mem, arrow.FixedWidthTypes.Boolean, 0)); err == nil {
		t.Error("a boolean key column was accepted")
	}
}

func TestConstant(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		dt   arrow.DataType
		v    any
		want string
	}{
		{arrow.PrimitiveTypes.Int64, int64(7), "[7 7 7]"},
		{arrow.PrimitiveTypes.Float64, int64(2), "[2 2 2]"},
		{arrow.BinaryTypes.String, "x", `["x" "x" "x"]`},
		{arrow.FixedWidthTypes.Boolean, true, "[true true true]"},
		{arrow.PrimitiveTypes.Int64, nil, "[(null) (null) (null)]"},
	}
	for _, c := range cases {
		a, err := Constant(mem, c.dt, c.v, 3)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != c.want {
			t.Errorf("Constant(%s, %v) = %s, want %s", c.dt, c.v, a, c.want)
		}
		a.Release()
	}
	if _, err := Constant(mem, arrow.PrimitiveTypes.Int64, "x", 1); err == nil {
		t.Error("a string constant was accepted as an int")
	}
}
