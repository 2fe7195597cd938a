package statement_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/statement"
)

func marketplace(t *testing.T) *features.Graph {
	t.Helper()
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func plus(lit any, at expr.Pos) statement.Output {
	return statement.Output{Expr: &expr.Binary{Op: "+", L: &expr.Ref{Path: []string{"star_rating"}, At: at}, R: &expr.Literal{Value: lit, At: at}}, Name: "b"}
}

// TestKeyIsTyped: statements share a key exactly when they ask for the
// same computation: a literal's type is part of it, positions, key values
// and options are not.
func TestKeyIsTyped(t *testing.T) {
	g := marketplace(t)
	review := g.Class("review")
	in := []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}
	key := func(o statement.Output) string {
		st, err := statement.New(review, in, []statement.Output{o})
		if err != nil {
			t.Fatal(err)
		}
		return st.Key()
	}
	at := expr.Pos{Line: 3, Col: 9}
	distinct := map[string]string{}
	for name, lit := range map[string]any{"int": int64(1), "float": 1.0, "string": "1", "bool": true, "null": nil, "negative zero": math.Copysign(0, -1)} {
		k := key(plus(lit, expr.Pos{}))
		if other, dup := distinct[k]; dup {
			t.Errorf("%s and %s share the key %s", name, other, k)
		}
		distinct[k] = name
		if key(plus(lit, at)) != k {
			t.Errorf("%s: the key depends on positions", name)
		}
	}
	if key(plus(int64(1), expr.Pos{})) == key(statement.Output{Expr: plus(int64(1), expr.Pos{}).Expr, Name: "c"}) {
		t.Error("two output names share a key")
	}

	// The same query with other key values shares the key (one plan).
	seven, err := statement.Build(review, []statement.Output{plus(int64(1), expr.Pos{})}, []statement.Cond{{Cols: []string{"id"}, Tuples: [][]statement.Value{{{Lit: int64(7)}}}}}, -1)
	if err != nil {
		t.Fatal(err)
	}
	eight, err := statement.Build(review, []statement.Output{plus(int64(1), at)}, []statement.Cond{{Cols: []string{"id"}, Tuples: [][]statement.Value{{{Lit: "8"}}}}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if seven.Key() != eight.Key() {
		t.Errorf("keys of one query with other key values differ:\n%s\n%s", seven.Key(), eight.Key())
	}
	param, err := statement.Build(review, []statement.Output{plus(int64(1), expr.Pos{})}, []statement.Cond{{Cols: []string{"id"}, Tuples: [][]statement.Value{{{Param: 1}}}}}, -1)
	if err != nil {
		t.Fatal(err)
	}
	filled, err := param.WithValues("text", []statement.Value{{Lit: int64(9)}})
	if err != nil {
		t.Fatal(err)
	}
	if filled.Key() != param.Key() || len(filled.Params) != 0 || filled.Text != "text" {
		t.Errorf("WithValues: key %q (want %q), %d params", filled.Key(), param.Key(), len(filled.Params))
	}
}

// TestBindInputsConverts: every string kind and integer width binds to an
// int key, and a value that is no integer is an InvalidInput naming it.
func TestBindInputsConverts(t *testing.T) {
	g := marketplace(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	st, err := statement.Build(g.Class("review"), []statement.Output{{Expr: &expr.Ref{Path: []string{"star_rating"}}}},
		[]statement.Cond{{Cols: []string{"id"}, Tuples: [][]statement.Value{{{Param: 1}}}}}, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dt   arrow.DataType
		vals []string
		want string
	}{
		{arrow.BinaryTypes.StringView, []string{"7", " 12 "}, "[7 12]"},
		{arrow.BinaryTypes.LargeString, []string{"7", "12"}, "[7 12]"},
		{arrow.BinaryTypes.String, []string{"7", "12"}, "[7 12]"},
		{arrow.PrimitiveTypes.Int32, []string{"7", "12"}, "[7 12]"},
		{arrow.PrimitiveTypes.Uint8, []string{"7", "12"}, "[7 12]"},
		{arrow.BinaryTypes.StringView, []string{"7", "seven"}, `"seven"`},
	} {
		b := array.NewBuilder(mem, c.dt)
		for _, v := range c.vals {
			if err := b.AppendValueFromString(v); err != nil {
				t.Fatal(err)
			}
		}
		col := b.NewArray()
		b.Release()
		params := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "p", Type: c.dt}}, nil), []arrow.Array{col}, int64(col.Len()))
		col.Release()
		in, err := st.BindInputs(context.Background(), mem, params)
		params.Release()
		if strings.HasPrefix(c.want, `"`) {
			if err == nil || statement.KindOf(err) != statement.InvalidInput || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s %v: %v, want an InvalidInput naming %s", c.dt, c.vals, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.dt, err)
			continue
		}
		if got := in.Column(0).String(); got != c.want || !arrow.TypeEqual(in.Column(0).DataType(), arrow.PrimitiveTypes.Int64) {
			t.Errorf("%s %v: bound %s (%s), want %s as int64", c.dt, c.vals, got, in.Column(0).DataType(), c.want)
		}
		in.Release()
	}
}

// TestNewChecksInputs: the input columns of a statement are features of
// its class (or __as_of__), of a type that converts to theirs.
func TestNewChecksInputs(t *testing.T) {
	g := marketplace(t)
	user := g.Class("user")
	for _, c := range []struct {
		field arrow.Field
		want  string
	}{
		{arrow.Field{Name: "idd", Type: arrow.BinaryTypes.String}, `input column "idd" is not a feature of user (did you mean "id"?)`},
		{arrow.Field{Name: "id", Type: arrow.FixedWidthTypes.Boolean}, `input column "id" is bool; user.id is utf8`},
		{arrow.Field{Name: statement.AsOfColumn, Type: arrow.BinaryTypes.String}, ""},
		{arrow.Field{Name: "id", Type: arrow.PrimitiveTypes.Int16}, ""},
	} {
		_, err := statement.New(user, []arrow.Field{c.field}, nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.field, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s: %v, want %s", c.field, err, c.want)
		}
	}
}

// TestDepthIsBounded: an output nested deeper than MaxDepth is refused
// before anything plans it (a native F.lower( nested 4,000 deep kept a core
// busy for 28 s).
func TestDepthIsBounded(t *testing.T) {
	g := marketplace(t)
	user := g.Class("user")
	in := []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}
	nested := func(depth int) statement.Output {
		var x expr.Node = &expr.Ref{Path: []string{"full_name"}}
		for range depth - 1 {
			x = &expr.Call{Func: "lower", Args: []expr.Node{x}}
		}
		return statement.Output{Expr: x, Name: "x"}
	}
	if _, err := statement.New(user, in, []statement.Output{nested(statement.MaxDepth)}); err != nil {
		t.Errorf("depth %d: %v", statement.MaxDepth, err)
	}
	for _, d := range []int{statement.MaxDepth + 1, 10000} {
		_, err := statement.New(user, in, []statement.Output{nested(d)})
		if statement.KindOf(err) != statement.InvalidInput || !strings.Contains(err.Error(), "deep") {
			t.Errorf("depth %d: %v, want an InvalidInput", d, err)
		}
		_, err = statement.Build(user, []statement.Output{nested(d)}, []statement.Cond{{Cols: []string{"id"}, Tuples: [][]statement.Value{{{Lit: "1"}}}}}, -1)
		if statement.KindOf(err) != statement.InvalidInput {
			t.Errorf("Build, depth %d: %v, want an InvalidInput", d, err)
		}
	}
}
