package functions

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// strs returns the string views of args (the binder has cast them to utf8).
func strs(args []arrow.Array) []*array.String {
	out := make([]*array.String, len(args))
	for i, a := range args {
		out[i] = a.(*array.String)
	}
	return out
}

// concatKernel joins its arguments with sep; any null argument makes the
// row null.
func concatKernel(sep string) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := batchLen(args)
		ss := strs(args)
		b := array.NewStringBuilder(ctx.Mem)
		defer b.Release()
		b.Reserve(n)
		size := 0
		for _, s := range ss {
			size += len(s.ValueBytes())
		}
		b.ReserveData(size + n*len(sep)*len(ss))
		var row []byte
		for i := 0; i < n; i++ {
			if !rowValid(args, i) {
				b.AppendNull()
				continue
			}
			row = row[:0]
			for j, s := range ss {
				if j > 0 {
					row = append(row, sep...)
				}
				row = append(row, s.Value(i)...)
			}
			b.BinaryBuilder.Append(row)
		}
		return b.NewArray(), nil
	}
}

func init() {
	s := []string{"s"}
	builtin(
		fn("lower", s, "lower case (Unicode simple case mapping)", sig(strToStr(strings.ToLower), kStr, kStr)),
		fn("upper", s, "upper case (Unicode simple case mapping: ß stays ß)", sig(strToStr(strings.ToUpper), kStr, kStr)),
		fn("length", s, "number of characters (code points)",
			sig(strToInt(func(v string) int64 { return int64(utf8.RuneCountInString(v)) }), kStr, kInt)),
		fn("reverse", s, "characters in reverse order", sig(strToStr(func(v string) string {
			r := []rune(v)
			slices.Reverse(r)
			return string(r)
		}), kStr, kStr)),
		fn("trim", s, "without leading and trailing whitespace", sig(strToStr(strings.TrimSpace), kStr, kStr)),
		fn("ltrim", s, "without leading whitespace", sig(strToStr(func(v string) string {
			return strings.TrimLeftFunc(v, unicode.IsSpace)
		}), kStr, kStr)),
		fn("rtrim", s, "without trailing whitespace", sig(strToStr(func(v string) string {
			return strings.TrimRightFunc(v, unicode.IsSpace)
		}), kStr, kStr)),
		fn("substr", []string{"s", "start", "length"}, "characters from 0-based start (negative counts from the end, as Python), length of them or to the end",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, substr(str(a[0], i), i64(a[1], i), -1))
			}), kStr, kInt, kStr),
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, substr(str(a[0], i), i64(a[1], i), max(0, i64(a[2], i))))
			}), kStr, kInt, kInt, kStr)),
		fn("replace", []string{"s", "old", "new"}, "every occurrence of old replaced by new",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, strings.ReplaceAll(str(a[0], i), str(a[1], i), str(a[2], i)))
			}), kStr, kStr, kStr, kStr)),
		fn("starts_with", []string{"s", "prefix"}, "s begins with prefix", sig(strStrToBool(strings.HasPrefix), kStr, kStr, kBool)),
		fn("ends_with", []string{"s", "suffix"}, "s ends with suffix", sig(strStrToBool(strings.HasSuffix), kStr, kStr, kBool)),
		fn("contains", []string{"s", "sub"}, "sub occurs in s", sig(strStrToBool(strings.Contains), kStr, kStr, kBool)),
		fn("strpos", []string{"s", "sub"}, "0-based character index of the first sub in s, -1 when absent (Python's str.find)",
			sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
				v := str(a[0], i)
				k := strings.Index(v, str(a[1], i))
				if k > 0 {
					k = utf8.RuneCountInString(v[:k])
				}
				putInt(b, int64(k))
			}), kStr, kStr, kInt)),
		fn("split", []string{"s", "sep"}, "the parts of s between occurrences of sep", sig(splitKernel, kStr, kStr, kListStr)),
		withNulls(fn("split_part", []string{"s", "sep", "index"}, "the 0-based index-th part of s split on sep (negative counts from the end)",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				parts := strings.Split(str(a[0], i), str(a[1], i))
				k := i64(a[2], i)
				if k < 0 {
					k += int64(len(parts))
				}
				if k < 0 || k >= int64(len(parts)) {
					b.AppendNull()
					return
				}
				putStr(b, parts[k])
			}), kStr, kStr, kInt, kStr)), propagates+"; null when index is out of range"),
		fn("lpad", []string{"s", "length", "fill"}, "s left-padded with fill to length characters (cut to length when longer)",
			sig(padKernel(true), kStr, kInt, kStr, kStr)),
		fn("rpad", []string{"s", "length", "fill"}, "s right-padded with fill to length characters (cut to length when longer)",
			sig(padKernel(false), kStr, kInt, kStr, kStr)),
		fn("repeat", []string{"s", "n"}, "s repeated n times (empty for n ≤ 0)",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				putStr(b, strings.Repeat(str(a[0], i), int(max(0, i64(a[1], i)))))
			}), kStr, kInt, kStr)),
		fn("concat", []string{"values"}, "the arguments joined", variadic(concatKernel(""), kStr, kStr)),
		withNulls(fn("concat_ws", []string{"sep", "values"}, "the non-null values joined with sep",
			variadic(concatWS, kStr, kStr, kStr)), "skips null values; null when sep is null"),
		fn("initcap", s, "first letter of every space-separated word upper case, the rest lower",
			sig(strToStr(initcap), kStr, kStr)),
		fn("regexp_like", []string{"s", "pattern"}, "s contains a match of the RE2 pattern",
			sig(regexKernel(tBool, func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int) {
				putBool(b, re.MatchString(s))
			}), kStr, kStr, kBool)),
		withNulls(fn("regexp_extract", []string{"s", "pattern", "group"}, "the first match of pattern (or its group-th group); empty when none",
			sig(regexKernel(tStr, func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int) {
				extract(b, re, s, 0)
			}), kStr, kStr, kStr),
			sig(regexKernel(tStr, func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int) {
				extract(b, re, s, int(i64(a[2], i)))
			}), kStr, kStr, kInt, kStr)), propagates+"; null for a group the pattern does not have"),
		fn("regexp_replace", []string{"s", "pattern", "replacement"}, "every match of pattern replaced ($1 refers to groups)",
			sig(regexKernel(tStr, func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int) {
				putStr(b, re.ReplaceAllString(s, str(a[2], i)))
			}), kStr, kStr, kStr, kStr)),
		fn("regexp_count", []string{"s", "pattern"}, "number of non-overlapping matches of pattern",
			sig(regexKernel(tInt, func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int) {
				putInt(b, int64(len(re.FindAllStringIndex(s, -1))))
			}), kStr, kStr, kInt)),
		fn("md5", s, "hex MD5 digest of the UTF-8 bytes", sig(strToStr(hexDigest(md5.New)), kStr, kStr)),
		fn("sha1", s, "hex SHA-1 digest", sig(strToStr(hexDigest(sha1.New)), kStr, kStr)),
		fn("sha256", s, "hex SHA-256 digest", sig(strToStr(hexDigest(sha256.New)), kStr, kStr)),
	)
}

// substr slices characters the Python way: s[start:start+length].
func substr(s string, start, length int64) string {
	r := []rune(s)
	n := int64(len(r))
	if start < 0 {
		start = max(0, start+n)
	}
	start = min(start, n)
	end := n
	if length >= 0 {
		end = min(n, start+length)
	}
	return string(r[start:end])
}

func splitKernel(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	n := batchLen(args)
	b := array.NewListBuilder(ctx.Mem, tStr)
	defer b.Release()
	vb := b.ValueBuilder().(*array.StringBuilder)
	for i := 0; i < n; i++ {
		if !rowValid(args, i) {
			b.AppendNull()
			continue
		}
		b.Append(true)
		for _, p := range strings.Split(str(args[0], i), str(args[1], i)) {
			vb.Append(p)
		}
	}
	return b.NewArray(), nil
}

func padKernel(left bool) Kernel {
	return rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
		r, width, fill := []rune(str(a[0], i)), int(max(0, i64(a[1], i))), []rune(str(a[2], i))
		if len(r) >= width || len(fill) == 0 {
			putStr(b, string(r[:min(len(r), width)]))
			return
		}
		pad := make([]rune, 0, width-len(r))
		for len(pad) < width-len(r) {
			pad = append(pad, fill[len(pad)%len(fill)])
		}
		if left {
			putStr(b, string(pad)+string(r))
		} else {
			putStr(b, string(r)+string(pad))
		}
	})
}

func concatWS(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	// Only the separator's nulls propagate: the row loop sees it alone.
	vals := args[1:]
	return rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
		var sb strings.Builder
		first := true
		for _, v := range vals {
			if v.IsNull(i) {
				continue
			}
			if !first {
				sb.WriteString(str(a[0], i))
			}
			first = false
			sb.WriteString(str(v, i))
		}
		putStr(b, sb.String())
	})(ctx, args[:1])
}

func initcap(s string) string {
	r := []rune(strings.ToLower(s))
	for i := range r {
		if i == 0 || r[i-1] == ' ' {
			r[i] = unicode.ToUpper(r[i])
		}
	}
	return string(r)
}

// regexKernel compiles the pattern once per distinct pattern value (it is
// nearly always a constant) and reports a bad pattern as an error.
func regexKernel(out arrow.DataType, f func(b array.Builder, re *regexp.Regexp, s string, a []arrow.Array, i int)) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		var re *regexp.Regexp
		var pat string
		var bad error
		k := rows(out, func(b array.Builder, a []arrow.Array, i int) {
			if p := str(a[1], i); re == nil || p != pat {
				if re, bad = regexp.Compile(p); bad != nil {
					re = nil
					b.AppendNull()
					return
				}
				pat = p
			}
			f(b, re, str(a[0], i), a, i)
		})
		res, err := k(ctx, args)
		if bad != nil {
			res.Release()
			return nil, fmt.Errorf("bad regular expression: %w", bad)
		}
		return res, err
	}
}

func extract(b array.Builder, re *regexp.Regexp, s string, group int) {
	if group < 0 || group > re.NumSubexp() {
		b.AppendNull()
		return
	}
	m := re.FindStringSubmatch(s)
	if m == nil {
		putStr(b, "")
		return
	}
	putStr(b, m[group])
}

func hexDigest(h func() hash.Hash) func(string) string {
	return func(s string) string {
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
}
