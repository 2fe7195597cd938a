// Package aggregate computes grouped aggregations over the rows of a
// has-many relation (`_.reviews[_.star_rating].mean()`): every input row
// belongs to one output row (its parent) or to none, and each output row
// gets the aggregate of its input rows, with DESIGN §4's null semantics.
//
// It knows nothing about features, filters or windows: the planner has
// already evaluated the value and sort-key columns and decided each row's
// group.
package aggregate

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exec"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/internal/suggest"
)

// Functions lists the aggregation names, sorted.
var Functions = []string{
	"all", "any", "approx_count_distinct", "count", "max", "max_by",
	"mean", "min", "min_by", "std", "sum", "var",
}

func unknown(fn string) error {
	return fmt.Errorf("unknown aggregation %q%s; known: %v", fn, suggest.DidYouMean(fn, Functions), Functions)
}

// OutputType returns the type of fn's result over values of type value
// (nil for count without a column).
func OutputType(fn string, value arrow.DataType) (arrow.DataType, error) {
	if sort.SearchStrings(Functions, fn) == len(Functions) || Functions[sort.SearchStrings(Functions, fn)] != fn {
		return nil, unknown(fn)
	}
	if fn == "count" || fn == "approx_count_distinct" {
		return arrow.PrimitiveTypes.Int64, nil
	}
	if value == nil {
		return nil, fmt.Errorf("%s needs a value column", fn)
	}
	bad := func(what string) error {
		return fmt.Errorf("%s needs %s values, not %s", fn, what, value)
	}
	id := value.ID()
	numeric := id == arrow.INT64 || id == arrow.FLOAT64
	switch fn {
	case "sum":
		if !numeric {
			return nil, bad("int or float")
		}
		return value, nil
	case "mean", "std", "var":
		if !numeric {
			return nil, bad("int or float")
		}
		return arrow.PrimitiveTypes.Float64, nil
	case "any", "all":
		if id != arrow.BOOL {
			return nil, bad("bool")
		}
		return value, nil
	case "min", "max":
		switch id {
		case arrow.INT64, arrow.FLOAT64, arrow.STRING, arrow.TIMESTAMP, arrow.DATE32, arrow.BOOL:
			return value, nil
		}
		return nil, bad("int, float, str, datetime, date or bool")
	}
	return value, nil // max_by, min_by: any value type
}

// Grouped aggregates values by group: groups[i] is the output row of input
// row i (-1: the row is skipped), and the result has ngroups rows. values
// may be nil for count; sortKey is the key of max_by/min_by. The result
// belongs to the caller.
func Grouped(mem memory.Allocator, fn string, values, sortKey arrow.Array, groups []int32, ngroups int) (arrow.Array, error) {
	var vt arrow.DataType
	if values != nil {
		vt = values.DataType()
		if values.Len() != len(groups) {
			return nil, fmt.Errorf("%s: %d values for %d group ids", fn, values.Len(), len(groups))
		}
	}
	if _, err := OutputType(fn, vt); err != nil {
		return nil, err
	}
	switch fn {
	case "count":
		return count(mem, values, groups, ngroups), nil
	case "sum":
		if vt.ID() == arrow.INT64 {
			return sumInt(mem, values.(*array.Int64), groups, ngroups)
		}
		return sumFloat(mem, values.(*array.Float64), groups, ngroups), nil
	case "mean", "std", "var":
		return moments(mem, fn, values, groups, ngroups), nil
	case "min", "max":
		return minMax(mem, fn == "max", values, groups, ngroups)
	case "any", "all":
		return anyAll(mem, fn == "any", values.(*array.Boolean), groups, ngroups), nil
	case "max_by", "min_by":
		if sortKey == nil || sortKey.Len() != len(groups) {
			return nil, fmt.Errorf("%s needs a sort key for every row", fn)
		}
		rows, err := argBest(fn == "max_by", values, sortKey, groups, ngroups)
		if err != nil {
			return nil, err
		}
		return take(mem, values, rows)
	case "approx_count_distinct":
		sk := sketches(values, groups, ngroups)
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(ngroups)
		for _, s := range sk {
			b.UnsafeAppend(s.Estimate())
		}
		return b.NewArray(), nil
	}
	return nil, unknown(fn)
}

// count counts the rows of each group, or, given the values of a
// projection, the rows whose value is not null (DESIGN §4: aggregations
// skip nulls; `_.revisions[_.size_bytes].count()` counts sizes).
func count(mem memory.Allocator, values arrow.Array, groups []int32, ngroups int) arrow.Array {
	counts := make([]int64, ngroups)
	skipNulls := values != nil && values.NullN() > 0
	for i, g := range groups {
		if g >= 0 && !(skipNulls && values.IsNull(i)) {
			counts[g]++
		}
	}
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(counts, nil)
	return b.NewArray()
}

func sumInt(mem memory.Allocator, v *array.Int64, groups []int32, ngroups int) (arrow.Array, error) {
	sums := make([]int64, ngroups)
	vals := v.Int64Values()
	for i, g := range groups {
		if g < 0 || v.IsNull(i) {
			continue
		}
		s := sums[g] + vals[i]
		if (s^sums[g])&(s^vals[i]) < 0 {
			return nil, fmt.Errorf("sum: integer overflow in group %d", g)
		}
		sums[g] = s
	}
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(sums, nil)
	return b.NewArray(), nil
}

func sumFloat(mem memory.Allocator, v *array.Float64, groups []int32, ngroups int) arrow.Array {
	sums := make([]float64, ngroups)
	vals := v.Float64Values()
	for i, g := range groups {
		if g >= 0 && v.IsValid(i) {
			sums[g] += vals[i]
		}
	}
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendValues(sums, nil)
	return b.NewArray()
}

// floats reads int or float values as float64.
func floats(values arrow.Array) func(i int) float64 {
	if v, ok := values.(*array.Int64); ok {
		vals := v.Int64Values()
		return func(i int) float64 { return float64(vals[i]) }
	}
	vals := values.(*array.Float64).Float64Values()
	return func(i int) float64 { return vals[i] }
}

// moments computes mean, or sample variance / standard deviation with
// Welford's update (stable where sum-of-squares is not).
func moments(mem memory.Allocator, fn string, values arrow.Array, groups []int32, ngroups int) arrow.Array {
	n := make([]int64, ngroups)
	mean := make([]float64, ngroups)
	m2 := make([]float64, ngroups)
	get := floats(values)
	for i, g := range groups {
		if g < 0 || values.IsNull(i) {
			continue
		}
		x := get(i)
		n[g]++
		d := x - mean[g]
		mean[g] += d / float64(n[g])
		m2[g] += d * (x - mean[g])
	}
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.Reserve(ngroups)
	for g := range ngroups {
		switch {
		case fn == "mean" && n[g] > 0:
			b.UnsafeAppend(mean[g])
		case fn == "var" && n[g] > 1:
			b.UnsafeAppend(m2[g] / float64(n[g]-1))
		case fn == "std" && n[g] > 1:
			b.UnsafeAppend(math.Sqrt(m2[g] / float64(n[g]-1)))
		default:
			b.UnsafeAppendBoolToBitmap(false)
		}
	}
	return b.NewArray()
}

func anyAll(mem memory.Allocator, isAny bool, v *array.Boolean, groups []int32, ngroups int) arrow.Array {
	res := make([]bool, ngroups)
	if !isAny {
		for g := range res {
			res[g] = true
		}
	}
	for i, g := range groups {
		if g >= 0 && v.IsValid(i) && v.Value(i) == isAny {
			res[g] = isAny
		}
	}
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.AppendValues(res, nil)
	return b.NewArray()
}

// minMax finds each group's extreme row, then gathers the values: one code
// path for every value type.
func minMax(mem memory.Allocator, isMax bool, values arrow.Array, groups []int32, ngroups int) (arrow.Array, error) {
	rows, err := argBest(isMax, values, values, groups, ngroups)
	if err != nil {
		return nil, err
	}
	return take(mem, values, rows)
}

// argBest returns, per group, the input row with the greatest (isMax) or
// least key among rows whose value and key are not null; -1 when none. On
// ties the later row wins, so that max_by over equal timestamps picks the
// last row written. NaN orders above every number, as in DuckDB.
func argBest(isMax bool, values, keys arrow.Array, groups []int32, ngroups int) ([]int32, error) {
	better, err := keyOrder(isMax, keys)
	if err != nil {
		return nil, err
	}
	best := make([]int32, ngroups)
	for g := range best {
		best[g] = -1
	}
	for i, g := range groups {
		if g < 0 || !keys.IsValid(i) || (values != nil && values.IsNull(i)) {
			continue
		}
		if better(int32(i), best[g]) {
			best[g] = int32(i)
		}
	}
	return best, nil
}

// keyOrder returns better(j, b): whether row j of keys replaces row b (-1:
// none yet) as the greatest (isMax) or least; ties go to j, the later row.
func keyOrder(isMax bool, keys arrow.Array) (func(j, b int32) bool, error) {
	switch k := keys.(type) {
	case *array.Int64:
		return betterOf(isMax, k.Int64Values()), nil
	case *array.Float64:
		return betterOf(isMax, k.Float64Values()), nil
	case *array.Timestamp:
		return betterOf(isMax, k.TimestampValues()), nil
	case *array.Date32:
		return betterOf(isMax, k.Date32Values()), nil
	case *array.String:
		strs := make([]string, k.Len())
		for i := range strs {
			strs[i] = k.Value(i)
		}
		return betterOf(isMax, strs), nil
	case *array.Boolean:
		bs := make([]int8, k.Len())
		for i := range bs {
			if k.Value(i) {
				bs[i] = 1
			}
		}
		return betterOf(isMax, bs), nil
	}
	return nil, fmt.Errorf("cannot order by %s", keys.DataType())
}

type orderedKey interface {
	int64 | float64 | arrow.Timestamp | arrow.Date32 | string | int8
}

func betterOf[K orderedKey](isMax bool, keys []K) func(j, b int32) bool {
	// x != x only for NaN, which orders above every number.
	if isMax {
		return func(j, b int32) bool { return b < 0 || keys[j] >= keys[b] || keys[j] != keys[j] }
	}
	return func(j, b int32) bool { return b < 0 || keys[j] <= keys[b] || keys[b] != keys[b] }
}

// take gathers values at rows; row -1 gives null.
func take(mem memory.Allocator, values arrow.Array, rows []int32) (arrow.Array, error) {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	b.Reserve(len(rows))
	for _, r := range rows {
		if r < 0 {
			b.UnsafeAppendBoolToBitmap(false)
		} else {
			b.UnsafeAppend(r)
		}
	}
	idx := b.NewArray()
	defer idx.Release()
	ctx := exec.WithAllocator(context.Background(), mem)
	return compute.TakeArray(ctx, values, idx)
}
