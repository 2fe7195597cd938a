// Package pysym is the symbolic interpreter of Python resolver bodies: it
// runs an `@online` / `@offline` function once, at load time, over symbolic
// values (an expression plus a Python type) instead of rows, and returns
// the expressions of its outputs and of the exception it raises per row.
// Every `if` becomes a conditional expression, every early `return` a
// branch of one; the result is planned and run like any `_` expression, by
// fletch's vectorized kernels.
//
// What it cannot convert (loops, calls into libraries, exceptions as
// control flow, ...) it reports with the construct and its position, so
// that the resolver runs in a Python worker instead. It knows the feature
// types of the parameters and nothing of the graph, planner or sources; the
// syntax comes from features/pyload (tree-sitter), as this package's AST.
package pysym

import "github.com/fletch-engine/fletch/features/expr"

// Pos is a position in a definition file.
type Pos = expr.Pos

// Node is an expression of a resolver body.
type Node interface{ Position() Pos }

// Name is an identifier.
type Name struct {
	ID string
	At Pos
}

// Const is a literal: nil (None), bool, int64, float64 or string.
type Const struct {
	Value any
	At    Pos
}

// BinOp is `L Op R` for + - * / // % ** and the bitwise operators.
type BinOp struct {
	Op   string
	L, R Node
	At   Pos
}

// Unary is `Op X`: "-", "+", "~" or "not".
type Unary struct {
	Op string
	X  Node
	At Pos
}

// BoolOp is `L and R` / `L or R`.
type BoolOp struct {
	Op   string
	L, R Node
	At   Pos
}

// Compare is a comparison chain: Xs[0] Ops[0] Xs[1] Ops[1] Xs[2] ...; Ops
// are == != < <= > >= is "is not" in "not in".
type Compare struct {
	Ops []string
	Xs  []Node
	At  Pos
}

// IfExp is `Then if Cond else Else`.
type IfExp struct {
	Cond, Then, Else Node
	At               Pos
}

// Call is `Fn(Args..., Kw...)`.
type Call struct {
	Fn   Node
	Args []Node
	Kw   []Keyword
	At   Pos
}

// Keyword is a keyword argument.
type Keyword struct {
	Name  string
	Value Node
}

// Attr is `X.Name`.
type Attr struct {
	X    Node
	Name string
	At   Pos
}

// Subscript is `X[Key]`; a slice key is a *Slice.
type Subscript struct {
	X, Key Node
	At     Pos
}

// Slice is `Lo:Hi:Step` inside a subscript; absent parts are nil.
type Slice struct {
	Lo, Hi, Step Node
	At           Pos
}

// Seq is a tuple, list or set display.
type Seq struct {
	Kind string // "tuple", "list", "set"
	Elts []Node
	At   Pos
}

// FString is an f-string: literal text and replacement fields.
type FString struct {
	Parts []FPart
	At    Pos
}

// FPart is literal text (X nil) or a replacement field `{X!Conv:Spec}`.
type FPart struct {
	Lit  string
	X    Node
	Conv string // "", "r", "s", "a"
	Spec string // the format spec, literal (nested fields are Bad)
}

// Bad is a construct the interpreter does not handle; What names it.
type Bad struct {
	What string
	At   Pos
}

func (n *Name) Position() Pos      { return n.At }
func (n *Const) Position() Pos     { return n.At }
func (n *BinOp) Position() Pos     { return n.At }
func (n *Unary) Position() Pos     { return n.At }
func (n *BoolOp) Position() Pos    { return n.At }
func (n *Compare) Position() Pos   { return n.At }
func (n *IfExp) Position() Pos     { return n.At }
func (n *Call) Position() Pos      { return n.At }
func (n *Attr) Position() Pos      { return n.At }
func (n *Subscript) Position() Pos { return n.At }
func (n *Slice) Position() Pos     { return n.At }
func (n *Seq) Position() Pos       { return n.At }
func (n *FString) Position() Pos   { return n.At }
func (n *Bad) Position() Pos       { return n.At }

// Stmt is a statement of a resolver body.
type Stmt interface{ Position() Pos }

// Assign is `a = v`, `a: T = v` or `a, b = v` (Targets in order).
type Assign struct {
	Targets []string
	Value   Node
	At      Pos
}

// AugAssign is `a op= v`.
type AugAssign struct {
	Target string
	Op     string // "+", "-", ...
	Value  Node
	At     Pos
}

// If is `if Cond: Body else: Else`; elif is an If alone in Else.
type If struct {
	Cond       Node
	Body, Else []Stmt
	At         Pos
}

// Return is `return Value` (nil Value: None).
type Return struct {
	Value Node
	At    Pos
}

// ExprStmt is an expression evaluated for nothing (a docstring, `...`).
type ExprStmt struct {
	X  Node
	At Pos
}

// BadStmt is a statement the interpreter does not handle.
type BadStmt struct {
	What string
	At   Pos
}

func (s *Assign) Position() Pos    { return s.At }
func (s *AugAssign) Position() Pos { return s.At }
func (s *If) Position() Pos        { return s.At }
func (s *Return) Position() Pos    { return s.At }
func (s *ExprStmt) Position() Pos  { return s.At }
func (s *BadStmt) Position() Pos   { return s.At }

// Func is a function definition: a resolver or a helper of its module.
type Func struct {
	Name   string
	Params []string
	// Defaults are the default values of the last len(Defaults) params.
	Defaults []Node
	Body     []Stmt
	At       Pos
}

// Module is what a resolver's module offers its body: helper functions and
// constants defined at the top level.
type Module struct {
	Funcs  map[string]*Func
	Consts map[string]Node
}
