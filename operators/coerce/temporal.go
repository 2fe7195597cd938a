package coerce

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const secondsPerDay = 86400

// perSecond is how many of each time unit make a second.
var perSecond = [...]int64{
	arrow.Second:      1,
	arrow.Millisecond: 1e3,
	arrow.Microsecond: 1e6,
	arrow.Nanosecond:  1e9,
}

// floorDiv is a / b rounded toward minus infinity (b > 0): the instant
// -1 us is in the second, the day, before the epoch's.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// rescale converts a timestamp to another unit or zone. A zone never
// changes the stored value (it is always a UTC instant), so a change of
// zone alone shares arr's buffers; compute's cast does too, but drops the
// offset of a sliced array in arrow-go v18.8. Going to a finer unit is
// compute's cast, which reports overflow; going to a coarser one is written
// here because compute's safe cast refuses any value with digits below the
// new unit (a source's ns timestamp read as us), and its truncating cast
// rounds negative instants toward the epoch. This floors: an instant maps
// to the unit that contains it.
func rescale(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	from := arr.DataType().(*arrow.TimestampType).Unit
	unit := to.(*arrow.TimestampType).Unit
	switch {
	case unit == from:
		d := arr.Data()
		data := array.NewData(to, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
		defer data.Release()
		return array.MakeFromData(data), nil
	case unit > from:
		return cast(mem, arr, to)
	}
	div := perSecond[from] / perSecond[unit]
	ts := arr.(*array.Timestamp)
	b := array.NewTimestampBuilder(mem, to.(*arrow.TimestampType))
	defer b.Release()
	b.Reserve(ts.Len())
	for i, v := range ts.TimestampValues() {
		if ts.IsNull(i) {
			b.AppendNull()
			continue
		}
		b.Append(arrow.Timestamp(floorDiv(int64(v), div)))
	}
	return b.NewArray(), nil
}

// days is the UTC day of each timestamp. Written here because compute's
// cast takes the day in the timestamp's zone, and fletch's dates are UTC
// days (a date key compared with a timestamp one must agree with it).
func days(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	per := perSecond[arr.DataType().(*arrow.TimestampType).Unit] * secondsPerDay
	ts := arr.(*array.Timestamp)
	b := array.NewDate32Builder(mem)
	defer b.Release()
	b.Reserve(ts.Len())
	for i, v := range ts.TimestampValues() {
		if ts.IsNull(i) {
			b.AppendNull()
			continue
		}
		d := floorDiv(int64(v), per)
		if d < math.MinInt32 || d > math.MaxInt32 {
			return nil, &rowError{i, fmt.Errorf("timestamp %d is beyond the range of date32", v)}
		}
		b.Append(arrow.Date32(d))
	}
	return b.NewArray(), nil
}
