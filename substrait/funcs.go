package substrait

import (
	"time"

	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/statement"
)

// binaryOps are the Substrait functions that are operators of fletch
// expressions. divide and modulus follow fletch's (Python's) semantics:
// true division, and a remainder with the divisor's sign.
var binaryOps = map[string]string{
	"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "modulus": "%", "power": "**",
	"equal": "==", "not_equal": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=",
}

// calls are the Substrait functions that are functions of fletch's library,
// by their Substrait name; they take the same arguments.
var calls = map[string]string{
	"abs": "abs", "sign": "sign", "sqrt": "sqrt", "exp": "exp", "ln": "ln", "log10": "log10", "log2": "log2",
	"floor": "floor", "ceil": "ceil", "round": "round",
	"sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan", "atan2": "atan2",
	"sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
	"is_nan": "is_nan", "is_finite": "is_finite", "is_infinite": "is_inf",
	"is_null": "is_null", "is_not_null": "is_not_null", "coalesce": "coalesce", "between": "between",
	"lower": "lower", "upper": "upper", "trim": "trim", "ltrim": "ltrim", "rtrim": "rtrim",
	"char_length": "length", "starts_with": "starts_with", "ends_with": "ends_with", "contains": "contains",
	"replace": "replace", "concat": "concat",
}

// casts are fletch's conversion functions by the Substrait type cast to.
var casts = map[string]string{
	"i8": "to_int", "i16": "to_int", "i32": "to_int", "i64": "to_int",
	"fp32": "to_float", "fp64": "to_float",
	"string": "to_string", "varchar": "to_string", "fixed_char": "to_string",
}

// function resolves the declaration of a scalar function.
func (r *reader) function(fn *pb.Expression_ScalarFunction) (function, error) {
	f, ok := r.funcs[fn.GetFunctionReference()]
	if !ok {
		return function{}, errorf(statement.InvalidInput, "function anchor %d is not declared in the plan's extensions", fn.GetFunctionReference())
	}
	return f, nil
}

// args are the value arguments of a call (the deprecated args field too).
func (r *reader) args(fn *pb.Expression_ScalarFunction, f function) ([]*pb.Expression, error) {
	if len(fn.GetArguments()) == 0 {
		return fn.GetArgs(), nil
	}
	out := make([]*pb.Expression, len(fn.GetArguments()))
	for i, a := range fn.GetArguments() {
		if a.GetValue() == nil {
			return nil, errorf(statement.Unsupported, "function %s: argument %d is a %s; only value arguments are supported", f, i, oneof(a, "arg_type"))
		}
		out[i] = a.GetValue()
	}
	return out, nil
}

// expr converts an expression of a projection over the input columns.
func (r *reader) expr(e *pb.Expression, cols []column, depth int) (expr.Node, error) {
	if depth > maxDepth {
		return nil, errorf(statement.Unsupported, "expressions nested deeper than %d", maxDepth)
	}
	switch {
	case e.GetSelection() != nil:
		i, err := fieldIndex(e.GetSelection(), len(cols), "project")
		if err != nil {
			return nil, err
		}
		return cols[i].node, nil
	case e.GetLiteral() != nil:
		v, err := literal(e.GetLiteral())
		if err != nil {
			return nil, err
		}
		if _, ok := v.(time.Time); ok {
			return nil, errorf(statement.Unsupported, "project: %s literals are not supported outside the filter", oneof(e.GetLiteral(), "literal_type"))
		}
		return &expr.Literal{Value: v}, nil
	case e.GetScalarFunction() != nil:
		return r.call(e.GetScalarFunction(), cols, depth)
	case e.GetCast() != nil:
		c := e.GetCast()
		to := oneof(c.GetType(), "kind")
		fn, ok := casts[to]
		if !ok {
			return nil, errorf(statement.Unsupported, "project: cast to %s is not supported (casts to integers, floats and strings are)", to)
		}
		x, err := r.expr(c.GetInput(), cols, depth+1)
		if err != nil {
			return nil, err
		}
		return &expr.Call{Func: fn, Args: []expr.Node{x}}, nil
	case e.GetIfThen() != nil:
		it := e.GetIfThen()
		w := &expr.When{}
		for _, clause := range it.GetIfs() {
			c, err := r.expr(clause.GetIf(), cols, depth+1)
			if err != nil {
				return nil, err
			}
			t, err := r.expr(clause.GetThen(), cols, depth+1)
			if err != nil {
				return nil, err
			}
			w.Conds, w.Thens = append(w.Conds, c), append(w.Thens, t)
		}
		if len(w.Conds) == 0 {
			return nil, errorf(statement.InvalidInput, "project: an if-then has no if clause")
		}
		if it.GetElse() != nil {
			x, err := r.expr(it.GetElse(), cols, depth+1)
			if err != nil {
				return nil, err
			}
			w.Else = x
		}
		return w, nil
	case e.GetRexType() == nil:
		return nil, errorf(statement.InvalidInput, "project: an expression is empty")
	}
	return nil, errorf(statement.Unsupported, "project: %s expressions are not supported", oneof(e, "rex_type"))
}

// call converts a scalar function to fletch's operator or function.
func (r *reader) call(fn *pb.Expression_ScalarFunction, cols []column, depth int) (expr.Node, error) {
	f, err := r.function(fn)
	if err != nil {
		return nil, err
	}
	pargs, err := r.args(fn, f)
	if err != nil {
		return nil, err
	}
	args := make([]expr.Node, len(pargs))
	for i, a := range pargs {
		if args[i], err = r.expr(a, cols, depth+1); err != nil {
			return nil, err
		}
	}
	arity := func(n int) error {
		if len(args) != n {
			return errorf(statement.InvalidInput, "function %s takes %d argument(s), not %d", f, n, len(args))
		}
		return nil
	}
	name := f.base()
	switch {
	case binaryOps[name] != "":
		if err := arity(2); err != nil {
			return nil, err
		}
		return &expr.Binary{Op: binaryOps[name], L: args[0], R: args[1]}, nil
	case name == "and" || name == "or":
		if len(args) == 0 {
			return nil, errorf(statement.InvalidInput, "function %s has no arguments", f)
		}
		x := args[0]
		for _, a := range args[1:] {
			x = &expr.Binary{Op: name, L: x, R: a}
		}
		return x, nil
	case name == "not" || name == "negate":
		if err := arity(1); err != nil {
			return nil, err
		}
		op := "not"
		if name == "negate" {
			op = "-"
		}
		return &expr.Unary{Op: op, X: args[0]}, nil
	case calls[name] != "":
		return &expr.Call{Func: calls[name], Args: args}, nil
	}
	return nil, errorf(statement.Unsupported, "function %s has no fletch equivalent", f)
}

// check validates the features an output reads, with the nearest valid
// name; __as_of__ only names input rows.
func (r *reader) check(c column) error {
	var err error
	expr.Walk(c.node, func(n expr.Node) bool {
		ref, ok := n.(*expr.Ref)
		if !ok || err != nil {
			return err == nil
		}
		if len(ref.Path) == 1 && ref.Path[0] == statement.AsOfColumn {
			err = errorf(statement.InvalidInput, "%s is only for the filter, not an output", statement.AsOfColumn)
			return false
		}
		if cerr := statement.CheckPath(r.class, ref.Path, expr.Pos{}); cerr != nil {
			err = prefixed(cerr, "")
		}
		return err == nil
	})
	return err
}
