package coerce

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var (
	dec0     = &arrow.Decimal128Type{Precision: 38, Scale: 0}
	dec2     = &arrow.Decimal128Type{Precision: 10, Scale: 2}
	dictS    = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: str}
	dictI    = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.PrimitiveTypes.Int16}
	allTypes = []arrow.DataType{
		arrow.Null, boolT,
		arrow.PrimitiveTypes.Int8, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Int32, i64,
		arrow.PrimitiveTypes.Uint8, arrow.PrimitiveTypes.Uint32, arrow.PrimitiveTypes.Uint64,
		arrow.FixedWidthTypes.Float16, arrow.PrimitiveTypes.Float32, f64,
		&arrow.Decimal32Type{Precision: 9, Scale: 0}, &arrow.Decimal64Type{Precision: 18, Scale: 3}, dec0, dec2,
		&arrow.Decimal256Type{Precision: 40, Scale: 0},
		str, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView,
		arrow.BinaryTypes.Binary, arrow.BinaryTypes.LargeBinary, arrow.BinaryTypes.BinaryView,
		date, arrow.FixedWidthTypes.Date64, arrow.FixedWidthTypes.Time32s,
		ts(arrow.Second, ""), ts(arrow.Millisecond, "America/New_York"), tsUS, ts(arrow.Nanosecond, "UTC"),
		arrow.ListOf(arrow.PrimitiveTypes.Int32), arrow.ListOf(i64), arrow.ListOf(str), arrow.LargeListOf(str),
		arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int8), arrow.ListViewOf(i64), arrow.ListOf(arrow.ListOf(boolT)),
		dictS, dictI,
		arrow.StructOf(arrow.Field{Name: "a", Type: i64}),
	}
)

// TestAgreement converts a column of nulls of every type to every type:
// Array succeeds exactly where Convertible says, with the type asked for.
func TestAgreement(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, from := range allTypes {
		in := array.MakeArrayOfNull(mem, from, 3)
		for _, to := range allTypes {
			ok := Convertible(from, to)
			out, err := Array(mem, in, to)
			if ok != (err == nil) {
				t.Errorf("%s to %s: Convertible says %v, Array says %v", from, to, ok, err)
			}
			if err != nil {
				continue
			}
			if !arrow.TypeEqual(out.DataType(), to) || out.Len() != 3 || out.NullN() != 3 {
				t.Errorf("%s to %s: got %s of %d rows, %d null", from, to, out.DataType(), out.Len(), out.NullN())
			}
			out.Release()
		}
		in.Release()
	}
}

func TestConvertible(t *testing.T) {
	for _, c := range []struct {
		from, to arrow.DataType
		want     bool
	}{
		{arrow.BinaryTypes.StringView, i64, true},
		{arrow.BinaryTypes.LargeString, date, true},
		{arrow.PrimitiveTypes.Uint64, str, true},
		{arrow.PrimitiveTypes.Int8, f64, true},
		{dec0, i64, true},
		{dec2, i64, true}, // exact values convert; a fraction is an error of the value
		{&arrow.Decimal64Type{Precision: 10, Scale: 2}, i64, false},
		{dec2, f64, true},
		{dictS, i64, true},
		{dictS, boolT, true},
		{dictI, str, true},
		{dictI, boolT, false},
		{ts(arrow.Nanosecond, "Asia/Tokyo"), date, true},
		{arrow.FixedWidthTypes.Date64, tsUS, true},
		{arrow.ListViewOf(str), arrow.ListOf(tsUS), true},
		{arrow.ListOf(f64), arrow.ListOf(i64), false},
		{arrow.ListOf(i64), i64, false},
		{f64, i64, false},
		{f64, str, false},
		{boolT, i64, false},
		{i64, boolT, false},
		{tsUS, i64, false},
		{date, str, false},
		{arrow.BinaryTypes.Binary, str, false},
		{str, arrow.BinaryTypes.Binary, false},
		{i64, arrow.PrimitiveTypes.Int32, false},
		{arrow.Null, arrow.PrimitiveTypes.Int32, false},
		{arrow.FixedWidthTypes.Time32s, arrow.FixedWidthTypes.Time32s, true},
	} {
		if got := Convertible(c.from, c.to); got != c.want {
			t.Errorf("Convertible(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct {
		dt, want arrow.DataType // want nil: none
	}{
		{arrow.PrimitiveTypes.Int8, i64}, {arrow.PrimitiveTypes.Uint64, i64},
		{arrow.FixedWidthTypes.Float16, f64}, {arrow.PrimitiveTypes.Float32, f64},
		{dec0, i64}, {&arrow.Decimal32Type{Precision: 9, Scale: 0}, i64}, {dec2, f64},
		{&arrow.Decimal64Type{Precision: 18, Scale: -2}, f64},
		{arrow.BinaryTypes.StringView, str}, {arrow.BinaryTypes.LargeString, str},
		{boolT, boolT}, {ts(arrow.Nanosecond, "Asia/Tokyo"), tsUS}, {ts(arrow.Second, ""), tsUS},
		{arrow.FixedWidthTypes.Date64, date}, {date, date}, {arrow.Null, arrow.Null},
		{dictS, str}, {dictI, i64},
		{arrow.LargeListOf(arrow.PrimitiveTypes.Int32), arrow.ListOf(i64)},
		{arrow.FixedSizeListOf(3, arrow.BinaryTypes.StringView), arrow.ListOf(str)},
		{arrow.ListViewOf(arrow.ListOf(ts(arrow.Millisecond, ""))), arrow.ListOf(arrow.ListOf(tsUS))},
		{arrow.BinaryTypes.Binary, nil}, {arrow.FixedWidthTypes.Time32s, nil},
		{arrow.ListOf(arrow.BinaryTypes.Binary), nil},
		{arrow.StructOf(arrow.Field{Name: "a", Type: i64}), nil},
	} {
		got, ok := Canonical(c.dt)
		if ok != (c.want != nil) || ok && !arrow.TypeEqual(got, c.want) {
			t.Errorf("Canonical(%s) = %v, %v; want %v", c.dt, got, ok, c.want)
		}
	}
	for _, dt := range allTypes {
		if to, ok := Canonical(dt); ok && !Convertible(dt, to) {
			t.Errorf("Canonical(%s) = %s, which it does not convert to", dt, to)
		}
	}
}

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"2026-01-02T03:04:05Z", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02T03:04:05.123456789+01:00", utc(2026, 1, 2, 2, 4, 5, 123456789)},
		{"2026-01-02 03:04:05Z", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02 03:04:05.5-07:00", utc(2026, 1, 2, 10, 4, 5, 500000000)},
		{"2026-01-02T03:04:05", utc(2026, 1, 2, 3, 4, 5, 0)},
		{"2026-01-02 03:04:05.25", utc(2026, 1, 2, 3, 4, 5, 250000000)},
		{"2026-01-02 03:04:05-07", utc(2026, 1, 2, 10, 4, 5, 0)},
		{"2026-01-02", utc(2026, 1, 2, 0, 0, 0, 0)},
		{"  1969-12-31T23:59:59.999999Z\t", utc(1969, 12, 31, 23, 59, 59, 999999000)},
	} {
		got, err := ParseTime(c.in)
		if err != nil || !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "2026/01/02", "03:04:05", "2026-01-02T03:04", "2026-13-01", "yesterday"} {
		if got, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", bad, got)
		}
	}
}

// TestSame checks that an array already of the type comes back itself,
// with one more reference: the caller releases both (the checked allocator
// would report a buffer freed early or never).
func TestSame(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, dt := range allTypes {
		in := array.MakeArrayOfNull(mem, dt, 2)
		out, err := Array(mem, in, dt)
		in.Release()
		if err != nil || out != in {
			t.Fatalf("%s: got %v, %v; want the input", dt, out, err)
		}
		out.Release()
	}
}
