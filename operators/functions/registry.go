// Package functions is fletch's function library: a registry of vectorized
// kernels over Arrow arrays, one entry per `F.*` name (lower, sigmoid,
// jaccard_similarity, ...) plus the operators of expressions (add, equal,
// and, ...).
//
// It knows nothing about features, plans or sources: the planner binds a
// call to a Bound kernel once per plan, and the operators call it on
// each batch.
package functions

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Kernel computes one output array from argument arrays of equal length.
// Arguments are never nil; constants arrive as arrays repeating one value.
// The result belongs to the caller, who releases it.
type Kernel func(ctx *Context, args []arrow.Array) (arrow.Array, error)

// Context carries what a kernel may need besides its arguments.
type Context struct {
	Mem memory.Allocator
}

// Bound is a function resolved for concrete argument types.
type Bound struct {
	Name string
	Out  arrow.DataType
	// Args are the types the kernel computes on: the arguments' after the
	// implicit casts Exec applies.
	Args []arrow.DataType
	// Exec runs the kernel; it casts arguments to the overload's types
	// where the binding chose an implicit cast (int → float).
	Exec Kernel
	// fused is the kernel's form in a fused Program, nil when it has none.
	fused opBuilder
}
