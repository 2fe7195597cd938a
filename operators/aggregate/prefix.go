package aggregate

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Prefix holds running totals of the partial states of a summable
// aggregation (count, sum, mean) laid out in runs (one run per key, its
// tiles by bucket), so that merging a span of a run is a subtraction
// instead of a loop: a training set merges up to window/bucket tiles per
// row and window, and the same tiles again for every row of the key.
//
// Totals restart at each run, so that a key's totals stay of the
// magnitude of its own values (a float window sum is exact to the
// rounding of its key's total, not of the whole table's).
type Prefix struct {
	fn    string
	first []bool // state row j starts its run
	// Per state column, the inclusive running total within the run: ints
	// for int64 states, floats for float64 ones (a null state counts 0).
	ints   [][]int64
	floats [][]float64
}

// NewPrefix returns the running totals of states, laid out in the runs
// runs[k] .. runs[k+1] (consecutive, covering every state row), or nil when
// fn does not merge by sums or an int64 total overflows (merging then falls
// back to MergeSpans, which reports an overflowing window).
func NewPrefix(fn string, states []arrow.Array, runs []int32) *Prefix {
	switch fn {
	case "count", "sum", "mean":
	default:
		return nil
	}
	n := 0
	if len(states) > 0 {
		n = states[0].Len()
	}
	if len(runs) == 0 || int(runs[len(runs)-1]) != n || runs[0] != 0 {
		return nil
	}
	p := &Prefix{fn: fn, first: make([]bool, n), ints: make([][]int64, len(states)), floats: make([][]float64, len(states))}
	for k := range len(runs) - 1 {
		if runs[k] < runs[k+1] {
			p.first[runs[k]] = true
		}
	}
	for c, s := range states {
		switch s := s.(type) {
		case *array.Int64:
			vals := s.Int64Values()
			tot := make([]int64, n)
			var acc int64
			for j := range n {
				if p.first[j] {
					acc = 0
				}
				if s.IsValid(j) {
					t := acc + vals[j]
					if (t^acc)&(t^vals[j]) < 0 {
						return nil
					}
					acc = t
				}
				tot[j] = acc
			}
			p.ints[c] = tot
		case *array.Float64:
			vals := s.Float64Values()
			tot := make([]float64, n)
			var acc float64
			for j := range n {
				if p.first[j] {
					acc = 0
				}
				if s.IsValid(j) {
					acc += vals[j]
				}
				tot[j] = acc
			}
			p.floats[c] = tot
		default:
			return nil
		}
	}
	return p
}

// Bytes is the memory the totals hold.
func (p *Prefix) Bytes() int64 {
	b := int64(len(p.first))
	for c := range p.ints {
		b += 8 * int64(len(p.ints[c])+len(p.floats[c]))
	}
	return b
}

// intSpan is the total of int64 column c over [a, b) of one run.
func (p *Prefix) intSpan(c int, a, b int32) (int64, bool) {
	if a >= b {
		return 0, true
	}
	hi := p.ints[c][b-1]
	if p.first[a] {
		return hi, true
	}
	lo := p.ints[c][a-1]
	d := hi - lo
	// The true total fits if and only if the subtraction does not overflow.
	return d, (hi^lo)&(hi^d) >= 0
}

func (p *Prefix) floatSpan(c int, a, b int32) float64 {
	if a >= b {
		return 0
	}
	hi := p.floats[c][b-1]
	if p.first[a] {
		return hi
	}
	return hi - p.floats[c][a-1]
}

// Merge is MergeSpans for states whose first rows are the ones p totals:
// each row's span sp.Lo..sp.Hi lies within one run and is merged by its
// totals; sp.Lo2..sp.Hi2 (raw rows after them, outside any run) are merged
// row by row, as MergeSpans does.
func (p *Prefix) Merge(mem memory.Allocator, states []arrow.Array, sp Spans) (arrow.Array, error) {
	nrows := len(sp.Lo)
	raw := func(i int) (int32, int32) {
		if sp.Lo2 == nil {
			return 0, 0
		}
		return sp.Lo2[i], sp.Hi2[i]
	}
	switch p.fn {
	case "count":
		n := states[0].(*array.Int64).Int64Values()
		out := make([]int64, nrows)
		for i := range out {
			v, _ := p.intSpan(0, sp.Lo[i], sp.Hi[i])
			a, b := raw(i)
			for j := a; j < b; j++ {
				v += n[j]
			}
			out[i] = v
		}
		return int64Array(mem, out, nil), nil
	case "sum":
		if s, ok := states[0].(*array.Int64); ok {
			vals := s.Int64Values()
			out := make([]int64, nrows)
			for i := range out {
				v, ok := p.intSpan(0, sp.Lo[i], sp.Hi[i])
				if !ok {
					return nil, fmt.Errorf("sum: integer overflow")
				}
				a, b := raw(i)
				for j := a; j < b; j++ {
					if s.IsNull(int(j)) {
						continue
					}
					t := v + vals[j]
					if (t^v)&(t^vals[j]) < 0 {
						return nil, fmt.Errorf("sum: integer overflow")
					}
					v = t
				}
				out[i] = v
			}
			return int64Array(mem, out, nil), nil
		}
		s := states[0].(*array.Float64)
		vals := s.Float64Values()
		out := make([]float64, nrows)
		for i := range out {
			v := p.floatSpan(0, sp.Lo[i], sp.Hi[i])
			a, b := raw(i)
			for j := a; j < b; j++ {
				if s.IsValid(int(j)) {
					v += vals[j]
				}
			}
			out[i] = v
		}
		return floatArray(mem, out), nil
	case "mean":
		n, sum := states[0].(*array.Int64).Int64Values(), states[1].(*array.Float64).Float64Values()
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(nrows)
		for i := range nrows {
			cnt, _ := p.intSpan(0, sp.Lo[i], sp.Hi[i])
			s := p.floatSpan(1, sp.Lo[i], sp.Hi[i])
			lo, hi := raw(i)
			for j := lo; j < hi; j++ {
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
	}
	return nil, unknown(p.fn)
}
