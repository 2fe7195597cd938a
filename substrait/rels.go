package substrait

import (
	"strings"

	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// column is one output column of a relation: the fletch expression that
// computes it, and, when it passes a column of the read through unchanged,
// that column's name (which filters need: they name key columns).
type column struct {
	node expr.Node
	base string
}

// rel reads a relation into its output columns. filtered tells whether a
// filter lies above it: a filter under a fetch is fine (LIMIT applies to the
// named rows), a fetch under a filter is not (it would cut the table before
// naming rows, which fletch has no table to do).
func (r *reader) rel(rel *pb.Rel, depth int, filtered bool) ([]column, error) {
	if depth > maxDepth {
		return nil, errorf(statement.Unsupported, "relations nested deeper than %d", maxDepth)
	}
	var cols []column
	var common *pb.RelCommon
	var err error
	switch {
	case rel.GetRead() != nil:
		read := rel.GetRead()
		common = read.GetCommon()
		cols, err = r.read(read)
	case rel.GetFilter() != nil:
		f := rel.GetFilter()
		common = f.GetCommon()
		if cols, err = r.input(f.GetInput(), "filter", depth, true); err == nil {
			err = r.condition(f.GetCondition(), cols, "filter")
		}
	case rel.GetProject() != nil:
		p := rel.GetProject()
		common = p.GetCommon()
		if cols, err = r.input(p.GetInput(), "project", depth, filtered); err == nil {
			in := cols
			for i, e := range p.GetExpressions() {
				n, err := r.expr(e, in, 0)
				if err != nil {
					return nil, err
				}
				if n == nil {
					return nil, errorf(statement.InvalidInput, "project: expression %d is empty", i)
				}
				c := column{node: n}
				if ref, ok := n.(*expr.Ref); ok {
					c.base = strings.Join(ref.Path, ".")
				}
				cols = append(cols, c)
			}
		}
	case rel.GetFetch() != nil:
		f := rel.GetFetch()
		common = f.GetCommon()
		if filtered {
			return nil, errorf(statement.Unsupported, "a fetch below a filter is not supported: the filter names the input rows, so the fetch (LIMIT) goes above it")
		}
		if err = r.fetch(f); err == nil {
			cols, err = r.input(f.GetInput(), "fetch", depth, false)
		}
	default:
		return nil, errorf(statement.Unsupported, "%s relations are not supported: a fletch query is a read of one feature class with filter, project and fetch", oneof(rel, "rel_type"))
	}
	if err != nil {
		return nil, err
	}
	return emit(common, cols, oneof(rel, "rel_type"))
}

// input reads the input of a filter, project or fetch.
func (r *reader) input(in *pb.Rel, of string, depth int, filtered bool) ([]column, error) {
	if in == nil {
		return nil, errorf(statement.InvalidInput, "%s has no input relation", of)
	}
	return r.rel(in, depth+1, filtered)
}

// emit applies a relation's output mapping.
func emit(common *pb.RelCommon, cols []column, of string) ([]column, error) {
	m := common.GetEmit()
	if m == nil {
		return cols, nil
	}
	out := make([]column, len(m.GetOutputMapping()))
	for i, j := range m.GetOutputMapping() {
		if j < 0 || int(j) >= len(cols) {
			return nil, errorf(statement.InvalidInput, "%s: output mapping %d refers to field %d of %d", of, i, j, len(cols))
		}
		out[i] = cols[j]
	}
	return out, nil
}

// read resolves a named-table read: the table is a feature class, the base
// schema's top-level names are its features (or __as_of__), and a filter
// pushed into the read is a filter like any other.
func (r *reader) read(read *pb.ReadRel) ([]column, error) {
	nt := read.GetNamedTable()
	if nt == nil {
		return nil, errorf(statement.Unsupported, "%s reads are not supported: read a feature class by name (named_table)", oneof(read, "read_type"))
	}
	if r.class != nil {
		return nil, errorf(statement.Unsupported, "the plan reads two tables: a fletch query reads one feature class")
	}
	class, err := statement.LookupTable(r.graph, nt.GetNames(), expr.Pos{})
	if err != nil {
		return nil, prefixed(err, "read: ")
	}
	r.class = class
	names, err := topNames(read.GetBaseSchema())
	if err != nil {
		return nil, err
	}
	cols := make([]column, len(names))
	for i, n := range names {
		cols[i] = column{node: &expr.Ref{Path: strings.Split(n, ".")}, base: n}
	}
	for _, f := range []*pb.Expression{read.GetFilter(), read.GetBestEffortFilter()} {
		if f != nil {
			if err := r.condition(f, cols, "read filter"); err != nil {
				return nil, err
			}
		}
	}
	if m := read.GetProjection(); m != nil {
		var out []column
		for _, it := range m.GetSelect().GetStructItems() {
			if it.GetChild() != nil {
				return nil, errorf(statement.Unsupported, "read projection: selecting inside a column is not supported")
			}
			if it.GetField() < 0 || int(it.GetField()) >= len(cols) {
				return nil, errorf(statement.InvalidInput, "read projection: field %d of %d", it.GetField(), len(cols))
			}
			out = append(out, cols[it.GetField()])
		}
		cols = out
	}
	return cols, nil
}

// topNames are the names of the top-level columns of a base schema, whose
// names list the fields of nested structs too, depth first.
func topNames(ns *pb.NamedStruct) ([]string, error) {
	names := ns.GetNames()
	types := ns.GetStruct().GetTypes()
	if len(names) == 0 {
		return nil, errorf(statement.InvalidInput, "read: the base schema names no columns")
	}
	if len(types) == 0 {
		return names, nil
	}
	var top []string
	i := 0
	for _, t := range types {
		if i >= len(names) {
			return nil, errorf(statement.InvalidInput, "read: the base schema has %d names for %d types", len(names), len(types))
		}
		top = append(top, names[i])
		i += 1 + nestedNames(t, 0)
	}
	if i != len(names) {
		return nil, errorf(statement.InvalidInput, "read: the base schema has %d names; its types need %d", len(names), i)
	}
	return top, nil
}

// nestedNames counts the names of the struct fields nested in t.
func nestedNames(t *pb.Type, depth int) int {
	if depth > maxDepth {
		return 0
	}
	switch {
	case t.GetStruct() != nil:
		n := 0
		for _, c := range t.GetStruct().GetTypes() {
			n += 1 + nestedNames(c, depth+1)
		}
		return n
	case t.GetList() != nil:
		return nestedNames(t.GetList().GetType(), depth+1)
	case t.GetMap() != nil:
		return nestedNames(t.GetMap().GetKey(), depth+1) + nestedNames(t.GetMap().GetValue(), depth+1)
	}
	return 0
}

// fetch reads a fetch as a LIMIT; fletch returns one row per named input
// row, so only an offset of zero has a meaning.
func (r *reader) fetch(f *pb.FetchRel) error {
	offset := f.GetOffset()
	if e := f.GetOffsetExpr(); e != nil {
		v, err := intLiteral(e, "fetch offset")
		if err != nil {
			return err
		}
		offset = max(v, 0) // null: no offset
	}
	if offset != 0 {
		return errorf(statement.Unsupported, "fetch with offset %d is not supported: the filter's input rows are the rows of the result", offset)
	}
	count := int64(-1)
	switch {
	case f.GetCountExpr() != nil:
		v, err := intLiteral(f.GetCountExpr(), "fetch count")
		if err != nil {
			return err
		}
		count = v
	case f.CountMode != nil:
		count = f.GetCount()
	}
	if count < -1 {
		return errorf(statement.InvalidInput, "fetch count %d is negative", count)
	}
	if count >= 0 && (r.limit < 0 || count < r.limit) {
		r.limit = count
	}
	return nil
}

// intLiteral reads an integer literal of a fetch; null is -1 ("all").
func intLiteral(e *pb.Expression, what string) (int64, error) {
	l := e.GetLiteral()
	if l == nil {
		return 0, errorf(statement.Unsupported, "%s: only a literal is supported", what)
	}
	if l.GetNull() != nil {
		return -1, nil
	}
	v, err := literal(l)
	if err != nil {
		return 0, err
	}
	i, ok := v.(int64)
	if !ok {
		return 0, errorf(statement.InvalidInput, "%s: %v is not an integer", what, v)
	}
	return i, nil
}
