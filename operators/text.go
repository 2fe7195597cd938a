package operators

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DecimalText formats integers as their decimal text (an int key given for a
// str feature). arrow-go v18.8's compute cast from integers to strings leaks
// a buffer, so callers use this instead.
func DecimalText(mem memory.Allocator, ints *array.Int64) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(ints.Len())
	var buf []byte
	for i := range ints.Len() {
		if ints.IsNull(i) {
			b.AppendNull()
			continue
		}
		buf = strconv.AppendInt(buf[:0], ints.Value(i), 10)
		b.BinaryBuilder.Append(buf)
	}
	return b.NewArray()
}
