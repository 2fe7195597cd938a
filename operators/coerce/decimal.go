package coerce

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// decimal32 and decimal64 are converted here because arrow-go v18.8's
// compute has cast kernels for decimal128 and decimal256 only. Both fit an
// int64, so a scale-0 value never overflows.

// unscaled is the integer a decimal32 or decimal64 stores at row i.
func unscaled(arr arrow.Array) func(i int) int64 {
	if a, ok := arr.(*array.Decimal32); ok {
		return func(i int) int64 { return int64(a.Value(i)) }
	}
	a := arr.(*array.Decimal64)
	return func(i int) int64 { return int64(a.Value(i)) }
}

func smallDecimalInts(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	value := unscaled(arr)
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(arr.Len())
	for i := range arr.Len() {
		if arr.IsNull(i) {
			b.AppendNull()
			continue
		}
		b.Append(value(i))
	}
	return b.NewArray(), nil
}

func smallDecimalFloats(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	value := unscaled(arr)
	scale := int(arr.DataType().(arrow.DecimalType).GetScale())
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(arr.Len())
	for i := range arr.Len() {
		if arr.IsNull(i) {
			b.AppendNull()
			continue
		}
		// Dividing by the exact power of ten rounds once, so 1225 at scale
		// 2 is the float64 nearest 12.25 (decimal.ToFloat64 multiplies by
		// the inexact 0.01).
		v := float64(value(i))
		if scale >= 0 {
			v /= math.Pow10(scale)
		} else {
			v *= math.Pow10(-scale)
		}
		b.Append(v)
	}
	return b.NewArray(), nil
}
