package coerce

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// integer is every Arrow integer width.
type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// decimalText formats integers as base-10 text (an int key given for a
// str one). Written here because compute's integer-to-string cast leaks a
// buffer in arrow-go v18.8.
func decimalText(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	switch a := arr.(type) {
	case *array.Int8:
		return formatInts(mem, a, a.Values()), nil
	case *array.Int16:
		return formatInts(mem, a, a.Values()), nil
	case *array.Int32:
		return formatInts(mem, a, a.Values()), nil
	case *array.Int64:
		return formatInts(mem, a, a.Values()), nil
	case *array.Uint8:
		return formatInts(mem, a, a.Values()), nil
	case *array.Uint16:
		return formatInts(mem, a, a.Values()), nil
	case *array.Uint32:
		return formatInts(mem, a, a.Values()), nil
	default:
		u := arr.(*array.Uint64)
		return formatInts(mem, u, u.Values()), nil
	}
}

func formatInts[T integer](mem memory.Allocator, arr arrow.Array, vals []T) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(len(vals))
	var buf []byte
	for i, v := range vals {
		if arr.IsNull(i) {
			b.AppendNull()
			continue
		}
		// Only a negative value needs the signed formatter, and every
		// non-negative value of every width fits a uint64.
		if v < 0 {
			buf = strconv.AppendInt(buf[:0], int64(v), 10)
		} else {
			buf = strconv.AppendUint(buf[:0], uint64(v), 10)
		}
		b.BinaryBuilder.Append(buf)
	}
	return b.NewArray()
}
