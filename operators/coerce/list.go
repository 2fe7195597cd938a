package coerce

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// list converts any list kind to a list of the target's element type.
// Written here because compute's list cast leaks a buffer in arrow-go
// v18.8, and it has no list-view or fixed-size-list to list casts. The
// elements of the non-null rows are cut out of the child, converted, and
// given new offsets: one slice when those rows lie end to end, as in most
// lists; gathered with take otherwise, as list views may overlap or be out
// of order, and a null row may hide elements, which are left out so that
// a value nobody can read cannot fail the conversion.
func list(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	l := arr.(array.ListLike)
	n := l.Len()
	offsets := make([]int32, n+1)
	var first, end int64 // the elements [first, end) of the child
	contiguous, seen := true, false
	for i := range n {
		if l.IsNull(i) {
			offsets[i+1] = offsets[i]
			continue
		}
		s, e := l.ValueOffsets(i)
		if !seen {
			first, end, seen = s, s, true
		}
		contiguous = contiguous && s == end
		end = e
		size := int64(offsets[i]) + e - s
		if size > math.MaxInt32 {
			return nil, fmt.Errorf("row %d: more than 2^31-1 elements in the list's rows so far", i)
		}
		offsets[i+1] = int32(size)
	}
	var elems arrow.Array
	if contiguous {
		elems = array.NewSlice(l.ListValues(), first, end)
	} else {
		var err error
		if elems, err = gather(mem, l, int(offsets[n])); err != nil {
			return nil, err
		}
	}
	defer elems.Release()
	values, err := convert(mem, elems, to.(*arrow.ListType).Elem())
	var bad *rowError
	if errors.As(err, &bad) {
		row := sort.Search(n, func(i int) bool { return int(offsets[i+1]) > bad.row })
		return nil, &rowError{row, fmt.Errorf("element %d: %w", bad.row-int(offsets[row]), bad.err)}
	}
	if err != nil {
		return nil, fmt.Errorf("list elements: %w", err)
	}
	defer values.Release()

	offsetBuf := memory.NewResizableBuffer(mem)
	defer offsetBuf.Release()
	offsetBuf.Resize(arrow.Int32Traits.BytesRequired(n + 1))
	copy(arrow.Int32Traits.CastFromBytes(offsetBuf.Bytes()), offsets)
	return withNulls(mem, arr, to, offsetBuf, []arrow.ArrayData{values.Data()}), nil
}

// gather takes the elements of l's non-null rows, in row order, into one
// array of total elements.
func gather(mem memory.Allocator, l array.ListLike, total int) (arrow.Array, error) {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(total)
	for i := range l.Len() {
		if l.IsNull(i) {
			continue
		}
		s, e := l.ValueOffsets(i)
		for j := s; j < e; j++ {
			b.UnsafeAppend(j)
		}
	}
	indices := b.NewArray()
	defer indices.Release()
	return compute.TakeArray(compute.WithAllocator(context.Background(), mem), l.ListValues(), indices)
}
