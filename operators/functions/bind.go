package functions

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/fletch-engine/fletch/internal/suggest"
	"github.com/fletch-engine/fletch/operators/coerce"
)

// kind is a parameter or result type pattern of an overload.
type kind uint8

const (
	kInt kind = iota
	kFloat
	kStr
	kBool
	kTs
	kDate
	kListInt
	kListFloat
	kListStr
	// kT is a type variable: every kT argument unifies to one type T
	// (int with float gives float, date with timestamp gives timestamp).
	kT
	// kListT is list<T>: its element joins the unification of T.
	kListT
	// kList is any list, whatever its element.
	kList
)

var kindNames = [...]string{
	kInt: "int", kFloat: "float", kStr: "str", kBool: "bool", kTs: "datetime", kDate: "date",
	kListInt: "list[int]", kListFloat: "list[float]", kListStr: "list[str]",
	kT: "T", kListT: "list[T]", kList: "list",
}

func (k kind) String() string { return kindNames[k] }

// concrete returns the Arrow type of a concrete kind.
func (k kind) concrete() arrow.DataType {
	switch k {
	case kInt:
		return arrow.PrimitiveTypes.Int64
	case kFloat:
		return arrow.PrimitiveTypes.Float64
	case kStr:
		return arrow.BinaryTypes.String
	case kBool:
		return arrow.FixedWidthTypes.Boolean
	case kTs:
		return arrow.FixedWidthTypes.Timestamp_us
	case kDate:
		return arrow.FixedWidthTypes.Date32
	case kListInt:
		return arrow.ListOf(arrow.PrimitiveTypes.Int64)
	case kListFloat:
		return arrow.ListOf(arrow.PrimitiveTypes.Float64)
	case kListStr:
		return arrow.ListOf(arrow.BinaryTypes.String)
	}
	return nil
}

// overload is one signature of a function with its kernel. When variadic,
// the last argument kind repeats (at least once).
type overload struct {
	args     []kind
	variadic bool
	out      kind
	kernel   Kernel
}

// Func is a registered function: its documentation and overloads.
type Func struct {
	Name string
	// Params names the arguments of the longest overload, for keyword
	// arguments.
	Params []string
	Doc    string
	// Nulls says how the function treats null arguments.
	Nulls     string
	overloads []overload
}

// propagates is the usual null behaviour.
const propagates = "null if any argument is null"

// Registry maps function names to their overloads.
type Registry struct {
	funcs map[string]*Func
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{funcs: map[string]*Func{}} }

// Register adds (or replaces) a function.
func (r *Registry) Register(f *Func) { r.funcs[f.Name] = f }

// Lookup returns the function named name, or nil.
func (r *Registry) Lookup(name string) *Func { return r.funcs[strings.ToLower(name)] }

// Names returns the function names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params returns the parameter names of a function (nil when unknown), so
// that keyword arguments can be placed: F.jaccard_similarity(a=..., b=...).
func (r *Registry) Params(name string) []string {
	if f := r.Lookup(name); f != nil {
		return f.Params
	}
	return nil
}

// Signatures renders the accepted signatures of f, one per overload.
func (f *Func) Signatures() []string {
	out := make([]string, len(f.overloads))
	for i, o := range f.overloads {
		parts := make([]string, len(o.args))
		for j, k := range o.args {
			name := fmt.Sprintf("arg%d", j+1)
			if j < len(f.Params) {
				name = f.Params[j]
			}
			parts[j] = name + ": " + k.String()
			if o.variadic && j == len(o.args)-1 {
				parts[j] = "*" + parts[j]
			}
		}
		out[i] = f.Name + "(" + strings.Join(parts, ", ") + ") -> " + o.out.String()
	}
	return out
}

// Bind resolves name for the argument types: it picks the overload needing
// the fewest implicit casts (int → float, date → datetime, other integer,
// float and string widths to the canonical ones; a null-typed argument
// matches any parameter).
func (r *Registry) Bind(name string, args []arrow.DataType) (*Bound, error) {
	f := r.Lookup(name)
	if f == nil {
		return nil, fmt.Errorf("unknown function %q%s", name, suggest.DidYouMean(name, r.Names()))
	}
	best, bestCost := -1, 0
	var bestCasts []arrow.DataType
	var bestOut arrow.DataType
	for i, o := range f.overloads {
		casts, out, cost, ok := o.match(args)
		if ok && (best < 0 || cost < bestCost) {
			best, bestCost, bestCasts, bestOut = i, cost, casts, out
		}
	}
	if best < 0 {
		names := make([]string, len(args))
		for i, a := range args {
			names[i] = a.String()
		}
		return nil, fmt.Errorf("%s does not accept (%s); accepted: %s",
			f.Name, strings.Join(names, ", "), strings.Join(f.Signatures(), "; "))
	}
	in := make([]arrow.DataType, len(args))
	for i, a := range args {
		in[i] = a
		if bestCasts[i] != nil {
			in[i] = bestCasts[i]
		}
	}
	b := &Bound{Name: f.Name, Out: bestOut, Args: in, Exec: withCasts(f.overloads[best].kernel, bestCasts, bestOut)}
	if len(in) > 0 && fixedType(bestOut) != tyNone {
		b.fused, _ = fusedOp(b)
	}
	return b, nil
}

// match checks args against o and returns the cast target of each argument
// (nil: none), the result type and the number of casts.
func (o *overload) match(args []arrow.DataType) ([]arrow.DataType, arrow.DataType, int, bool) {
	if len(args) != len(o.args) && !(o.variadic && len(args) >= len(o.args)) {
		return nil, nil, 0, false
	}
	want := make([]kind, len(args))
	for i := range args {
		want[i] = o.args[min(i, len(o.args)-1)]
	}
	// Unify the type variable first: it fixes the targets of kT and kListT.
	var t arrow.DataType
	for i, a := range args {
		var cand arrow.DataType
		switch want[i] {
		case kT:
			cand = a
		case kListT:
			if a.ID() == arrow.NULL {
				continue
			}
			lt, ok := a.(*arrow.ListType)
			if !ok {
				return nil, nil, 0, false
			}
			cand = lt.Elem()
		default:
			continue
		}
		var ok bool
		if t, ok = unify(t, canonical(cand)); !ok {
			return nil, nil, 0, false
		}
	}
	if t == nil {
		t = arrow.Null
	}
	casts := make([]arrow.DataType, len(args))
	cost := 0
	for i, a := range args {
		var target arrow.DataType
		switch want[i] {
		case kT:
			target = t
		case kListT:
			target = arrow.ListOf(t)
		case kList:
			if a.ID() == arrow.NULL {
				target = arrow.ListOf(arrow.Null)
			} else if lt, ok := a.(*arrow.ListType); ok {
				target = arrow.ListOf(canonical(lt.Elem()))
			} else {
				return nil, nil, 0, false
			}
		default:
			target = want[i].concrete()
		}
		c, ok := castCost(a, target)
		if !ok {
			return nil, nil, 0, false
		}
		cost += c
		if !arrow.TypeEqual(a, target) {
			casts[i] = target
		}
	}
	var out arrow.DataType
	switch o.out {
	case kT:
		out = t
	case kListT:
		out = arrow.ListOf(t)
	default:
		out = o.out.concrete()
	}
	return casts, out, cost, true
}

// canonical maps an Arrow type to the type fletch computes on (types the
// coercion module does not know stay as they are: they bind exactly).
func canonical(dt arrow.DataType) arrow.DataType {
	if c, ok := coerce.Canonical(dt); ok {
		return c
	}
	return dt
}

// unify joins two types of a type variable; nil and null join anything.
func unify(a, b arrow.DataType) (arrow.DataType, bool) {
	switch {
	case a == nil || a.ID() == arrow.NULL:
		return b, true
	case b.ID() == arrow.NULL || arrow.TypeEqual(a, b):
		return a, true
	}
	pair := func(x, y arrow.Type) bool { return a.ID() == x && b.ID() == y || a.ID() == y && b.ID() == x }
	switch {
	case pair(arrow.INT64, arrow.FLOAT64):
		return arrow.PrimitiveTypes.Float64, true
	case pair(arrow.DATE32, arrow.TIMESTAMP):
		return arrow.FixedWidthTypes.Timestamp_us, true
	case a.ID() == arrow.LIST && b.ID() == arrow.LIST:
		e, ok := unify(a.(*arrow.ListType).Elem(), b.(*arrow.ListType).Elem())
		if !ok {
			return nil, false
		}
		return arrow.ListOf(e), true
	}
	return nil, false
}

// castCost is the price of converting from to target implicitly: 0 for the
// same type or a null, 1 for a widening, !ok when not allowed.
func castCost(from, target arrow.DataType) (int, bool) {
	if from.ID() == arrow.NULL || arrow.TypeEqual(from, target) {
		return 0, true
	}
	c := canonical(from)
	cost := 0
	if !arrow.TypeEqual(c, from) {
		cost = 1
	}
	if arrow.TypeEqual(c, target) {
		return cost, true
	}
	switch {
	case c.ID() == arrow.INT64 && target.ID() == arrow.FLOAT64,
		c.ID() == arrow.DATE32 && target.ID() == arrow.TIMESTAMP:
		return cost + 1, true
	case c.ID() == arrow.LIST && target.ID() == arrow.LIST:
		e, ok := castCost(c.(*arrow.ListType).Elem(), target.(*arrow.ListType).Elem())
		return cost + e, ok
	}
	return 0, false
}

// withCasts wraps a kernel with the implicit casts chosen at bind time. A
// null-typed result needs no kernel: every row is null.
func withCasts(k Kernel, casts []arrow.DataType, out arrow.DataType) Kernel {
	if out.ID() == arrow.NULL {
		return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
			return array.MakeArrayOfNull(ctx.Mem, arrow.Null, batchLen(args)), nil
		}
	}
	need := false
	for _, c := range casts {
		need = need || c != nil
	}
	if !need {
		return k
	}
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		conv := make([]arrow.Array, len(args))
		for i, a := range args {
			if casts[i] == nil {
				conv[i] = a
				continue
			}
			c, err := castArray(ctx, a, casts[i])
			if err != nil {
				releaseAll(conv[:i], args[:i])
				return nil, err
			}
			conv[i] = c
		}
		defer releaseAll(conv, args)
		return k(ctx, conv)
	}
}

// castArray converts a to dt with ctx's memory.
func castArray(ctx *Context, a arrow.Array, dt arrow.DataType) (arrow.Array, error) {
	return coerce.Array(ctx.Mem, a, dt)
}

// releaseAll releases the arrays of conv that are not the originals.
func releaseAll(conv, orig []arrow.Array) {
	for i, c := range conv {
		if c != nil && c != orig[i] {
			c.Release()
		}
	}
}

func batchLen(args []arrow.Array) int {
	if len(args) == 0 {
		return 0
	}
	return args[0].Len()
}
