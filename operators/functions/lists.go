package functions

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/operators/aggregate"
)

func init() {
	l := []string{"list"}
	builtin(
		fn("array_length", l, "number of elements (nulls included)", sig(rows(tInt, func(b array.Builder, a []arrow.Array, i int) {
			lo, hi := a[0].(*array.List).ValueOffsets(i)
			putInt(b, hi-lo)
		}), kList, kInt)),
		withNulls(fn("element_at", []string{"list", "index"}, "the element at 0-based index (negative counts from the end)",
			sig(elementAt, kListT, kInt, kT)), propagates+"; null when index is out of range"),
		fn("array_contains", []string{"list", "value"}, "value is an element of list", sig(arrayContains, kListT, kT, kBool)),
		withNulls(fn("array_sum", l, "sum of the non-null elements",
			sig(listAgg("sum"), kListInt, kInt), sig(listAgg("sum"), kListFloat, kFloat)), "null for a null list; 0 for an empty one"),
		withNulls(fn("array_average", l, "mean of the non-null elements",
			sig(listAgg("mean"), kListFloat, kFloat)), "null for a null list or no non-null elements"),
		withNulls(fn("array_max", l, "largest non-null element", sig(listAgg("max"), kListT, kT)), "null for a null list or no non-null elements"),
		withNulls(fn("array_min", l, "smallest non-null element", sig(listAgg("min"), kListT, kT)), "null for a null list or no non-null elements"),
		withNulls(fn("array_join", []string{"list", "sep"}, "the non-null string elements joined with sep",
			sig(rows(tStr, func(b array.Builder, a []arrow.Array, i int) {
				lst := a[0].(*array.List)
				lo, hi := lst.ValueOffsets(i)
				el, sep := lst.ListValues().(*array.String), str(a[1], i)
				var out []byte
				first := true
				for j := int(lo); j < int(hi); j++ {
					if el.IsNull(j) {
						continue
					}
					if !first {
						out = append(out, sep...)
					}
					first = false
					out = append(out, el.Value(j)...)
				}
				putStr(b, string(out))
			}), kListStr, kStr, kStr)), "skips null elements; null for a null list or sep"),
	)
}

// elementGroups maps every list element to its row (-1 for the elements of
// null rows), the layout aggregate.Grouped expects.
func elementGroups(l *array.List) []int32 {
	groups := make([]int32, l.ListValues().Len())
	for j := range groups {
		groups[j] = -1
	}
	for i := 0; i < l.Len(); i++ {
		if l.IsNull(i) {
			continue
		}
		lo, hi := l.ValueOffsets(i)
		for j := lo; j < hi; j++ {
			groups[j] = int32(i)
		}
	}
	return groups
}

// listAgg aggregates each list's elements with the aggregation fn, then
// nulls the rows whose list is null.
func listAgg(fn string) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		l := args[0].(*array.List)
		res, err := aggregate.Grouped(ctx.Mem, fn, l.ListValues(), nil, elementGroups(l), l.Len())
		if err != nil || l.NullN() == 0 {
			return res, err
		}
		defer res.Release()
		nulls := array.MakeArrayOfNull(ctx.Mem, res.DataType(), l.Len())
		defer nulls.Release()
		valid, err := nullTest(false)(ctx, args)
		if err != nil {
			return nil, err
		}
		defer valid.Release()
		return choose(ctx, valid.(*array.Boolean), res, nulls, false)
	}
}

func elementAt(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	l := args[0].(*array.List)
	idx := array.NewInt32Builder(ctx.Mem)
	defer idx.Release()
	for i := 0; i < l.Len(); i++ {
		if !rowValid(args, i) {
			idx.AppendNull()
			continue
		}
		lo, hi := l.ValueOffsets(i)
		k := i64(args[1], i)
		if k < 0 {
			k += hi - lo
		}
		if k < 0 || k >= hi-lo {
			idx.AppendNull()
			continue
		}
		idx.Append(int32(lo + k))
	}
	return gather(ctx, idx, l.ListValues())
}

func arrayContains(ctx *Context, args []arrow.Array) (arrow.Array, error) {
	l := args[0].(*array.List)
	el := l.ListValues()
	return rows(tBool, func(b array.Builder, a []arrow.Array, i int) {
		lo, hi := l.ValueOffsets(i)
		found := false
		for j := int(lo); j < int(hi) && !found; j++ {
			found = el.IsValid(j) && sameAt(el, j, a[1], i)
		}
		putBool(b, found)
	})(ctx, args)
}

// sameAt compares x[i] with y[j] of one type.
func sameAt(x arrow.Array, i int, y arrow.Array, j int) bool {
	switch x := x.(type) {
	case *array.Int64:
		return x.Value(i) == y.(*array.Int64).Value(j)
	case *array.Float64:
		return x.Value(i) == y.(*array.Float64).Value(j)
	case *array.String:
		return x.Value(i) == y.(*array.String).Value(j)
	case *array.Boolean:
		return x.Value(i) == y.(*array.Boolean).Value(j)
	case *array.Timestamp:
		return x.Value(i) == y.(*array.Timestamp).Value(j)
	case *array.Date32:
		return x.Value(i) == y.(*array.Date32).Value(j)
	}
	return x.ValueStr(i) == y.ValueStr(j)
}
