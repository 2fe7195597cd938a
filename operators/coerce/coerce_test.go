package coerce

// Benchmarks (bench_test.go), 10,000 rows, on a shared and busy machine
// (load average 9-12 on nproc = 2, AMD EPYC, go1.26.8 linux/amd64):
//
//	go test -run XXX -bench . -benchmem -count 25 -benchtime 500x ./operators/coerce
//
// min and median of the 25 runs, ns/op:
//
//	string -> int64       coerce  247,392  325,901   82,192 B/op   5 allocs/op
//	                      compute 247,726  269,065   83,816 B/op  33 allocs/op
//	large_string -> int64 coerce  258,860  296,182   82,192 B/op   5 allocs/op
//	                      compute 253,763  298,259   83,817 B/op  33 allocs/op
//	string_view -> int64  coerce  267,635  536,060   82,192 B/op   5 allocs/op
//	                      compute  (no kernel)
//	int32 -> int64        coerce   41,523   64,662   83,864 B/op  34 allocs/op
//	                      compute  42,220   60,398   83,816 B/op  33 allocs/op
//
// The hand-written string parse (which also trims and names the bad row)
// costs what compute's does, about 25 ns a row; int32 -> int64 is compute's
// cast behind one type switch. An earlier version appending to a builder
// did 270,000-315,000 at best, with 142,016 B/op.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Expected values come from Go's strconv and time, or are written out,
// never from the code under test. Every test checks on a checked allocator
// that nothing is left allocated.

var (
	i64   = arrow.PrimitiveTypes.Int64
	f64   = arrow.PrimitiveTypes.Float64
	str   = arrow.BinaryTypes.String
	tsUS  = arrow.FixedWidthTypes.Timestamp_us
	date  = arrow.FixedWidthTypes.Date32
	boolT = arrow.FixedWidthTypes.Boolean
)

var stringKinds = []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView}

func ts(unit arrow.TimeUnit, zone string) *arrow.TimestampType {
	return &arrow.TimestampType{Unit: unit, TimeZone: zone}
}

// strs builds a string array of kind dt; a nil value is a null. With a
// skip, that many junk rows come first and the result is a slice past
// them, so that offsets are exercised.
func strs(mem memory.Allocator, dt arrow.DataType, skip int, vals ...*string) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for range skip {
		b.AppendValueFromString("junk")
	}
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.AppendValueFromString(*v)
		}
	}
	arr := b.NewArray()
	if skip == 0 {
		return arr
	}
	defer arr.Release()
	return array.NewSlice(arr, int64(skip), int64(arr.Len()))
}

func p(s string) *string { return &s }

// goValues reads an array into Go values: nil for a null, int64 for
// integers and timestamps, int32 for dates, float64, bool, string, []any
// for lists.
func goValues(t *testing.T, arr arrow.Array) []any {
	t.Helper()
	out := make([]any, arr.Len())
	for i := range out {
		if arr.IsNull(i) {
			continue
		}
		switch a := arr.(type) {
		case *array.Int64:
			out[i] = a.Value(i)
		case *array.Float64:
			out[i] = a.Value(i)
		case *array.Boolean:
			out[i] = a.Value(i)
		case *array.String:
			out[i] = a.Value(i)
		case *array.Binary:
			out[i] = string(a.Value(i))
		case *array.Timestamp:
			out[i] = int64(a.Value(i))
		case *array.Date32:
			out[i] = int32(a.Value(i))
		case *array.List:
			s, e := a.ValueOffsets(i)
			elems := array.NewSlice(a.ListValues(), s, e)
			out[i] = goValues(t, elems)
			elems.Release()
		default:
			t.Fatalf("goValues: unexpected %T", arr)
		}
	}
	return out
}

// check converts in to to and compares the values with want; it releases
// in.
func check(t *testing.T, mem memory.Allocator, in arrow.Array, to arrow.DataType, want []any) {
	t.Helper()
	defer in.Release()
	out, err := Array(mem, in, to)
	if err != nil {
		t.Fatalf("%s to %s: %v", in.DataType(), to, err)
	}
	defer out.Release()
	if !arrow.TypeEqual(out.DataType(), to) {
		t.Fatalf("%s to %s: got type %s", in.DataType(), to, out.DataType())
	}
	if got := goValues(t, out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s to %s:\n got %v\nwant %v", in.DataType(), to, got, want)
	}
}

// checkErr converts in to to and wants an error containing every part;
// it releases in.
func checkErr(t *testing.T, mem memory.Allocator, in arrow.Array, to arrow.DataType, parts ...string) {
	t.Helper()
	defer in.Release()
	out, err := Array(mem, in, to)
	if err == nil {
		out.Release()
		t.Fatalf("%s to %s: no error, want one containing %q", in.DataType(), to, parts)
	}
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s to %s: error %q does not contain %q", in.DataType(), to, err, s)
		}
	}
}

func TestStrings(t *testing.T) {
	day := func(y int, m time.Month, d int) any {
		return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	}
	for _, c := range []struct {
		to   arrow.DataType
		in   []string
		want func(s string) any // from strconv or time, on the trimmed text
		bad  string
	}{
		{i64, []string{"42", " -7 ", "9223372036854775807", "-9223372036854775808", "+3", "007"},
			func(s string) any { v, _ := strconv.ParseInt(s, 10, 64); return v }, "12a"},
		{f64, []string{"1.5", " -2e3 ", "0", "42", "1e308", ".5"},
			func(s string) any { v, _ := strconv.ParseFloat(s, 64); return v }, "1,5"},
		{boolT, []string{"true", " false ", "1", "0", "T", "F", "TRUE", "False"},
			func(s string) any { v, _ := strconv.ParseBool(s); return v }, "yes"},
		{str, []string{"a", " b ", "", "héllo"},
			func(s string) any { return s }, ""},
		{date, []string{"2026-01-31", " 1969-12-31 ", "1970-01-01", "0001-01-01", "9999-12-31"},
			func(s string) any {
				tm, _ := time.Parse(time.DateOnly, s)
				return day(tm.Year(), tm.Month(), tm.Day())
			}, "2026-02-30"},
		{tsUS, []string{"2026-01-02T03:04:05.123456Z", "2026-01-02 03:04:05+02:00", " 2026-01-02 ", "1969-12-31T23:59:59.9999999Z"},
			nil, "yesterday"},
		{ts(arrow.Nanosecond, "America/New_York"), []string{"2026-01-02T03:04:05.123456789Z", "1677-09-21T00:12:43.145224192Z"},
			nil, "1600-01-01"},
		{ts(arrow.Second, ""), []string{"2026-01-02T03:04:05.9Z", "1969-12-31T23:59:59.5Z"},
			nil, "not a time"},
	} {
		for _, kind := range stringKinds {
			t.Run(fmt.Sprintf("%s to %s", kind, c.to), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				vals := []*string{nil}
				want := []any{nil}
				for _, s := range c.in {
					vals = append(vals, p(s), nil)
					var w any
					if c.want != nil {
						w = c.want(strings.TrimSpace(s))
					} else {
						w = timestampRef(t, strings.TrimSpace(s), c.to.(*arrow.TimestampType).Unit)
					}
					want = append(want, w, nil)
				}
				if c.to.ID() == arrow.STRING {
					// A copy, spaces kept.
					for i, v := range vals {
						if v != nil {
							want[i] = *v
						}
					}
				}
				check(t, mem, strs(mem, kind, 0, vals...), c.to, want)
				check(t, mem, strs(mem, kind, 3, vals...), c.to, want)
				if c.bad != "" {
					checkErr(t, mem, strs(mem, kind, 2, p("  "+c.in[0]), nil, p(c.bad)), c.to, "row 2", strconv.Quote(c.bad))
				}
			})
		}
	}
}

// timestampRef is the instant a literal names, written in a layout chosen
// here from its shape, as a count of unit (floored).
func timestampRef(t *testing.T, s string, unit arrow.TimeUnit) int64 {
	t.Helper()
	layout := time.RFC3339Nano
	switch {
	case len(s) == 10:
		layout = time.DateOnly
	case s[10] == ' ':
		layout = "2006-01-02 15:04:05Z07:00"
	}
	tm, err := time.Parse(layout, s)
	if err != nil {
		t.Fatal(err)
	}
	return unitsOf(tm, unit)
}

// unitsOf counts the unit in t since the epoch, floored, via time's own
// Unix methods (which floor).
func unitsOf(tm time.Time, unit arrow.TimeUnit) int64 {
	switch unit {
	case arrow.Second:
		return tm.Unix()
	case arrow.Millisecond:
		return tm.UnixMilli()
	case arrow.Microsecond:
		return tm.UnixMicro()
	}
	return tm.UnixNano()
}

func TestStringErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, kind := range stringKinds {
		checkErr(t, mem, strs(mem, kind, 1, p("1"), p("9223372036854775808")), i64, "row 1", `"9223372036854775808"`, "out of the range")
		checkErr(t, mem, strs(mem, kind, 0, p("1e999")), f64, "row 0", "out of the range")
		checkErr(t, mem, strs(mem, kind, 0, p("0x10")), i64, `"0x10"`, "base-10")
		checkErr(t, mem, strs(mem, kind, 0, p("2300-01-01")), ts(arrow.Nanosecond, ""), "out of the range")
		checkErr(t, mem, strs(mem, kind, 0, p("2026-01-01T00:00:00Z")), date, "not a date")
	}
}

// intArray builds an integer array of type dt from decimal text (a nil
// is a null), sliced past skip junk rows.
func intArray(t *testing.T, mem memory.Allocator, dt arrow.DataType, skip int, vals []*string) arrow.Array {
	t.Helper()
	parts := make([]string, 0, skip+len(vals))
	for range skip {
		parts = append(parts, "1")
	}
	for _, v := range vals {
		if v == nil {
			parts = append(parts, "null")
		} else {
			parts = append(parts, *v)
		}
	}
	arr, _, err := array.FromJSON(mem, dt, strings.NewReader("["+strings.Join(parts, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	if skip == 0 {
		return arr
	}
	defer arr.Release()
	return array.NewSlice(arr, int64(skip), int64(arr.Len()))
}

func TestIntegers(t *testing.T) {
	for _, c := range []struct {
		dt       arrow.DataType
		min, max string
	}{
		{arrow.PrimitiveTypes.Int8, strconv.Itoa(math.MinInt8), strconv.Itoa(math.MaxInt8)},
		{arrow.PrimitiveTypes.Int16, strconv.Itoa(math.MinInt16), strconv.Itoa(math.MaxInt16)},
		{arrow.PrimitiveTypes.Int32, strconv.Itoa(math.MinInt32), strconv.Itoa(math.MaxInt32)},
		{arrow.PrimitiveTypes.Int64, strconv.Itoa(math.MinInt64), strconv.Itoa(math.MaxInt64)},
		{arrow.PrimitiveTypes.Uint8, "0", strconv.Itoa(math.MaxUint8)},
		{arrow.PrimitiveTypes.Uint16, "0", strconv.Itoa(math.MaxUint16)},
		{arrow.PrimitiveTypes.Uint32, "0", strconv.Itoa(math.MaxUint32)},
		{arrow.PrimitiveTypes.Uint64, "0", strconv.FormatUint(math.MaxUint64, 10)},
	} {
		t.Run(c.dt.String(), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			vals := []*string{p(c.min), nil, p("0"), p("7"), p(c.max)}
			if c.min != "0" {
				vals = append(vals, p("-7"))
			}
			var asInt, asText, asFloat []any
			intOK, floatOK := true, true
			for _, v := range vals {
				if v == nil {
					asInt, asText, asFloat = append(asInt, nil), append(asText, nil), append(asFloat, nil)
					continue
				}
				n, err := strconv.ParseInt(*v, 10, 64)
				intOK = intOK && err == nil
				floatOK = floatOK && err == nil && n <= 1<<53 && n >= -1<<53
				f, _ := strconv.ParseFloat(*v, 64)
				asInt, asText, asFloat = append(asInt, n), append(asText, *v), append(asFloat, f)
			}
			for skip := range 2 {
				check(t, mem, intArray(t, mem, c.dt, skip, vals), str, asText)
				if intOK {
					check(t, mem, intArray(t, mem, c.dt, skip, vals), i64, asInt)
				} else {
					checkErr(t, mem, intArray(t, mem, c.dt, skip, vals), i64, c.max)
				}
				if floatOK {
					check(t, mem, intArray(t, mem, c.dt, skip, vals), f64, asFloat)
				} else {
					// Beyond 2^53 a float64 no longer holds every integer;
					// compute's safe cast refuses rather than round.
					checkErr(t, mem, intArray(t, mem, c.dt, skip, vals), f64, "not in range")
				}
			}
			small := []*string{p("-1"), nil, p("100")}
			if c.min == "0" {
				small[0] = p("1")
			}
			check(t, mem, intArray(t, mem, c.dt, 0, small), f64, []any{float64(atoi(*small[0])), nil, 100.0})
		})
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestFloats(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := []float32{1.5, -0.25, 0, 65504, float32(math.Inf(-1))}
	want := make([]any, 0, 2*len(in))
	h := array.NewFloat16Builder(mem)
	f := array.NewFloat32Builder(mem)
	for _, v := range in {
		h.Append(float16.New(v))
		h.AppendNull()
		f.Append(v)
		f.AppendNull()
		want = append(want, float64(v), nil)
	}
	f.Append(0.1)
	want32 := append(append([]any(nil), want...), float64(float32(0.1)))
	hs, fs := h.NewArray(), f.NewArray()
	h.Release()
	f.Release()
	hs.Retain()
	fs.Retain()
	check(t, mem, hs, f64, want)
	check(t, mem, fs, f64, want32)
	check(t, mem, sliced(hs, 3, 7), f64, want[3:7])
	check(t, mem, sliced(fs, 3, 11), f64, want32[3:11])
}

func TestBinaries(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dt := range []arrow.DataType{arrow.BinaryTypes.LargeBinary, arrow.BinaryTypes.BinaryView} {
		b := array.NewBuilder(mem, dt).(array.BinaryLikeBuilder)
		for _, v := range []string{"junk", "a", "", "\x00\xff"} {
			b.Append([]byte(v))
			b.AppendNull()
		}
		in := b.NewArray()
		b.Release()
		check(t, mem, sliced(in, 2, 8), arrow.BinaryTypes.Binary, []any{"a", nil, "", nil, "\x00\xff", nil})
	}
}

func TestTimestamps(t *testing.T) {
	instants := []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1001, time.UTC),
		time.Date(1900, 6, 1, 12, 0, 0, 0, time.UTC),
		time.Unix(0, -1001),
	}
	epoch := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	units := []arrow.TimeUnit{arrow.Second, arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond}
	for _, from := range units {
		for _, zone := range []string{"", "UTC", "America/New_York", "Asia/Tokyo"} {
			src := ts(from, zone)
			t.Run(src.String(), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				build := func(skip int) arrow.Array {
					b := array.NewTimestampBuilder(mem, src)
					defer b.Release()
					for range skip {
						b.Append(99)
					}
					for _, tm := range instants {
						b.Append(arrow.Timestamp(unitsOf(tm, from)))
						b.AppendNull()
					}
					arr := b.NewArray()
					defer arr.Release()
					return array.NewSlice(arr, int64(skip), int64(arr.Len()))
				}
				targets := []arrow.DataType{tsUS, date}
				for _, u := range units {
					targets = append(targets, ts(u, ""), ts(u, "Europe/Paris"))
				}
				for _, to := range targets {
					var want []any
					for _, tm := range instants {
						// The source holds the instant floored to its unit.
						held := timeOf(unitsOf(tm, from), from)
						var w any
						if to.ID() == arrow.DATE32 {
							y, m, d := held.UTC().Date()
							w = int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(epoch).Hours() / 24)
						} else {
							w = unitsOf(held, to.(*arrow.TimestampType).Unit)
						}
						want = append(want, w, nil)
					}
					for skip := range 2 {
						check(t, mem, build(skip), to, want)
					}
				}
			})
		}
	}
}

// timeOf is the instant v units after the epoch.
func timeOf(v int64, unit arrow.TimeUnit) time.Time {
	switch unit {
	case arrow.Second:
		return time.Unix(v, 0)
	case arrow.Millisecond:
		return time.UnixMilli(v)
	case arrow.Microsecond:
		return time.UnixMicro(v)
	}
	return time.Unix(0, v)
}

func TestTimestampOverflow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		from arrow.DataType
		v    int64
		to   arrow.DataType
	}{
		{ts(arrow.Second, "America/New_York"), math.MaxInt64 / 1_000_000 * 2, tsUS},
		{ts(arrow.Millisecond, ""), math.MinInt64 / 1_000 * 2, tsUS},
		{ts(arrow.Microsecond, "UTC"), math.MaxInt64 / 2, ts(arrow.Nanosecond, "UTC")},
		{ts(arrow.Second, ""), math.MaxInt64 / 2, date},
		{ts(arrow.Second, ""), math.MinInt64 / 2, date},
	} {
		b := array.NewTimestampBuilder(mem, c.from.(*arrow.TimestampType))
		b.Append(arrow.Timestamp(c.v))
		in := b.NewArray()
		b.Release()
		checkErr(t, mem, in, c.to)
	}
}

func TestDates(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	days := []time.Time{
		time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	d32 := array.NewDate32Builder(mem)
	d64 := array.NewDate64Builder(mem)
	var micros, nanos, dayNums []any
	for _, d := range days {
		n := int32(d.Unix() / 86400) // midnights: the division is exact
		d32.Append(arrow.Date32(n))
		d32.AppendNull()
		d64.Append(arrow.Date64(d.UnixMilli()))
		d64.AppendNull()
		micros = append(micros, d.UnixMicro(), nil)
		dayNums = append(dayNums, n, nil)
		nanos = append(nanos, d.UnixNano(), nil)
	}
	a32, a64 := d32.NewArray(), d64.NewArray()
	d32.Release()
	d64.Release()
	defer a32.Release()
	defer a64.Release()
	for _, a := range []arrow.Array{a32, a64} {
		a.Retain()
		check(t, mem, a, tsUS, micros)
		a.Retain()
		check(t, mem, a, date, dayNums)
		a.Retain()
		// Year 1 is before 1677, the first year of a ns timestamp.
		checkErr(t, mem, a, ts(arrow.Nanosecond, ""))
		check(t, mem, array.NewSlice(a, 0, 4), ts(arrow.Nanosecond, "UTC"), nanos[:4])
		check(t, mem, array.NewSlice(a, 1, 6), tsUS, micros[1:6])
		check(t, mem, array.NewSlice(a, 2, 6), date, dayNums[2:6])
	}
}

func TestDecimals(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		dt   arrow.DataType
		vals []string
	}{
		{&arrow.Decimal32Type{Precision: 9, Scale: 0}, []string{"12", "-999999999", "0"}},
		{&arrow.Decimal64Type{Precision: 18, Scale: 0}, []string{"12", "-999999999999999999"}},
		{&arrow.Decimal128Type{Precision: 38, Scale: 0}, []string{"12", "-9223372036854775808"}},
		{&arrow.Decimal256Type{Precision: 76, Scale: 0}, []string{"12", "9223372036854775807"}},
		{&arrow.Decimal32Type{Precision: 9, Scale: 2}, []string{"12.25", "-0.01", "1234567.89"}},
		{&arrow.Decimal64Type{Precision: 18, Scale: 4}, []string{"12.25", "-0.0001", "3.3"}},
		{&arrow.Decimal128Type{Precision: 38, Scale: 3}, []string{"12.25", "-0.001"}},
		{&arrow.Decimal256Type{Precision: 40, Scale: 2}, []string{"12.25", "-0.01"}},
		{&arrow.Decimal64Type{Precision: 18, Scale: -2}, []string{"1200", "-100"}},
		{&arrow.Decimal128Type{Precision: 38, Scale: -2}, []string{"1200", "-100"}},
	} {
		vals := []*string{nil}
		var ints, floats []any = []any{nil}, []any{nil}
		for _, v := range c.vals {
			vals = append(vals, p(`"`+v+`"`), nil)
			n, _ := strconv.ParseInt(v, 10, 64)
			f, _ := strconv.ParseFloat(v, 64)
			ints, floats = append(ints, n, nil), append(floats, f, nil)
		}
		for skip := range 2 {
			wide := c.dt.ID() == arrow.DECIMAL128 || c.dt.ID() == arrow.DECIMAL256
			switch scale := c.dt.(arrow.DecimalType).GetScale(); {
			case scale == 0 || wide && scale < 0:
				check(t, mem, intArray(t, mem, c.dt, skip, vals), i64, ints)
			case wide: // these values have fractions
				checkErr(t, mem, intArray(t, mem, c.dt, skip, vals), i64, "data loss")
			default:
				checkErr(t, mem, intArray(t, mem, c.dt, skip, vals), i64, "no conversion")
			}
			check(t, mem, intArray(t, mem, c.dt, skip, vals), f64, floats)
		}
	}
	checkErr(t, mem, intArray(t, mem, &arrow.Decimal128Type{Precision: 38, Scale: 0}, 0, []*string{p(`"9223372036854775808"`)}), i64)
}

func TestDictionaries(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		dict arrow.DataType
		vals []*string
		to   arrow.DataType
		want []any
	}{
		{str, []*string{p(" 10"), p("-3"), nil}, i64, []any{int64(-3), nil, int64(10), int64(10), nil, nil}},
		{arrow.BinaryTypes.LargeString, []*string{p("a"), p("b"), p("c")}, str, []any{"b", nil, "a", "a", nil, "c"}},
		{arrow.PrimitiveTypes.Int32, []*string{p("7"), p("-1"), nil}, str, []any{"-1", nil, "7", "7", nil, nil}},
		{arrow.PrimitiveTypes.Uint8, []*string{p("7"), p("255"), p("0")}, i64, []any{int64(255), nil, int64(7), int64(7), nil, int64(0)}},
		{arrow.PrimitiveTypes.Int32, []*string{p("7"), p("-1"), p("0")}, f64, []any{-1.0, nil, 7.0, 7.0, nil, 0.0}},
		{arrow.PrimitiveTypes.Int32, []*string{p("7"), p("-1"), p("0")}, boolT, nil},
	} {
		var dict arrow.Array
		if isString(c.dict) {
			dict = strs(mem, c.dict, 0, c.vals...)
		} else {
			dict = intArray(t, mem, c.dict, 0, c.vals)
		}
		// Rows: junk, then 1, null, 0, 0, null, 2; the slice skips the junk.
		idx := intArray(t, mem, arrow.PrimitiveTypes.Int16, 0, []*string{p("2"), p("1"), nil, p("0"), p("0"), nil, p("2")})
		dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: c.dict}
		whole := array.NewDictionaryArray(dt, idx, dict)
		idx.Release()
		dict.Release()
		in := array.NewSlice(whole, 1, 7)
		whole.Release()
		if c.want == nil {
			checkErr(t, mem, in, c.to, "no conversion")
			continue
		}
		check(t, mem, in, c.to, c.want)
	}
}
