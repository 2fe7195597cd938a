package planner

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/operators/coerce"
	"github.com/fletch-engine/fletch/statement"
)

// eval evaluates b over all rows of frame f.
func (r *run) eval(f *frameData, b bexpr) (arrow.Array, error) {
	switch b := b.(type) {
	case *colRef:
		c, err := r.column(f, b.idx)
		if err != nil {
			return nil, err
		}
		c.Retain()
		return c, nil
	case *literal:
		if f.n >= memoRows {
			return r.memo(f, memoKey(b), func() (arrow.Array, error) { return operators.Constant(r.mem, b.typ, b.value, f.n) })
		}
		return operators.Constant(r.mem, b.typ, b.value, f.n)
	case *windowStart:
		bld := array.NewTimestampBuilder(r.mem, b.dataType().(*arrow.TimestampType))
		defer bld.Release()
		bld.Reserve(f.n)
		w := b.window.Microseconds()
		for _, t := range f.rowTimes() {
			bld.UnsafeAppend(arrow.Timestamp(t - w))
		}
		return bld.NewArray(), nil
	case *call:
		if f.n >= memoRows {
			return r.memoCall(f, b)
		}
		return r.evalCall(f, b)
	case *castTo:
		v, err := r.eval(f, b.x)
		if err != nil {
			return nil, err
		}
		defer v.Release()
		return coerce.Array(r.mem, v, b.typ)
	case *hasOneRef:
		cd, err := r.child(f, b.child)
		if err != nil {
			return nil, err
		}
		inner, err := r.eval(cd.data, b.inner)
		if err != nil {
			return nil, err
		}
		defer inner.Release()
		return operators.Gather(r.mem, inner, cd.gather)
	case *aggregation:
		return r.aggregate(f, b)
	case *manyRows:
		return r.manyRows(f, b)
	}
	return nil, fmt.Errorf("cannot evaluate %T", b)
}

// memoRows is the frame size from which calls are memoized: below it,
// recomputing is cheaper than looking up.
const memoRows = 256

// memoCall evaluates call b over frame f once per run.
func (r *run) memoCall(f *frameData, b *call) (arrow.Array, error) {
	return r.memo(f, b.key, func() (arrow.Array, error) { return r.evalCall(f, b) })
}

// memo computes the value keyed key over frame f once per run: a call, or
// a constant (a compiled Python resolver repeats its 0.0 and None).
func (r *run) memo(f *frameData, key string, compute func() (arrow.Array, error)) (arrow.Array, error) {
	f.mu.Lock()
	v, ok := f.memo[key]
	f.mu.Unlock()
	if ok {
		v.Retain()
		return v, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.memo[key]; ok {
		// Another goroutine filled it meanwhile.
		v.Release()
		v = prev
	} else {
		if f.memo == nil {
			f.memo = map[string]arrow.Array{}
		}
		f.memo[key] = v
	}
	v.Retain()
	return v, nil
}

func (r *run) evalCall(f *frameData, b *call) (arrow.Array, error) {
	if b.fused != nil && f.n >= fuseRows {
		if out, ok, err := r.evalFused(f, b); ok {
			return out, err
		}
	}
	args := make([]arrow.Array, len(b.args))
	defer func() {
		for _, a := range args {
			if a != nil {
				a.Release()
			}
		}
	}()
	for i, a := range b.args {
		v, err := r.eval(f, a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	out, err := b.fn.Exec(r.fctx, args)
	if err != nil {
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf("%s: %v", b, err)}
	}
	return out, nil
}

// aggregationInputs drops from groups (a group per row of d, -1 for none)
// the rows a's filters drop (all but its filter skip; -1: all), and
// evaluates a's value and sort key over d (nil when a has none); the
// caller releases them.
func (r *run) aggregationInputs(d *frameData, a *aggregation, groups []int32, skip int) (values, sortKey arrow.Array, err error) {
	for i, flt := range a.filters {
		if i == skip {
			continue
		}
		m, err := r.eval(d, flt)
		if err != nil {
			return nil, nil, err
		}
		mask := m.(*array.Boolean)
		for j := range groups {
			if mask.IsNull(j) || !mask.Value(j) {
				groups[j] = -1
			}
		}
		m.Release()
	}
	if a.value != nil {
		if values, err = r.eval(d, a.value); err != nil {
			return nil, nil, err
		}
	}
	if a.sortBy != nil {
		if sortKey, err = r.eval(d, a.sortBy); err != nil {
			release([]arrow.Array{values})
			return nil, nil, err
		}
	}
	return values, sortKey, nil
}

func (r *run) aggregate(f *frameData, a *aggregation) (arrow.Array, error) {
	if r.tiled(a) {
		return r.tiledAggregate(f, a)
	}
	cd, err := r.child(f, a.child)
	if err != nil {
		return nil, err
	}
	if cd.events != nil {
		return r.slidingAggregate(f, cd, a)
	}
	d := cd.data
	groups := make([]int32, d.n)
	copy(groups, cd.parentRows)
	values, sortKey, err := r.aggregationInputs(d, a, groups, -1)
	if err != nil {
		return nil, err
	}
	defer release([]arrow.Array{values, sortKey})
	out, err := aggregate.Grouped(r.mem, a.fn, values, sortKey, groups, f.n)
	if err != nil {
		return nil, &statement.Error{Kind: statement.Internal, Msg: fmt.Sprintf("%s: %v", a.text, err)}
	}
	return out, nil
}

// manyRows builds the list<struct> of each parent row's related rows. The
// has-many frame holds them grouped by parent row, in parent order.
func (r *run) manyRows(f *frameData, m *manyRows) (arrow.Array, error) {
	cd, err := r.child(f, m.child)
	if err != nil {
		return nil, err
	}
	d := cd.data
	fields := make([]arrow.Array, len(m.cols))
	for i, idx := range m.cols {
		c, err := r.column(d, idx)
		if err != nil {
			return nil, err
		}
		fields[i] = c
	}
	structType := m.typ.(*arrow.ListType).Elem().(*arrow.StructType)
	sd := array.NewData(structType, d.n, []*memory.Buffer{nil}, dataOf(fields), 0, 0)
	structs := array.NewStructData(sd)
	sd.Release()
	defer structs.Release()
	offsets := make([]int32, f.n+1)
	for _, p := range cd.parentRows {
		offsets[p+1]++
	}
	for i := 1; i <= f.n; i++ {
		offsets[i] += offsets[i-1]
	}
	offBuf := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets))
	data := array.NewData(m.typ, f.n, []*memory.Buffer{nil, offBuf}, []arrow.ArrayData{structs.Data()}, 0, 0)
	defer data.Release()
	return array.NewListData(data), nil
}

func dataOf(arrs []arrow.Array) []arrow.ArrayData {
	out := make([]arrow.ArrayData, len(arrs))
	for i, a := range arrs {
		out[i] = a.Data()
	}
	return out
}
