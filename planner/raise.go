package planner

import (
	"fmt"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/statement"
)

// Exceptions of Python resolvers run as expressions: where the function
// would raise for a row (features.Feature.Raises), the row's value is null
// and the row's error is reported for every output that reads it — per row
// in a partial run (OutputError.Rows), else as the query's error.

// raise evaluates column i's exceptions over frame f: it records the rows
// that raise and returns arr with those rows null.
func (r *run) raise(f *frameData, i int, col *column, arr arrow.Array) (arrow.Array, error) {
	ex, err := r.eval(f, col.raises)
	if err != nil {
		arr.Release()
		return nil, err
	}
	defer ex.Release()
	if ex.NullN() == ex.Len() {
		return arr, nil
	}
	msgs, ok := ex.(*array.String)
	if !ok {
		arr.Release()
		return nil, fmt.Errorf("the exceptions of %s are %s, not strings", col.name, ex.DataType())
	}
	rows := map[int]string{}
	var list []int
	for k := 0; k < msgs.Len(); k++ {
		if msgs.IsValid(k) {
			rows[k] = msgs.Value(k)
			list = append(list, k)
		}
	}
	f.mu.Lock()
	if f.raised == nil {
		f.raised = map[int]map[int]string{}
	}
	f.raised[i] = rows
	f.mu.Unlock()
	defer arr.Release()
	return nullRows(r.mem, arr, list), nil
}

// rowError is an exception of a resolver for one input row.
type rowError struct {
	resolver, feature, msg string
}

// raisedFor returns, per input row, the exception raised by a Python
// resolver that the root column idx reads, directly or through the frames
// below it; nil when none raised.
func (r *run) raisedFor(root *frameData, idx int) map[int]rowError {
	var out map[int]rowError
	seen := map[colID]bool{}
	var walk func(id colID)
	walk = func(id colID) {
		if seen[id] {
			return
		}
		seen[id] = true
		c := id.frame.cols[id.idx]
		for _, d := range c.deps {
			walk(d)
		}
		if c.raises == nil && c.kind != colPython {
			return
		}
		d, mapping := r.dataOf(root, id.frame)
		if d == nil {
			return
		}
		for row, msg := range d.raisedIn(id.idx) {
			for _, in := range mapping(row) {
				if _, ok := out[in]; ok {
					continue
				}
				if out == nil {
					out = map[int]rowError{}
				}
				out[in] = rowError{resolver: c.py.Name, feature: c.fqn, msg: msg}
			}
		}
	}
	walk(colID{r.p.root, idx})
	return out
}

// dataOf finds the data of frame node target below root, and a function
// mapping a row of it to the input rows that read it.
func (r *run) dataOf(root *frameData, target *frameNode) (*frameData, func(int) []int) {
	var chain []*frameNode
	for n := target; n != nil && n != root.node; n = n.parent {
		chain = append([]*frameNode{n}, chain...)
	}
	d := root
	var links []*childData
	for _, n := range chain {
		d.mu.Lock()
		cd := d.children[n]
		d.mu.Unlock()
		if cd == nil {
			return nil, nil
		}
		links = append(links, cd)
		d = cd.data
	}
	return d, func(row int) []int {
		rows := []int{row}
		for i := len(links) - 1; i >= 0; i-- {
			var up []int
			cd := links[i]
			if chain[i].rel.Many {
				for _, x := range rows {
					up = append(up, int(cd.parentRows[x]))
				}
			} else {
				set := map[int]bool{}
				for _, x := range rows {
					set[x] = true
				}
				for p, g := range cd.gather {
					if g >= 0 && set[int(g)] {
						up = append(up, p)
					}
				}
			}
			rows = up
		}
		return rows
	}
}

// raisedErrors reports the rows of output i whose value a resolver's
// exception nulled: as OutputErrors in a partial run (one per exception
// text, with its rows), else as the run's error.
func (r *run) raisedErrors(root *frameData, i, idx int) ([]OutputError, error) {
	rows := r.raisedFor(root, idx)
	if len(rows) == 0 {
		return nil, nil
	}
	order := make([]int, 0, len(rows))
	for row := range rows {
		order = append(order, row)
	}
	sort.Ints(order)
	name := r.p.schema.Field(i).Name
	if !r.opts.Partial {
		e := rows[order[0]]
		return nil, &statement.Error{Kind: statement.InvalidInput, Msg: fmt.Sprintf("output %s: Python resolver %s raised for %s in %d of %d rows; the first, row %d: %s",
			name, e.resolver, e.feature, len(order), root.n, order[0], e.msg)}
	}
	var out []OutputError
	byMsg := map[string]int{}
	for _, row := range order {
		e := rows[row]
		k, ok := byMsg[e.msg]
		if !ok {
			k = len(out)
			byMsg[e.msg] = k
			out = append(out, OutputError{Output: i, Resolver: e.resolver, Kind: statement.InvalidInput, Message: e.msg})
		}
		out[k].Rows = append(out[k].Rows, row)
	}
	return out, nil
}
