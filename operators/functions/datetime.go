package functions

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/internal/suggest"
)

// Datetimes are timestamp[us, UTC]; a date argument is widened to its
// midnight. Parts are computed in UTC.

func utc(v arrow.Timestamp) time.Time { return time.UnixMicro(int64(v)).UTC() }

func init() {
	ts := []string{"ts"}
	part := func(name, doc string, f func(time.Time) int64) *Func {
		return fn(name, ts, doc, sig(mapFixed(tInt, func(v arrow.Timestamp) int64 { return f(utc(v)) }), kTs, kInt))
	}
	isoDow := func(t time.Time) int64 { return int64((t.Weekday()+6)%7) + 1 }
	builtin(
		part("year", "the year", func(t time.Time) int64 { return int64(t.Year()) }),
		part("quarter", "the quarter, 1..4", func(t time.Time) int64 { return int64(t.Month()+2) / 3 }),
		part("month", "the month, 1..12", func(t time.Time) int64 { return int64(t.Month()) }),
		part("day_of_month", "the day of the month, 1..31", func(t time.Time) int64 { return int64(t.Day()) }),
		part("day_of_year", "the day of the year, 1..366", func(t time.Time) int64 { return int64(t.YearDay()) }),
		part("day_of_week", "the ISO day of the week: Monday 1 .. Sunday 7", isoDow),
		part("week_of_year", "the ISO 8601 week number, 1..53", func(t time.Time) int64 { _, w := t.ISOWeek(); return int64(w) }),
		part("hour_of_day", "the hour, 0..23", func(t time.Time) int64 { return int64(t.Hour()) }),
		part("minute_of_hour", "the minute, 0..59", func(t time.Time) int64 { return int64(t.Minute()) }),
		part("second_of_minute", "the second, 0..59", func(t time.Time) int64 { return int64(t.Second()) }),
		part("unix_seconds", "whole seconds since 1970-01-01 UTC (floored)", func(t time.Time) int64 { return int64(math.Floor(float64(t.UnixMicro()) / 1e6)) }),
		part("unix_milliseconds", "whole milliseconds since 1970-01-01 UTC (floored)", func(t time.Time) int64 { return int64(math.Floor(float64(t.UnixMicro()) / 1e3)) }),
		fn("is_weekend", ts, "the day is a Saturday or Sunday",
			sig(rows(tBool, func(b array.Builder, a []arrow.Array, i int) {
				putBool(b, isoDow(utc(a[0].(*array.Timestamp).Value(i))) >= 6)
			}), kTs, kBool)),
		fn("from_unix_seconds", []string{"seconds"}, "the datetime that many seconds after 1970-01-01 UTC",
			sig(mapFixed(arrow.FixedWidthTypes.Timestamp_us, func(v float64) arrow.Timestamp { return arrow.Timestamp(math.Round(v * 1e6)) }), kFloat, kTs)),
		fn("from_unix_milliseconds", []string{"milliseconds"}, "the datetime that many milliseconds after 1970-01-01 UTC",
			sig(mapFixed(arrow.FixedWidthTypes.Timestamp_us, func(v int64) arrow.Timestamp { return arrow.Timestamp(v * 1000) }), kInt, kTs)),
		fn("to_date", ts, "the date of a datetime",
			sig(mapFixed(tDate32, func(v arrow.Timestamp) arrow.Date32 {
				return arrow.Date32(math.Floor(float64(v) / 864e8))
			}), kTs, kDate)),
		fn("date_trunc", []string{"unit", "ts"}, "ts truncated to the start of its second, minute, hour, day, week (Monday), month, quarter or year",
			sig(timeUnitKernel(arrow.FixedWidthTypes.Timestamp_us, func(b array.Builder, unit string, a []arrow.Array, i int) error {
				t, err := truncate(unit, utc(a[1].(*array.Timestamp).Value(i)))
				b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
				return err
			}), kStr, kTs, kTs)),
		fn("date_diff", []string{"unit", "start", "end"}, "number of unit boundaries (second, minute, hour, day, month, quarter, year) crossed from start to end, as DuckDB's date_diff",
			sig(timeUnitKernel(tInt, func(b array.Builder, unit string, a []arrow.Array, i int) error {
				d, err := dateDiff(unit, utc(a[1].(*array.Timestamp).Value(i)), utc(a[2].(*array.Timestamp).Value(i)))
				putInt(b, d)
				return err
			}), kStr, kTs, kTs, kInt)),
		fn("format_datetime", []string{"ts", "format"}, "ts formatted with strftime codes %Y %m %d %H %M %S %f %j %y %a %A %b %B %p %I %%",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, strftime(utc(a[0].(*array.Timestamp).Value(i)), str(a[1], i)))
			}), kTs, kStr, kStr)),
	)
}

var tDate32 = arrow.FixedWidthTypes.Date32

// timeUnitKernel runs f on rows with the unit (first argument) lower-cased,
// turning an unknown unit into an error for the whole call.
func timeUnitKernel(out arrow.DataType, f func(b array.Builder, unit string, a []arrow.Array, i int) error) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		var bad error
		res, err := rows(out, func(b array.Builder, a []arrow.Array, i int) {
			if err := f(b, strings.ToLower(str(a[0], i)), a, i); err != nil {
				bad = err
			}
		})(ctx, args)
		if bad != nil {
			res.Release()
			return nil, bad
		}
		return res, err
	}
}

var timeUnits = []string{"second", "minute", "hour", "day", "week", "month", "quarter", "year"}

func badUnit(unit string) error {
	return fmt.Errorf("unknown time unit %q%s; known: %s", unit, suggest.DidYouMean(unit, timeUnits), strings.Join(timeUnits, ", "))
}

func truncate(unit string, t time.Time) (time.Time, error) {
	y, m, d := t.Date()
	switch unit {
	case "second":
		return t.Truncate(time.Second), nil
	case "minute":
		return t.Truncate(time.Minute), nil
	case "hour":
		return t.Truncate(time.Hour), nil
	case "day":
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), nil
	case "week":
		return time.Date(y, m, d-int((t.Weekday()+6)%7), 0, 0, 0, 0, time.UTC), nil
	case "month":
		return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC), nil
	case "quarter":
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC), nil
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), nil
	}
	return t, badUnit(unit)
}

func dateDiff(unit string, a, b time.Time) (int64, error) {
	months := func(t time.Time) int64 { return int64(t.Year())*12 + int64(t.Month()) - 1 }
	switch unit {
	case "year":
		return int64(b.Year() - a.Year()), nil
	case "quarter":
		return months(b)/3 - months(a)/3, nil
	case "month":
		return months(b) - months(a), nil
	case "day", "hour", "minute", "second":
		ta, _ := truncate(unit, a)
		tb, _ := truncate(unit, b)
		step := map[string]time.Duration{"day": 24 * time.Hour, "hour": time.Hour, "minute": time.Minute, "second": time.Second}[unit]
		return int64(tb.Sub(ta) / step), nil
	}
	return 0, badUnit(unit)
}

func strftime(t time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			sb.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			fmt.Fprintf(&sb, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&sb, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&sb, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&sb, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&sb, "%02d", t.Hour())
		case 'I':
			fmt.Fprintf(&sb, "%02d", (t.Hour()+11)%12+1)
		case 'M':
			fmt.Fprintf(&sb, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&sb, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&sb, "%06d", t.Nanosecond()/1000)
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case 'a':
			sb.WriteString(t.Weekday().String()[:3])
		case 'A':
			sb.WriteString(t.Weekday().String())
		case 'b':
			sb.WriteString(t.Month().String()[:3])
		case 'B':
			sb.WriteString(t.Month().String())
		case 'p':
			sb.WriteString(t.Format("PM"))
		default:
			sb.WriteByte('%')
			if format[i] != '%' {
				sb.WriteByte(format[i])
			}
		}
	}
	return sb.String()
}
