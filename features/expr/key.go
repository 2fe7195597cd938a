package expr

import (
	"fmt"
	"math"
	"strconv"
)

// AppendKey appends the canonical form of n to dst: two trees have the same
// form exactly when they ask for the same computation, so a plan cache can
// be keyed by it. Unlike String, it spells every literal's type (1, 1.0,
// "1" and True differ: each binds to kernels of its own type) and quotes
// every name, and it leaves positions out (the same expression written
// elsewhere plans the same).
func AppendKey(dst []byte, n Node) []byte {
	switch n := n.(type) {
	case nil:
		return append(dst, '_')
	case *Ref:
		dst = append(dst, "(ref"...)
		for _, p := range n.Path {
			dst = append(dst, ' ')
			dst = strconv.AppendQuote(dst, p)
		}
		return append(dst, ')')
	case *ChalkWindow:
		return append(dst, "(window)"...)
	case *Literal:
		return appendLiteral(dst, n.Value)
	case *Binary:
		dst = append(dst, '(')
		dst = append(dst, n.Op...)
		dst = AppendKey(append(dst, ' '), n.L)
		dst = AppendKey(append(dst, ' '), n.R)
		return append(dst, ')')
	case *Unary:
		dst = append(dst, "(u"...)
		dst = append(dst, n.Op...)
		dst = AppendKey(append(dst, ' '), n.X)
		return append(dst, ')')
	case *Call:
		dst = append(dst, "(call "...)
		dst = strconv.AppendQuote(dst, n.Func)
		for _, a := range n.Args {
			dst = AppendKey(append(dst, ' '), a)
		}
		for _, a := range n.Named {
			dst = append(dst, ' ')
			dst = strconv.AppendQuote(dst, a.Name)
			dst = AppendKey(append(dst, '='), a.Value)
		}
		return append(dst, ')')
	case *Select:
		dst = AppendKey(append(dst, "(select "...), n.Rel)
		for _, f := range n.Filters {
			dst = AppendKey(append(dst, ' '), f)
		}
		dst = AppendKey(append(dst, " project "...), n.Project)
		return append(dst, ')')
	case *Agg:
		dst = append(dst, "(agg "...)
		dst = strconv.AppendQuote(dst, n.Func)
		dst = AppendKey(append(dst, ' '), n.Source)
		dst = AppendKey(append(dst, ' '), n.SortBy)
		return append(dst, ')')
	case *Index:
		dst = AppendKey(append(dst, "(index "...), n.X)
		dst = AppendKey(append(dst, ' '), n.Key)
		return append(dst, ')')
	case *Alias:
		dst = AppendKey(append(dst, "(as "...), n.X)
		dst = append(dst, ' ')
		dst = strconv.AppendQuote(dst, n.Name)
		return append(dst, ')')
	case *When:
		dst = append(dst, "(when"...)
		for i := range n.Conds {
			dst = AppendKey(append(dst, ' '), n.Conds[i])
			dst = AppendKey(append(dst, ' '), n.Thens[i])
		}
		dst = AppendKey(append(dst, " else "...), n.Else)
		return append(dst, ')')
	}
	// A node type added without a case here must not share a key with
	// another: its Go type and text keep it apart.
	return fmt.Appendf(dst, "(%T %s)", n, n)
}

func appendLiteral(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(append(dst, "b:"...), v)
	case int64:
		return strconv.AppendInt(append(dst, "i:"...), v, 10)
	case float64:
		if v == 0 && math.Signbit(v) {
			return append(dst, "f:-0"...)
		}
		return strconv.AppendFloat(append(dst, "f:"...), v, 'g', -1, 64)
	case string:
		return strconv.AppendQuote(append(dst, "s:"...), v)
	}
	return fmt.Appendf(dst, "%T:%v", v, v)
}

// Depth is the nesting of n: 1 for a leaf, one more per level of operands
// below it.
func Depth(n Node) int {
	if n == nil {
		return 0
	}
	d := 0
	first := true
	Walk(n, func(c Node) bool {
		if first { // n itself
			first = false
			return true
		}
		d = max(d, Depth(c))
		return false
	})
	return d + 1
}
