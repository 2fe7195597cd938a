package functions

import (
	"errors"
	"fmt"
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
				v, err := parsePyInt(str(a[0], i))
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
		withNulls(fn("to_float", x, "x as a float: ints round to the nearest float (as Python's float(); no error beyond 2**53), strings parse as Python's float()",
			sig(mapFixed(tFloat, func(v float64) float64 { return v }), kFloat, kFloat),
			sig(mapFixed(tFloat, func(v int64) float64 { return float64(v) }), kInt, kFloat),
			sig(rows(tFloat, func(b array.Builder, a []arrow.Array, i int) {
				v, err := parsePyFloat(str(a[0], i))
				if err != nil {
					b.AppendNull()
					return
				}
				putFloat(b, v)
			}), kStr, kFloat)), propagates+"; null when the value does not convert"),
		fn("to_string", x, "x as a string, as Python's str() for int, float and str; true/false; ISO 8601 for datetimes and dates",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) { putStr(b, strconv.FormatInt(i64(a[0], i), 10)) }), kInt, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) { putStr(b, PyFloat(f64(a[0], i))) }), kFloat, kStr),
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

// PyFloat formats like Python's repr of a float: the shortest digits that
// round-trip, fixed notation for decimal exponents in [-4, 16), otherwise
// scientific with a two-digit exponent at least (1e-05, 1e+16).
func PyFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	sci := strconv.FormatFloat(v, 'e', -1, 64)
	mant, exp, _ := strings.Cut(sci, "e")
	x, _ := strconv.Atoi(exp)
	if x >= -4 && x < 16 {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	sign := "+"
	if x < 0 {
		sign, x = "-", -x
	}
	return fmt.Sprintf("%se%s%02d", mant, sign, x)
}

// parsePyFloat reads a string as Python's float() does: spaces around, a
// sign, decimal digits with single underscores between them, or
// inf/infinity/nan in any case.
func parsePyFloat(s string) (float64, error) {
	s = strings.TrimFunc(s, pySpace)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" {
		return 0, strconv.ErrSyntax
	}
	neg := s[0] == '-'
	switch strings.ToLower(body) {
	case "inf", "infinity":
		return math.Copysign(math.Inf(1), map[bool]float64{true: -1, false: 1}[neg]), nil
	case "nan":
		return math.NaN(), nil
	}
	for i, r := range body {
		ok := r >= '0' && r <= '9' || r == '.' || r == 'e' || r == 'E' || r == '+' || r == '-'
		if r == '_' {
			ok = i > 0 && i < len(body)-1 && isDigit(body[i-1]) && isDigit(body[i+1])
		}
		if !ok {
			return 0, strconv.ErrSyntax
		}
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && errors.Is(err, strconv.ErrRange) {
		return v, nil // Python rounds to ±inf or 0 as well
	}
	return v, err
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// parsePyInt reads a string as Python's int() does in base 10: spaces
// around, a sign, digits with single underscores between them.
func parsePyInt(s string) (int64, error) {
	s = strings.TrimFunc(s, pySpace)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" || body[0] == '_' || body[len(body)-1] == '_' || strings.Contains(body, "__") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
}
