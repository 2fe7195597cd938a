package operators

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Gather returns values[idx[i]] for each i, null where idx[i] < 0.
// Fixed-width, boolean and string columns (what frames hold) are gathered
// directly; other types go through arrow's Take.
func Gather(mem memory.Allocator, values arrow.Array, idx []int32) (arrow.Array, error) {
	if isIdentity(idx, values.Len()) {
		values.Retain()
		return values, nil
	}
	if out := gatherDirect(mem, values, idx); out != nil {
		return out, nil
	}
	b := array.NewInt32Builder(mem)
	defer b.Release()
	b.Reserve(len(idx))
	for _, v := range idx {
		if v < 0 {
			b.AppendNull()
			continue
		}
		b.UnsafeAppend(v)
	}
	indices := b.NewArray()
	defer indices.Release()
	ctx := compute.WithAllocator(context.Background(), mem)
	return compute.TakeArray(ctx, values, indices)
}

// isIdentity says whether gathering idx from n values gives them back.
func isIdentity(idx []int32, n int) bool {
	if len(idx) != n {
		return false
	}
	for i, v := range idx {
		if int(v) != i {
			return false
		}
	}
	return true
}

// Distinct deduplicates (key, time) pairs: it returns the first row of each
// distinct pair, in first-appearance order, and for each input row the
// position of its pair in that list. Rows with a null key map to -1.
func Distinct(keys arrow.Array, times []int64) (firsts []int32, pos []int32, err error) {
	switch k := keys.(type) {
	case *array.Int64:
		firsts, pos = distinct(k, k.Value, times)
	case *array.String:
		firsts, pos = distinct(k, k.Value, times)
	default:
		return nil, nil, fmt.Errorf("key columns must be int64 or string, not %s", keys.DataType())
	}
	return firsts, pos, nil
}

func distinct[K comparable](keys arrow.Array, value func(int) K, times []int64) (firsts []int32, pos []int32) {
	type pair struct {
		k K
		t int64
	}
	pos = make([]int32, keys.Len())
	seen := make(map[pair]int32, sizeHint(keys.Len()))
	for i := range pos {
		if keys.IsNull(i) {
			pos[i] = -1
			continue
		}
		p := pair{value(i), times[i]}
		j, ok := seen[p]
		if !ok {
			j = int32(len(firsts))
			seen[p] = j
			firsts = append(firsts, int32(i))
		}
		pos[i] = j
	}
	return firsts, pos
}

// filled is n copies of x, written straight into the values buffer (no
// validity bitmap: none is null).
func filled[T int64 | float64](mem memory.Allocator, dt arrow.DataType, n int, x T) arrow.Array {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(n * 8)
	vals := arrow.GetData[T](buf.Bytes())[:n]
	for i := range vals {
		vals[i] = x
	}
	return FromBuffers(dt, n, nil, 0, buf)
}

// Constant returns an array of n copies of v (nil, bool, int64, float64,
// string or time.Time) of type dt.
func Constant(mem memory.Allocator, dt arrow.DataType, v any, n int) (arrow.Array, error) {
	if v == nil {
		return array.MakeArrayOfNull(mem, dt, n), nil
	}
	switch b := array.NewBuilder(mem, dt).(type) {
	case *array.Int64Builder:
		b.Release()
		x, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("constant %v is not an int", v)
		}
		return filled(mem, dt, n, x), nil
	case *array.Float64Builder:
		b.Release()
		var x float64
		switch t := v.(type) {
		case float64:
			x = t
		case int64:
			x = float64(t)
		default:
			return nil, fmt.Errorf("constant %v is not a number", v)
		}
		return filled(mem, dt, n, x), nil
	case *array.StringBuilder:
		defer b.Release()
		x, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("constant %v is not a string", v)
		}
		b.ReserveData(n * len(x))
		for range n {
			b.Append(x)
		}
		return b.NewArray(), nil
	case *array.BooleanBuilder:
		defer b.Release()
		x, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("constant %v is not a bool", v)
		}
		for range n {
			b.Append(x)
		}
		return b.NewArray(), nil
	case *array.TimestampBuilder:
		defer b.Release()
		x, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("constant %v is not a time", v)
		}
		unit := dt.(*arrow.TimestampType).Unit
		ts, err := arrow.TimestampFromTime(x, unit)
		if err != nil {
			return nil, err
		}
		for range n {
			b.Append(ts)
		}
		return b.NewArray(), nil
	default:
		b.Release()
		return nil, fmt.Errorf("no constants of type %s", dt)
	}
}
