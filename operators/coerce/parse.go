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
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Strings are parsed here rather than by compute.CastArray: compute has no
// kernels for string_view, its parsers refuse " 42" (keys typed by people
// and CSV exports carry spaces), and its errors do not say which row.

// stringValues is what the three string kinds share.
type stringValues interface {
	arrow.Array
	Value(i int) string
}

// appender is the part of a typed builder the parsers use.
type appender[T any] interface {
	array.Builder
	Append(T)
}

// parseEach reads every non-null string of arr, trimmed, with read and
// appends the result to b, which it releases.
func parseEach[T any, B appender[T]](b B, arr arrow.Array, read func(string) (T, error)) (arrow.Array, error) {
	defer b.Release()
	strs := arr.(stringValues)
	b.Reserve(arr.Len())
	for i := range arr.Len() {
		if arr.IsNull(i) {
			b.AppendNull()
			continue
		}
		v, err := read(strings.TrimSpace(strs.Value(i)))
		if err != nil {
			return nil, &rowError{i, err}
		}
		b.Append(v)
	}
	return b.NewArray(), nil
}

func parseInts(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	return parseEach(array.NewInt64Builder(mem), arr, func(s string) (int64, error) {
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

func parseFloats(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	return parseEach(array.NewFloat64Builder(mem), arr, func(s string) (float64, error) {
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

func parseBools(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	return parseEach(array.NewBooleanBuilder(mem), arr, func(s string) (bool, error) {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean (true, false, t, f, 1 or 0)", s)
		}
		return v, nil
	})
}

func parseTimes(mem memory.Allocator, arr arrow.Array, to arrow.DataType) (arrow.Array, error) {
	ts := to.(*arrow.TimestampType)
	return parseEach(array.NewTimestampBuilder(mem, ts), arr, func(s string) (arrow.Timestamp, error) {
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

func parseDates(mem memory.Allocator, arr arrow.Array, _ arrow.DataType) (arrow.Array, error) {
	return parseEach(array.NewDate32Builder(mem), arr, func(s string) (arrow.Date32, error) {
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
