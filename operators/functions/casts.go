package functions

import (
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

func init() {
	x := []string{"x"}
	builtin(
		withNulls(fn("to_int", x, "x as an int: floats truncate toward zero, strings parse as Python's int()",
			sig(mapFixed(tInt, func(v int64) int64 { return v }), kInt, kInt),
			sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
				v := math.Trunc(f64(a[0], i))
				if math.IsNaN(v) || v >= 9.223372036854775807e18 || v < -9.223372036854775808e18 {
					b.AppendNull()
					return
				}
				putInt(b, int64(v))
			}), kFloat, kInt),
			sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
				v, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimSpace(str(a[0], i)), "_", ""), 10, 64)
				if err != nil {
					b.AppendNull()
					return
				}
				putInt(b, v)
			}), kStr, kInt),
			sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
				if boolean(a[0], i) {
					putInt(b, 1)
				} else {
					putInt(b, 0)
				}
			}), kBool, kInt)), propagates+"; null when the value does not convert"),
		withNulls(fn("to_float", x, "x as a float: strings parse as Python's float()",
			sig(mapFixed(tFloat, func(v float64) float64 { return v }), kFloat, kFloat),
			sig(rows(tFloat, func(b array.Builder, a []arrow.Array, i int) {
				v, err := strconv.ParseFloat(strings.TrimSpace(str(a[0], i)), 64)
				if err != nil {
					b.AppendNull()
					return
				}
				putFloat(b, v)
			}), kStr, kFloat)), propagates+"; null when the value does not convert"),
		fn("to_string", x, "x as a string, as Python's str() for int, float and str; true/false; ISO 8601 for datetimes and dates",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) { putStr(b, strconv.FormatInt(i64(a[0], i), 10)) }), kInt, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) { putStr(b, pyFloat(f64(a[0], i))) }), kFloat, kStr),
			sig(strToStr(func(s string) string { return s }), kStr, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) { putStr(b, strconv.FormatBool(boolean(a[0], i))) }), kBool, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, utc(a[0].(*array.Timestamp).Value(i)).Format("2006-01-02T15:04:05.999999Z07:00"))
			}), kTs, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, a[0].(*array.Date32).Value(i).FormattedString())
			}), kDate, kStr)),
	)
}

// pyFloat formats like Python's repr of a float: shortest round-trip digits,
// a ".0" on integral values, exponents beyond 1e16.
func pyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	if a := math.Abs(v); a != 0 && (a >= 1e16 || a < 1e-4) {
		s := strconv.FormatFloat(v, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		if len(exp) == 3 && exp[1] == '0' {
			exp = exp[:1] + exp[2:]
		}
		return mant + "e" + exp
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}
