package functions

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Kernels with CPython's exact semantics, for the Python resolvers that
// features/pysym compiles: where Python's builtins differ from the SQL-ish
// functions above (full Unicode case mapping, Python's whitespace, format
// specs, int arithmetic that reports overflow instead of failing).

func init() {
	s := []string{"s"}
	try := func(name, sym string, op byte) *Func {
		return withNulls(fn(name, []string{"a", "b"}, "a "+sym+" b; on ints, null where the result overflows 64 bits (where a Python int would grow)",
			sig(zipFixedOK(tInt, func(a, b int64) (int64, bool) {
				if overflows(op, a, b) {
					return 0, false
				}
				switch op {
				case '+':
					return a + b, true
				case '-':
					return a - b, true
				}
				return a * b, true
			}), kInt, kInt, kInt),
			sig(arithFloat(op), kFloat, kFloat, kFloat)), propagates+"; null on int overflow")
	}
	builtin(
		try("try_add", "+", '+'), try("try_subtract", "-", '-'), try("try_multiply", "*", '*'),
		fn("py_lower", s, "Python's str.lower(): full Unicode case mapping (İ → i̇, final Σ → ς)",
			sig(caseKernel(func() cases.Caser { return cases.Lower(language.Und) }), kStr, kStr)),
		fn("py_upper", s, "Python's str.upper(): full Unicode case mapping (ß → SS, ﬁ → FI)",
			sig(caseKernel(func() cases.Caser { return cases.Upper(language.Und) }), kStr, kStr)),
		fn("py_strip", s, "Python's str.strip(): without leading and trailing whitespace (str.isspace, \\x1c-\\x1f included)",
			sig(strToStr(func(v string) string { return strings.TrimFunc(v, pySpace) }), kStr, kStr)),
		fn("py_lstrip", s, "Python's str.lstrip()", sig(strToStr(func(v string) string { return strings.TrimLeftFunc(v, pySpace) }), kStr, kStr)),
		fn("py_rstrip", s, "Python's str.rstrip()", sig(strToStr(func(v string) string { return strings.TrimRightFunc(v, pySpace) }), kStr, kStr)),
		fn("py_slice", []string{"s", "lo", "hi"}, "Python's s[lo:hi] over characters: negative bounds count from the end, bounds beyond clamp",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, pySlice(str(a[0], i), i64(a[1], i), i64(a[2], i)))
			}), kStr, kInt, kInt, kStr)),
		fn("py_format_int", []string{"x", "spec"}, "Python's format(x, spec) of an int: [[fill]align][sign][0][width][,|_][.precision][d|x|X|o|b|e|E|f|F|g|G|%]",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				formatRow(b, str(a[1], i), func(sp *fmtSpec) (string, error) { return sp.formatInt(i64(a[0], i)) })
			}), kInt, kStr, kStr)),
		fn("py_format_float", []string{"x", "spec"}, "Python's format(x, spec) of a float: [[fill]align][sign][0][width][,|_][.precision][e|E|f|F|g|G|%]",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				formatRow(b, str(a[1], i), func(sp *fmtSpec) (string, error) { return sp.formatFloat(f64(a[0], i)) })
			}), kFloat, kStr, kStr)),
		fn("py_format_str", []string{"x", "spec"}, "Python's format(x, spec) of a str: [[fill]align][width][.precision][s]",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				formatRow(b, str(a[1], i), func(sp *fmtSpec) (string, error) { return sp.formatStr(str(a[0], i)) })
			}), kStr, kStr, kStr)),
	)
}

// pySlice is s[lo:hi] of a str.
func pySlice(s string, lo, hi int64) string {
	r := []rune(s)
	n := int64(len(r))
	norm := func(x int64) int64 {
		if x < 0 {
			x += n
		}
		return min(max(x, 0), n)
	}
	lo, hi = norm(lo), norm(hi)
	if hi <= lo {
		return ""
	}
	return string(r[lo:hi])
}

// pySpace is str.isspace for one character.
func pySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// caseKernel maps strings with a Caser, one per batch (Casers are
// stateful).
func caseKernel(mk func() cases.Caser) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		c := mk()
		return strToStr(func(v string) string { return c.String(v) })(ctx, args)
	}
}

func formatRow(b array.Builder, spec string, f func(*fmtSpec) (string, error)) {
	sp, err := parseFormatSpec(spec)
	if err == nil {
		var out string
		if out, err = f(sp); err == nil {
			putStr(b, out)
			return
		}
	}
	b.AppendNull()
}

// fmtSpec is a parsed Python format spec.
type fmtSpec struct {
	fill      rune
	align     byte // 0, '<', '>', '^', '='
	sign      byte // 0, '+', '-', ' '
	zero      bool
	width     int
	group     byte // 0, ',', '_'
	precision int  // -1: none
	typ       byte // 0 or the type letter
}

var specRE = regexp.MustCompile(`^(?:(.)?([<>=^]))?([-+ ])?(0)?([0-9]+)?([,_])?(?:\.([0-9]+))?([bcdeEfFgGnosxX%])?$`)

// parseFormatSpec reads a format spec of Python's mini-language (the
// subset fletch formats: no '#', 'z', 'n' or 'c').
func parseFormatSpec(spec string) (*fmtSpec, error) {
	m := specRE.FindStringSubmatch(spec)
	if m == nil || strings.ContainsAny(m[8], "cn") {
		return nil, fmt.Errorf("unsupported format spec %q", spec)
	}
	sp := &fmtSpec{fill: ' ', precision: -1}
	if m[1] != "" {
		sp.fill = []rune(m[1])[0]
	}
	if m[2] != "" {
		sp.align = m[2][0]
	}
	if m[3] != "" {
		sp.sign = m[3][0]
	}
	if m[4] != "" {
		sp.zero = true
		if m[2] == "" {
			sp.fill, sp.align = '0', '='
		}
	}
	if m[5] != "" {
		sp.width, _ = strconv.Atoi(m[5])
	}
	if m[6] != "" {
		sp.group = m[6][0]
	}
	if m[7] != "" {
		sp.precision, _ = strconv.Atoi(m[7])
	}
	if m[8] != "" {
		sp.typ = m[8][0]
	}
	return sp, nil
}

func (sp *fmtSpec) formatStr(v string) (string, error) {
	if sp.typ != 0 && sp.typ != 's' || sp.sign != 0 || sp.group != 0 || sp.align == '=' {
		return "", fmt.Errorf("format spec not for a str")
	}
	if sp.precision >= 0 {
		if r := []rune(v); len(r) > sp.precision {
			v = string(r[:sp.precision])
		}
	}
	return sp.pad("", v, '<'), nil
}

func (sp *fmtSpec) formatInt(v int64) (string, error) {
	switch sp.typ {
	case 'e', 'E', 'f', 'F', 'g', 'G', '%':
		return sp.formatFloat(float64(v))
	case 's':
		return "", fmt.Errorf("format spec 's' for an int")
	}
	if sp.precision >= 0 {
		return "", fmt.Errorf("precision not allowed in integer format specifier")
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	var digits string
	switch sp.typ {
	case 'x':
		digits = strconv.FormatUint(u, 16)
	case 'X':
		digits = strings.ToUpper(strconv.FormatUint(u, 16))
	case 'o':
		digits = strconv.FormatUint(u, 8)
	case 'b':
		digits = strconv.FormatUint(u, 2)
	default:
		digits = strconv.FormatUint(u, 10)
	}
	if sp.group != 0 {
		every := 3
		if sp.typ == 'x' || sp.typ == 'X' || sp.typ == 'o' || sp.typ == 'b' {
			if sp.group == ',' {
				return "", fmt.Errorf("cannot specify ',' with '%c'", sp.typ)
			}
			every = 4
		}
		digits = group(digits, sp.group, every)
	}
	return sp.pad(sp.signOf(neg), digits, '>'), nil
}

func (sp *fmtSpec) formatFloat(v float64) (string, error) {
	neg := math.Signbit(v) && !math.IsNaN(v)
	a := math.Abs(v)
	prec := sp.precision
	var body string
	switch {
	case math.IsInf(a, 0):
		body = "inf"
	case math.IsNaN(a):
		body = "nan"
	}
	switch sp.typ {
	case 'd', 'x', 'X', 'o', 'b', 's':
		return "", fmt.Errorf("format spec '%c' for a float", sp.typ)
	case 'f', 'F', '%':
		if prec < 0 {
			prec = 6
		}
		if body == "" {
			x := a
			if sp.typ == '%' {
				x *= 100
			}
			body = strconv.FormatFloat(x, 'f', prec, 64)
		}
		if sp.typ == '%' {
			body += "%"
		}
	case 'e', 'E':
		if prec < 0 {
			prec = 6
		}
		if body == "" {
			body = strconv.FormatFloat(a, 'e', prec, 64)
		}
	case 'g', 'G':
		if prec < 0 {
			prec = 6
		}
		if prec == 0 {
			prec = 1
		}
		if body == "" {
			body = strconv.FormatFloat(a, 'g', prec, 64)
		}
	default: // none: repr, or 'g'-like with at least one decimal
		if body == "" {
			if prec < 0 {
				body = PyFloat(a)
			} else {
				if prec == 0 {
					prec = 1
				}
				body = strconv.FormatFloat(a, 'g', prec, 64)
				if !strings.ContainsAny(body, ".e") {
					body += ".0"
				}
			}
		}
	}
	if sp.typ == 'E' || sp.typ == 'F' || sp.typ == 'G' {
		body = strings.ToUpper(body)
	}
	if sp.group != 0 && body != "inf" && body != "nan" {
		intPart, rest := body, ""
		if i := strings.IndexAny(body, ".e%"); i >= 0 {
			intPart, rest = body[:i], body[i:]
		}
		body = group(intPart, sp.group, 3) + rest
	}
	return sp.pad(sp.signOf(neg), body, '>'), nil
}

func (sp *fmtSpec) signOf(neg bool) string {
	switch {
	case neg:
		return "-"
	case sp.sign == '+':
		return "+"
	case sp.sign == ' ':
		return " "
	}
	return ""
}

// pad aligns sign+body in the spec's width; '=' pads between sign and
// body (with grouping applied to the padding zeros as Python does not).
func (sp *fmtSpec) pad(sign, body string, def byte) string {
	n := len([]rune(sign)) + len([]rune(body))
	if n >= sp.width {
		return sign + body
	}
	fill := strings.Repeat(string(sp.fill), sp.width-n)
	align := sp.align
	if align == 0 {
		align = def
	}
	switch align {
	case '<':
		return sign + body + fill
	case '^':
		k := (sp.width - n) / 2
		left := strings.Repeat(string(sp.fill), k)
		right := strings.Repeat(string(sp.fill), sp.width-n-k)
		return left + sign + body + right
	case '=':
		return sign + fill + body
	}
	return fill + sign + body
}

// group inserts sep every `every` digits from the right.
func group(digits string, sep byte, every int) string {
	if len(digits) <= every {
		return digits
	}
	var b strings.Builder
	first := len(digits) % every
	if first > 0 {
		b.WriteString(digits[:first])
	}
	for i := first; i < len(digits); i += every {
		if b.Len() > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(digits[i : i+every])
	}
	return b.String()
}
