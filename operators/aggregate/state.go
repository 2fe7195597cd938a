package aggregate

import (
	"encoding/base64"
	"fmt"
	"iter"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Partial state: what an aggregation keeps of a group of rows so that
// groups merge later (aggregation tiles, docs/TILES.md). Each aggregation's
// state is a few columns (StateFields), one row per group:
//
//	count                  n
//	sum                    sum (the value's type)
//	mean                   n, sum (float)
//	var, std               n, mean, m2 (Welford; merged with Chan's formula)
//	min, max               v (null: no value)
//	max_by, min_by         v, k (the value at the extreme sort key k)
//	any, all               b
//	approx_count_distinct  sketch (Sketch.MarshalBinary in base64: text,
//	                       which every store and source reads)
//
// A state row of no rows is the aggregation's identity: n 0, sum 0, v and k
// null, b false for any and true for all, an empty sketch.

// StateFields returns the columns of fn's state over values of type vt and,
// for max_by/min_by, sort keys of type kt.
func StateFields(fn string, vt, kt arrow.DataType) ([]arrow.Field, error) {
	if _, err := OutputType(fn, vt); err != nil {
		return nil, err
	}
	f := func(name string, t arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: t, Nullable: true}
	}
	i64, f64 := arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64
	switch fn {
	case "count":
		return []arrow.Field{f("n", i64)}, nil
	case "sum":
		return []arrow.Field{f("sum", vt)}, nil
	case "mean":
		return []arrow.Field{f("n", i64), f("sum", f64)}, nil
	case "var", "std":
		return []arrow.Field{f("n", i64), f("mean", f64), f("m2", f64)}, nil
	case "min", "max":
		return []arrow.Field{f("v", vt)}, nil
	case "max_by", "min_by":
		if kt == nil {
			return nil, fmt.Errorf("%s needs a sort key", fn)
		}
		return []arrow.Field{f("v", vt), f("k", kt)}, nil
	case "any", "all":
		return []arrow.Field{f("b", arrow.FixedWidthTypes.Boolean)}, nil
	case "approx_count_distinct":
		return []arrow.Field{f("sketch", arrow.BinaryTypes.String)}, nil
	}
	return nil, unknown(fn)
}

// Partial computes fn's state per group of rows (groups as in Grouped):
// one array per StateFields column, ngroups rows each. The arrays belong to
// the caller.
func Partial(mem memory.Allocator, fn string, values, sortKey arrow.Array, groups []int32, ngroups int) ([]arrow.Array, error) {
	if values != nil && values.Len() != len(groups) {
		return nil, fmt.Errorf("%s: %d values for %d group ids", fn, values.Len(), len(groups))
	}
	switch fn {
	case "count":
		return []arrow.Array{count(mem, values, groups, ngroups)}, nil
	case "sum":
		a, err := Grouped(mem, fn, values, nil, groups, ngroups)
		return []arrow.Array{a}, err
	case "mean", "var", "std":
		n, mean, m2 := welford(values, groups, ngroups)
		nb := array.NewInt64Builder(mem)
		defer nb.Release()
		nb.AppendValues(n, nil)
		if fn == "mean" {
			for g := range mean {
				mean[g] *= float64(n[g]) // the sum, from the running mean
			}
			return []arrow.Array{nb.NewArray(), floatArray(mem, mean)}, nil
		}
		return []arrow.Array{nb.NewArray(), floatArray(mem, mean), floatArray(mem, m2)}, nil
	case "min", "max":
		a, err := minMax(mem, fn == "max", values, groups, ngroups)
		return []arrow.Array{a}, err
	case "max_by", "min_by":
		if sortKey == nil || sortKey.Len() != len(groups) {
			return nil, fmt.Errorf("%s needs a sort key for every row", fn)
		}
		rows, err := argBest(fn == "max_by", values, sortKey, groups, ngroups)
		if err != nil {
			return nil, err
		}
		v, err := take(mem, values, rows)
		if err != nil {
			return nil, err
		}
		k, err := take(mem, sortKey, rows)
		if err != nil {
			v.Release()
			return nil, err
		}
		return []arrow.Array{v, k}, nil
	case "any", "all":
		return []arrow.Array{anyAll(mem, fn == "any", values.(*array.Boolean), groups, ngroups)}, nil
	case "approx_count_distinct":
		b := array.NewStringBuilder(mem)
		defer b.Release()
		for _, s := range sketches(values, groups, ngroups) {
			enc, _ := s.MarshalBinary()
			b.Append(base64.StdEncoding.EncodeToString(enc))
		}
		return []arrow.Array{b.NewArray()}, nil
	}
	return nil, unknown(fn)
}

// welford returns, per group, the count, mean and sum of squared
// deviations of the non-null values.
func welford(values arrow.Array, groups []int32, ngroups int) (n []int64, mean, m2 []float64) {
	n, mean, m2 = make([]int64, ngroups), make([]float64, ngroups), make([]float64, ngroups)
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
	return n, mean, m2
}

func floatArray(mem memory.Allocator, v []float64) arrow.Array {
	b := array.NewFloat64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

// Spans are, per output row i, the state rows [Lo[i], Hi[i]) and, when Lo2
// is set, [Lo2[i], Hi2[i]) too (tiles, then the raw rows of an open
// bucket), in that order.
type Spans struct{ Lo, Hi, Lo2, Hi2 []int32 }

func (sp *Spans) rows(i int) iter.Seq[int32] {
	return func(yield func(int32) bool) {
		for j := sp.Lo[i]; j < sp.Hi[i]; j++ {
			if !yield(j) {
				return
			}
		}
		if sp.Lo2 != nil {
			for j := sp.Lo2[i]; j < sp.Hi2[i]; j++ {
				if !yield(j) {
					return
				}
			}
		}
	}
}

// MergeSpans merges, for each output row i, the state rows of sp's spans
// of states (the columns of StateFields) and returns fn's result for the
// union of the rows those states summarize: empty spans give the
// aggregation over no rows (DESIGN §4). The result belongs to the caller.
func MergeSpans(mem memory.Allocator, fn string, states []arrow.Array, sp Spans) (arrow.Array, error) {
	nrows := len(sp.Lo)
	i64 := func(c int) []int64 { return states[c].(*array.Int64).Int64Values() }
	f64 := func(c int) []float64 { return states[c].(*array.Float64).Float64Values() }
	switch fn {
	case "count":
		n := i64(0)
		out := make([]int64, nrows)
		for i := range out {
			for j := range sp.rows(i) {
				out[i] += n[j]
			}
		}
		return int64Array(mem, out, nil), nil
	case "sum":
		if s, ok := states[0].(*array.Int64); ok {
			vals := s.Int64Values()
			out := make([]int64, nrows)
			for i := range out {
				for j := range sp.rows(i) {
					if s.IsNull(int(j)) {
						continue
					}
					t := out[i] + vals[j]
					if (t^out[i])&(t^vals[j]) < 0 {
						return nil, fmt.Errorf("sum: integer overflow")
					}
					out[i] = t
				}
			}
			return int64Array(mem, out, nil), nil
		}
		s := states[0].(*array.Float64)
		vals := s.Float64Values()
		out := make([]float64, nrows)
		for i := range out {
			for j := range sp.rows(i) {
				if s.IsValid(int(j)) {
					out[i] += vals[j]
				}
			}
		}
		return floatArray(mem, out), nil
	case "mean":
		n, sum := i64(0), f64(1)
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(nrows)
		for i := range nrows {
			var cnt int64
			var s float64
			for j := range sp.rows(i) {
				cnt += n[j]
				s += sum[j]
			}
			if cnt == 0 {
				b.UnsafeAppendBoolToBitmap(false)
			} else {
				b.UnsafeAppend(s / float64(cnt))
			}
		}
		return b.NewArray(), nil
	case "var", "std":
		n, mean, m2 := i64(0), f64(1), f64(2)
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(nrows)
		for i := range nrows {
			var cn int64
			var cm, cm2 float64
			for j := range sp.rows(i) {
				if n[j] == 0 {
					continue
				}
				// Chan et al.: the moments of the union of two groups.
				tot := cn + n[j]
				d := mean[j] - cm
				cm += d * float64(n[j]) / float64(tot)
				cm2 += m2[j] + d*d*float64(cn)*float64(n[j])/float64(tot)
				cn = tot
			}
			switch {
			case cn < 2:
				b.UnsafeAppendBoolToBitmap(false)
			case fn == "var":
				b.UnsafeAppend(cm2 / float64(cn-1))
			default:
				b.UnsafeAppend(math.Sqrt(cm2 / float64(cn-1)))
			}
		}
		return b.NewArray(), nil
	case "min", "max", "max_by", "min_by":
		vals, keys := states[0], states[0]
		if len(states) > 1 {
			keys = states[1]
		}
		// The best state row of each output row, by its sort key: the
		// states' own best rows compete again (ties: the later bucket).
		rows, err := bestInRanges(fn == "max" || fn == "max_by", vals, keys, &sp)
		if err != nil {
			return nil, err
		}
		return take(mem, vals, rows)
	case "any", "all":
		bs := states[0].(*array.Boolean)
		isAny := fn == "any"
		out := make([]bool, nrows)
		for i := range out {
			out[i] = !isAny
			for j := range sp.rows(i) {
				if bs.IsValid(int(j)) && bs.Value(int(j)) == isAny {
					out[i] = isAny
					break
				}
			}
		}
		b := array.NewBooleanBuilder(mem)
		defer b.Release()
		b.AppendValues(out, nil)
		return b.NewArray(), nil
	case "approx_count_distinct":
		bin := states[0].(*array.String)
		decoded := make([]*Sketch, bin.Len())
		out := make([]int64, nrows)
		for i := range out {
			var acc Sketch
			for j := range sp.rows(i) {
				if bin.IsNull(int(j)) {
					continue
				}
				if decoded[j] == nil {
					raw, err := base64.StdEncoding.DecodeString(bin.Value(int(j)))
					if err != nil {
						return nil, fmt.Errorf("approx_count_distinct: a stored sketch is not base64: %v", err)
					}
					decoded[j] = new(Sketch)
					if err := decoded[j].UnmarshalBinary(raw); err != nil {
						return nil, err
					}
				}
				acc.Merge(decoded[j])
			}
			out[i] = acc.Estimate()
		}
		return int64Array(mem, out, nil), nil
	}
	return nil, unknown(fn)
}

// bestInRanges returns, per row's spans, the state row with the
// greatest (isMax) or least key among rows whose value and key are not
// null, -1 when none; ties go to the later row, as in argBest.
func bestInRanges(isMax bool, values, keys arrow.Array, sp *Spans) ([]int32, error) {
	better, err := keyOrder(isMax, keys)
	if err != nil {
		return nil, err
	}
	rows := make([]int32, len(sp.Lo))
	for i := range rows {
		b := int32(-1)
		for j := range sp.rows(i) {
			if keys.IsValid(int(j)) && values.IsValid(int(j)) && better(j, b) {
				b = j
			}
		}
		rows[i] = b
	}
	return rows, nil
}

func int64Array(mem memory.Allocator, v []int64, valid []bool) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(v, valid)
	return b.NewArray()
}
