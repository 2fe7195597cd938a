package coerce

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Strings are parsed here rather than by compute.CastArray: compute has no
// kernels for string_view, its parsers refuse " 42" (keys typed by people
// and CSV exports carry spaces), and its errors do not say which row.

// parseInto sets out[i] to read of the trimmed text of every non-null
// string i of arr, stopping at the first error. A loop per kind, so that
// reading a value is not a call through an interface.
func parseInto[T any](arr arrow.Array, out []T, read func(string) (T, error)) error {
	valid := func(int) bool { return true }
	if arr.NullN() > 0 {
		valid = arr.IsValid
	}
	var err error
	switch a := arr.(type) {
	case *array.String:
		for i := range a.Len() {
			if valid(i) {
				if out[i], err = read(strings.TrimSpace(a.Value(i))); err != nil {
					return &rowError{i, err}
				}
			}
		}
	case *array.LargeString:
		for i := range a.Len() {
			if valid(i) {
				if out[i], err = read(strings.TrimSpace(a.Value(i))); err != nil {
					return &rowError{i, err}
				}
			}
		}
	case *array.StringView:
		for i := range a.Len() {
			if valid(i) {
				if out[i], err = read(strings.TrimSpace(a.Value(i))); err != nil {
					return &rowError{i, err}
				}
			}
		}
	}
	return nil
}

// parseFixed reads every non-null string of arr with read into a new
// array of type to, whose values are Ts; the nulls are arr's. The values
// are written in place rather than appended to a builder, which checks
// its capacity per row and allocated 142,016 bytes for 10,000 int64s where
// this allocates 82,192 (figures in coerce_test.go).
func parseFixed[T arrow.FixedWidthType](mem memory.Allocator, arr arrow.Array, to arrow.DataType, read func(string) (T, error)) (arrow.Array, error) {
	values := memory.NewResizableBuffer(mem)
	defer values.Release()
	values.Resize(arr.Len() * to.(arrow.FixedWidthDataType).BitWidth() / 8)
	if err := parseInto(arr, arrow.GetData[T](values.Bytes()), read); err != nil {
		return nil, err
	}
	return withNulls(mem, arr, to, values, nil), nil
}

// withNulls makes an array of type to with arr's length and nulls, the
// given values buffer and children.
func withNulls(mem memory.Allocator, arr arrow.Array, to arrow.DataType, values *memory.Buffer, children []arrow.ArrayData) arrow.Array {
	var validity *memory.Buffer
	if arr.NullN() > 0 {
		validity = memory.NewResizableBuffer(mem)
		defer validity.Release()
		validity.Resize(int(bitutil.BytesForBits(int64(arr.Len()))))
		bitutil.CopyBitmap(arr.NullBitmapBytes(), arr.Data().Offset(), arr.Len(), validity.Bytes(), 0)
	}
	data := array.NewData(to, arr.Len(), []*memory.Buffer{validity, values}, children, arr.NullN(), 0)
	defer data.Release()
	return array.MakeFromData(data)
}

func parseInts(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	return parseFixed(mem, arr, to, func(s string) (int64, error) {
		v, err := strconv.ParseInt(s, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of the range of int64", s)
		}
		if err != nil {
			return 0, fmt.Errorf("%q is not a base-10 integer", s)
		}
		return v, nil
	})
}

func parseFloats(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	return parseFixed(mem, arr, to, func(s string) (float64, error) {
		v, err := strconv.ParseFloat(s, 64)
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of the range of float64", s)
		}
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return v, nil
	})
}

func parseBools(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	bools := make([]bool, arr.Len())
	err := parseInto(arr, bools, func(s string) (bool, error) {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean (true, false, t, f, 1 or 0)", s)
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	values := memory.NewResizableBuffer(mem)
	defer values.Release()
	values.Resize(int(bitutil.BytesForBits(int64(len(bools)))))
	for i, v := range bools {
		bitutil.SetBitTo(values.Bytes(), i, v)
	}
	return withNulls(mem, arr, to, values, nil), nil
}

func parseTimes(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	ts := to.(*arrow.TimestampType)
	return parseFixed(mem, arr, to, func(s string) (arrow.Timestamp, error) {
		t, err := ParseTime(s)
		if err != nil {
			return 0, err
		}
		v, ok := instant(t, ts.Unit)
		if !ok {
			return 0, fmt.Errorf("%q is out of the range of %s", s, ts)
		}
		return arrow.Timestamp(v), nil
	})
}

func parseDates(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	return parseFixed(mem, arr, to, func(s string) (arrow.Date32, error) {
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a date (write it as 2026-01-31)", s)
		}
		// A four-digit year is always within date32's range.
		return arrow.Date32(floorDiv(t.Unix(), secondsPerDay)), nil
	})
}

// timeLayouts are the timestamp spellings accepted; a time without a zone
// is UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999-07",
	time.DateOnly,
}

// ParseTime reads a timestamp literal: RFC 3339 with a T or a space, with
// or without fractional seconds and zone (a zone may be given as hours
// alone, -07), or a date alone (midnight). Surrounding spaces are ignored;
// the result is in UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
}

// instant is t as a count of unit since the epoch, floored, and whether it
// fits in an int64. A negative second with a fraction is taken from the
// second after it, so that the earliest instants (1677-09-21T00:12:43.
// 145224192Z in ns) do not overflow on the way.
func instant(t time.Time, unit arrow.TimeUnit) (int64, bool) {
	per := perSecond[unit]
	sec, frac := t.Unix(), int64(t.Nanosecond())/(1e9/per)
	if sec < 0 && frac > 0 {
		sec, frac = sec+1, frac-per
	}
	if sec > math.MaxInt64/per || sec < math.MinInt64/per {
		return 0, false
	}
	whole := sec * per
	v := whole + frac
	return v, (frac >= 0) == (v >= whole)
}
