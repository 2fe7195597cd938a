package planner

import (
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/operators/aggregate"
	"github.com/fletch-engine/fletch/statement"
)

// Sliding windows. A has-many frame pairs each parent row with every
// related row visible at its time, so a windowed aggregation over a heavy
// hitter costs spine rows × events: 400 spine rows of two users with
// 100,000 events each are 40M pairs before any window filter runs. When
// every aggregation over a has-many frame is a window on the related
// class's event time (`_.at > _.chalk_window`, at the event time), the
// frame holds the related rows once each instead, ordered by key and event
// time; each aggregation computes one state per related row (its other
// filters, its value) and each parent row's window is the span of its
// key's rows with t − w < time ≤ t, found by binary search: count, sum and
// mean merge a span by subtracting running totals (aggregate.Prefix), the
// others state by state (aggregate.MergeSpans, as tiles do). The cost is
// events + spine rows × log(events), plus the span for min, max, var, std,
// any and all. (docs/BENCHMARKS.md §24.)

// slide is the window filter of an aggregation: filters[filter] keeps the
// related rows with time > t − window (>= when not strict), time being the
// related class's event time.
type slide struct {
	filter int
	window time.Duration
	strict bool
}

// slidable reports whether a can be computed over a sliding frame with
// window filter s: an aggregation whose states merge exactly in event
// order (not max_by/min_by, whose ties follow the rows' order, nor
// approx_count_distinct, whose per-row sketches cost more than pairs), and
// whose other filters, value and sort key do not read _.chalk_window.
func slidable(a *aggregation, s *slide) bool {
	switch a.fn {
	case "count", "sum", "mean", "var", "std", "min", "max", "any", "all":
	default:
		return false
	}
	for i, f := range a.filters {
		if i != s.filter && readsWindow(f) {
			return false
		}
	}
	return !readsWindow(a.value) && !readsWindow(a.sortBy)
}

// readsWindow reports whether b reads _.chalk_window (or reaches another
// frame, where it could).
func readsWindow(b bexpr) bool {
	switch b := b.(type) {
	case *windowStart, *hasOneRef, *aggregation, *manyRows:
		return true
	case *call:
		return slices.ContainsFunc(b.args, readsWindow)
	case *castTo:
		return readsWindow(b.x)
	}
	return false
}

// markSliding makes sliding the has-many frames of p that only sliding
// windows read, that have no frames below them and read no resolver but
// their origin (a lookup in the frame would be as of the parent row's
// time, which a frame of related rows once each does not have).
func (p *Plan) markSliding() {
	ok := map[*frameNode]bool{}
	var walk func(b bexpr)
	walk = func(b bexpr) {
		switch b := b.(type) {
		case *aggregation:
			if _, seen := ok[b.child]; !seen {
				ok[b.child] = true
			}
			ok[b.child] = ok[b.child] && b.slide != nil
			for _, x := range append(append([]bexpr{}, b.filters...), b.value, b.sortBy) {
				walk(x)
			}
		case *manyRows:
			ok[b.child] = false
		case *call:
			for _, a := range b.args {
				walk(a)
			}
		case *castTo:
			walk(b.x)
		case *hasOneRef:
			walk(b.inner)
		}
	}
	for _, f := range p.frames {
		for _, c := range f.cols {
			if c.expr != nil {
				walk(c.expr)
			}
			if c.raises != nil {
				walk(c.raises)
			}
		}
	}
	for c, yes := range ok {
		c.sliding = yes && c.rel != nil && c.rel.Many && len(c.children) == 0 && len(c.lookups) == 0 && c.origin != nil && c.origin.eventTime != ""
		for _, col := range c.cols {
			if col.kind != colOrigin && col.kind != colExpr {
				c.sliding = false
			}
		}
	}
}

// events orders the related rows of a sliding frame: per distinct parent
// key, its rows by event time.
type events struct {
	// runs[g] .. runs[g+1] are the frame rows of distinct key g, whose
	// event times (µs) are times[runs[g]:runs[g+1]], ascending.
	runs  []int32
	times []int64
	// rowKey is each parent row's distinct key, -1 for none.
	rowKey []int32
}

// slidingFrame fills d, the sliding frame of c below f, with the rows of
// rec (its origin's answer for the distinct keys of keys): those of a
// parent key with an event time, by key and time.
func (r *run) slidingFrame(f *frameData, c *frameNode, keys, distinct arrow.Array, rec arrow.RecordBatch, d *frameData) (*events, error) {
	ix, err := operators.NewKeyIndex(distinct)
	if err != nil {
		return nil, err
	}
	group, err := ix.LookupLatest(rec.Column(fieldIndex(rec, c.origin.keyColumn)), operators.Visibility{})
	if err != nil {
		return nil, err
	}
	ev := &events{}
	if ev.rowKey, err = ix.LookupLatest(keys, operators.Visibility{}); err != nil {
		return nil, err
	}
	ts := rec.Column(fieldIndex(rec, c.origin.eventTime)).(*array.Timestamp)
	us := timestampToMicros(ts.DataType().(*arrow.TimestampType).Unit)
	ng := distinct.Len()
	ev.runs = make([]int32, ng+1)
	for i, g := range group {
		if g >= 0 && ts.IsValid(i) {
			ev.runs[g+1]++
		} else {
			group[i] = -1 // never visible
		}
	}
	for g := 1; g <= ng; g++ {
		ev.runs[g] += ev.runs[g-1]
	}
	n := int(ev.runs[ng])
	rows := make([]int32, n)
	at := slices.Clone(ev.runs[:ng])
	for i, g := range group {
		if g >= 0 {
			rows[at[g]] = int32(i)
			at[g]++
		}
	}
	ev.times = make([]int64, n)
	type event struct {
		t   int64
		row int32
	}
	var buf []event
	for g := range ng {
		run := rows[ev.runs[g]:ev.runs[g+1]]
		buf = buf[:0]
		for _, row := range run {
			buf = append(buf, event{us(int64(ts.Value(int(row)))), row})
		}
		// By time, then by row: the order the pairs had.
		slices.SortFunc(buf, func(a, b event) int {
			if a.t != b.t {
				if a.t < b.t {
					return -1
				}
				return 1
			}
			return int(a.row - b.row)
		})
		for j, e := range buf {
			run[j] = e.row
			ev.times[int(ev.runs[g])+j] = e.t
		}
	}
	// server.limits.max_has_many_rows counts the rows each parent row sees.
	times := f.rowTimes()
	if err := r.checkHasManyCounts(c, keys, func(i int) int {
		g := ev.rowKey[i]
		if g < 0 {
			return 0
		}
		run := ev.times[ev.runs[g]:ev.runs[g+1]]
		hi, _ := slices.BinarySearch(run, times[i]+1)
		return hi
	}); err != nil {
		return nil, err
	}
	d.n, d.origin, d.times = n, rows, ev.times
	return ev, nil
}

// slidingAggregate computes a over the sliding frame cd for the rows of f.
func (r *run) slidingAggregate(f *frameData, cd *childData, a *aggregation) (arrow.Array, error) {
	if a.slide == nil {
		return nil, &statement.Error{Kind: statement.Internal, Msg: fmt.Sprintf("%s: not a sliding window over %s", a.text, a.child.class.Name)}
	}
	d, ev := cd.data, cd.events
	// One state per related row: its own, or none (the aggregation's
	// identity) when a filter drops it.
	groups := make([]int32, d.n)
	for j := range groups {
		groups[j] = int32(j)
	}
	values, sortKey, err := r.aggregationInputs(d, a, groups, a.slide.filter)
	if err != nil {
		return nil, err
	}
	defer release([]arrow.Array{values, sortKey})
	states, err := aggregate.Partial(r.mem, a.fn, values, sortKey, groups, d.n)
	if err != nil {
		return nil, &statement.Error{Kind: statement.Internal, Msg: fmt.Sprintf("%s: %v", a.text, err)}
	}
	defer release(states)
	w := a.slide.window.Microseconds()
	sp := aggregate.Spans{Lo: make([]int32, f.n), Hi: make([]int32, f.n)}
	for i, t := range f.rowTimes() {
		g := ev.rowKey[i]
		if g < 0 {
			continue
		}
		base := ev.runs[g]
		run := ev.times[base:ev.runs[g+1]]
		hi, _ := slices.BinarySearch(run, t+1) // time <= t
		from := t - w                          // time > t - w
		if a.slide.strict {
			from++
		}
		lo, _ := slices.BinarySearch(run[:hi], from)
		sp.Lo[i], sp.Hi[i] = base+int32(lo), base+int32(hi)
	}
	var out arrow.Array
	if p := aggregate.NewPrefix(a.fn, states, ev.runs); p != nil {
		out, err = p.Merge(r.mem, states, sp)
	} else {
		out, err = aggregate.MergeSpans(r.mem, a.fn, states, sp)
	}
	if err != nil {
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf("%s: %v", a.text, err)}
	}
	return out, nil
}
