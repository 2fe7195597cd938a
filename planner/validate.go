package planner

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/statement"
)

// ValidationCount is how many computed values of one feature fell outside
// its bounds (feature(min=, max=, min_length=, max_length=)) since the
// engine started.
type ValidationCount struct {
	Feature string // table.feature: review.star_rating
	Bounds  string // as written: "min=1, max=5"
	Strict  bool
	// Violations counts the values outside the bounds: served (and
	// stored) as they are when not Strict; errors of their rows, neither
	// served nor stored, when Strict.
	Violations int64
}

// validationCounters counts violations per feature and validation (its
// feature(min=, ...), each Validation(...) of validations=[...]), in the
// order of Feature.Validations; made once per engine, so a run only adds
// to atomics.
type validationCounters map[*features.Feature][]*atomic.Int64

func newValidationCounters(g *features.Graph) validationCounters {
	out := validationCounters{}
	if g == nil {
		return out
	}
	for _, c := range g.Classes {
		for _, f := range c.Features {
			for range f.Validations {
				out[f] = append(out[f], &atomic.Int64{})
			}
		}
	}
	return out
}

// Validations returns, per validation of a feature, how many computed
// values fell outside its bounds so far, by feature name.
func (e *Engine) Validations() []ValidationCount {
	out := make([]ValidationCount, 0, len(e.validations))
	for f, counts := range e.validations {
		for k, n := range counts {
			v := f.Validations[k]
			out = append(out, ValidationCount{Feature: f.Class.Table + "." + f.Name, Bounds: Bounds(v), Strict: v.Strict, Violations: n.Load()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Feature != out[j].Feature {
			return out[i].Feature < out[j].Feature
		}
		return out[i].Bounds < out[j].Bounds
	})
	return out
}

// violation is the rows of one column whose values are outside their
// feature's strict bounds.
type violation struct {
	rows []int
	msg  string // what the first few values were, for the error
}

// validate checks arr, the values just computed for column i of f,
// against its feature's validations. Violations are counted; the values
// outside a strict one become nulls and their rows are noted in
// f.invalid (an error for those rows, never stored), or, without
// RunOptions.Partial, fail the run.
func (r *run) validate(f *frameData, i int, arr arrow.Array) (arrow.Array, error) {
	col := f.node.cols[i]
	if col.feature == nil || len(col.feature.Validations) == 0 || col.kind == colInput {
		return arr, nil
	}
	var strictRows []int
	var msgs []string
	counts := r.p.engine.validations[col.feature]
	for k, v := range col.feature.Validations {
		rows, values := violations(arr, v)
		if len(rows) == 0 {
			continue
		}
		if k < len(counts) {
			counts[k].Add(int64(len(rows)))
		}
		if v.Strict {
			strictRows = append(strictRows, rows...)
			msgs = append(msgs, fmt.Sprintf("%s.%s: %s outside %s (strict)", f.node.class.Table, col.feature.Name, values, Bounds(v)))
		}
	}
	if strictRows == nil {
		return arr, nil
	}
	msg := strings.Join(msgs, "; ")
	if !r.opts.Partial {
		arr.Release()
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: msg}
	}
	slices.Sort(strictRows)
	strictRows = slices.Compact(strictRows)
	nulled := nullRows(r.mem, arr, strictRows)
	arr.Release()
	f.mu.Lock()
	if f.invalid == nil {
		f.invalid = map[int]violation{}
	}
	f.invalid[i] = violation{rows: strictRows, msg: msg}
	f.mu.Unlock()
	return nulled, nil
}

// Bounds says v's bounds as written: "min=1, max=5".
func Bounds(v *features.Validation) string {
	var b []string
	if v.Min != nil {
		b = append(b, "min="+v.Min.String())
	}
	if v.Max != nil {
		b = append(b, "max="+v.Max.String())
	}
	if v.MinLength >= 0 {
		b = append(b, fmt.Sprintf("min_length=%d", v.MinLength))
	}
	if v.MaxLength >= 0 {
		b = append(b, fmt.Sprintf("max_length=%d", v.MaxLength))
	}
	return strings.Join(b, ", ")
}

// shownValues bounds how many violating values an error quotes.
const shownValues = 3

// violations returns the rows of arr outside v's bounds (nulls never
// are), and the first few of their values, for an error.
func violations(arr arrow.Array, v *features.Validation) (rows []int, values string) {
	var shown []string
	add := func(r int) {
		rows = append(rows, r)
		if len(shown) < shownValues {
			value := arr.ValueStr(r)
			if s, ok := arr.(*array.String); ok {
				value = strconv.Quote(s.Value(r))
			}
			shown = append(shown, fmt.Sprintf("%s (row %d)", value, r))
		}
	}
	switch a := arr.(type) {
	case *array.Int64:
		for r, x := range a.Int64Values() {
			if a.IsValid(r) && (below(v.Min, x) || above(v.Max, x)) {
				add(r)
			}
		}
	case *array.Float64:
		for r, x := range a.Float64Values() {
			if a.IsValid(r) && ((v.Min != nil && x < v.Min.Float) || (v.Max != nil && x > v.Max.Float)) {
				add(r)
			}
		}
	case *array.String:
		if v.MinLength >= 0 || v.MaxLength >= 0 {
			for r := range a.Len() {
				if a.IsValid(r) && outside(v, int64(utf8.RuneCountInString(a.Value(r)))) {
					add(r)
				}
			}
		}
	case array.ListLike:
		if v.MinLength >= 0 || v.MaxLength >= 0 {
			for r := range a.Len() {
				if lo, hi := a.ValueOffsets(r); a.IsValid(r) && outside(v, hi-lo) {
					add(r)
				}
			}
		}
	}
	if len(rows) > len(shown) {
		shown = append(shown, fmt.Sprintf("and %d more", len(rows)-len(shown)))
	}
	return rows, strings.Join(shown, ", ")
}

// below and above compare an int value with a bound exactly when the
// bound is an int.
func below(b *features.Bound, x int64) bool {
	if b == nil {
		return false
	}
	if b.IsInt {
		return x < b.Int
	}
	return float64(x) < b.Float
}

func above(b *features.Bound, x int64) bool {
	if b == nil {
		return false
	}
	if b.IsInt {
		return x > b.Int
	}
	return float64(x) > b.Float
}

func outside(v *features.Validation, n int64) bool {
	return (v.MinLength >= 0 && n < v.MinLength) || (v.MaxLength >= 0 && n > v.MaxLength)
}

// nullRows is arr with rows null: its buffers shared, but a new validity
// bitmap.
func nullRows(mem memory.Allocator, arr arrow.Array, rows []int) arrow.Array {
	d := arr.Data()
	off, n := d.Offset(), d.Len()
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(off + n))))
	bits := buf.Bytes()
	if old := d.Buffers()[0]; old != nil {
		copy(bits, old.Bytes())
	} else {
		for k := range bits {
			bits[k] = 0xff
		}
	}
	for _, r := range rows {
		bitutil.ClearBit(bits, off+r)
	}
	bufs := slices.Clone(d.Buffers())
	bufs[0] = buf
	nd := array.NewData(d.DataType(), n, bufs, d.Children(), array.UnknownNullCount, off)
	buf.Release()
	defer nd.Release()
	return array.MakeFromData(nd)
}

// invalidRows is the rows of column i of f that failed a strict
// validation (nil rows: none).
func (f *frameData) invalidRows(i int) violation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invalid[i]
}

// validRows is the rows of f not in invalid, as Gather indices.
func validRows(n int, invalid []int) []int32 {
	keep := make([]int32, 0, n-len(invalid))
	for k, j := 0, 0; k < n; k++ {
		if j < len(invalid) && invalid[j] == k {
			j++
			continue
		}
		keep = append(keep, int32(k))
	}
	return keep
}
