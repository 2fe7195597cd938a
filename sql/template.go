package sql

import (
	"strconv"
	"strings"

	"github.com/fletch-engine/fletch/statement"
)

// template is sql with every number and string literal replaced by a
// numbered parameter ($1, $2, ... in order), and the literals' values.
// Statements that differ only in their key values (`WHERE id = 7`, `WHERE
// id = 8`) share a template, so a server can parse and plan it once and
// fill in each text's values with WithValues. ok is false for text the
// scan does not handle (parameters already, dollar quoting, escape
// strings, a number out of range, an unterminated quote or comment):
// such text is parsed as it is.
func template(sql string) (text string, vals []statement.Value, ok bool) {
	var b strings.Builder
	b.Grow(len(sql) + 8)
	identChar := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
	}
	param := func(v any) {
		vals = append(vals, statement.Value{Lit: v})
		b.WriteString("$" + strconv.Itoa(len(vals)))
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '?' || c == '$':
			return "", nil, false
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			b.WriteString(sql[i : i+end])
			i += end
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return "", nil, false
			}
			b.WriteString(sql[i : i+2+end+2])
			i += 2 + end + 2
		case c == '"':
			end := closing(sql, i, '"')
			if end < 0 {
				return "", nil, false
			}
			b.WriteString(sql[i:end])
			i = end
		case c == '\'':
			if i > 0 && identChar(sql[i-1]) {
				return "", nil, false // E'...', B'...', U&'...': not plain strings
			}
			end := closing(sql, i, '\'')
			if end < 0 {
				return "", nil, false
			}
			param(strings.ReplaceAll(sql[i+1:end-1], "''", "'"))
			i = end
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
			if i > 0 && (identChar(sql[i-1]) || sql[i-1] == '.') {
				// Part of a name (f12) or of a qualified name.
				j := i
				for j < len(sql) && identChar(sql[j]) {
					j++
				}
				b.WriteString(sql[i:max(j, i+1)])
				i = max(j, i+1)
				continue
			}
			j := number(sql, i)
			if j < len(sql) && identChar(sql[j]) {
				return "", nil, false // 1e, 12abc: leave it to the parser
			}
			lit := sql[i:j]
			if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
				param(n)
			} else if f, err := strconv.ParseFloat(lit, 64); err == nil && strings.ContainsAny(lit, ".eE") {
				param(f)
			} else {
				return "", nil, false
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), vals, true
}

// closing returns the index after the quote q closing the one at sql[i]
// (a doubled quote is an escaped one), or -1.
func closing(sql string, i int, q byte) int {
	for j := i + 1; j < len(sql); j++ {
		if sql[j] != q {
			continue
		}
		if j+1 < len(sql) && sql[j+1] == q {
			j++
			continue
		}
		return j + 1
	}
	return -1
}

// number returns the end of the numeric literal starting at sql[i]:
// digits, a fraction, an exponent.
func number(sql string, i int) int {
	digits := func(j int) int {
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		return j
	}
	j := digits(i)
	if j < len(sql) && sql[j] == '.' {
		j = digits(j + 1)
	}
	if j < len(sql) && (sql[j] == 'e' || sql[j] == 'E') {
		k := j + 1
		if k < len(sql) && (sql[k] == '+' || sql[k] == '-') {
			k++
		}
		if e := digits(k); e > k {
			j = e
		}
	}
	return j
}
