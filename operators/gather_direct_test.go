package operators

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestGatherMatchesTake checks Gather's direct paths against arrow's Take
// (with null indices for idx < 0) on every type they handle, with nulls,
// sliced inputs and missing rows.
func TestGatherMatchesTake(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 300
	valid := make([]bool, n)
	for i := range valid {
		valid[i] = rng.IntN(5) != 0
	}
	build := map[string]func() arrow.Array{
		"int64": func() arrow.Array {
			b := array.NewInt64Builder(mem)
			defer b.Release()
			for i := range n {
				b.Append(rng.Int64())
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
		"float64": func() arrow.Array {
			b := array.NewFloat64Builder(mem)
			defer b.Release()
			for i := range n {
				b.Append(rng.Float64())
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
		"int32": func() arrow.Array {
			b := array.NewInt32Builder(mem)
			defer b.Release()
			for i := range n {
				b.Append(rng.Int32())
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
		"timestamp": func() arrow.Array {
			b := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
			defer b.Release()
			for i := range n {
				b.Append(arrow.Timestamp(rng.Int64()))
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
		"date32": func() arrow.Array {
			b := array.NewDate32Builder(mem)
			defer b.Release()
			for range n {
				b.Append(arrow.Date32(rng.Int32N(40000)))
			}
			return b.NewArray()
		},
		"bool": func() arrow.Array {
			b := array.NewBooleanBuilder(mem)
			defer b.Release()
			for i := range n {
				b.Append(rng.IntN(2) == 0)
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
		"string": func() arrow.Array {
			b := array.NewStringBuilder(mem)
			defer b.Release()
			for i := range n {
				b.Append(string(rune('a'+i%26)) + "xyz"[:i%4])
				if !valid[i] {
					b.AppendNull()
				}
			}
			return b.NewArray()
		},
	}
	for name, mk := range build {
		full := mk()
		for _, sliced := range []bool{false, true} {
			values := full
			if sliced {
				values = array.NewSlice(full, 7, int64(full.Len()-3))
			}
			for _, m := range []int{0, 1, 9, 64, 500} {
				idx := make([]int32, m)
				for i := range idx {
					idx[i] = rng.Int32N(int32(values.Len())+5) - 5
				}
				got, err := Gather(mem, values, idx)
				if err != nil {
					t.Fatal(err)
				}
				want := take(t, mem, values, idx)
				if !array.Equal(got, want) {
					t.Errorf("%s (sliced %v, %d rows): Gather = %v, Take = %v", name, sliced, m, got, want)
				}
				got.Release()
				want.Release()
			}
			if sliced {
				values.Release()
			}
		}
		full.Release()
	}
}

// take is arrow's Take of idx, a negative index taking null.
func take(t *testing.T, mem memory.Allocator, values arrow.Array, idx []int32) arrow.Array {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	for _, v := range idx {
		if v < 0 {
			b.AppendNull()
		} else {
			b.Append(v)
		}
	}
	indices := b.NewArray()
	defer indices.Release()
	out, err := compute.TakeArray(compute.WithAllocator(context.Background(), mem), values, indices)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGatherFromEmptyWithoutBuffer: an empty column may come without a
// data buffer (a source answered no row); gathering it for missing keys
// answers nulls (it dereferenced the missing buffer).
func TestGatherFromEmptyWithoutBuffer(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dt := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64, arrow.FixedWidthTypes.Date32} {
		d := array.NewData(dt, 0, []*memory.Buffer{nil, nil}, nil, 0, 0)
		empty := array.MakeFromData(d)
		d.Release()
		got, err := Gather(mem, empty, []int32{-1, -1})
		if err != nil {
			t.Fatal(err)
		}
		if got.Len() != 2 || got.NullN() != 2 {
			t.Errorf("%s: gathered %s, want two nulls", dt, got)
		}
		got.Release()
		empty.Release()
	}
}
