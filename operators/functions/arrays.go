package functions

import (
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators"
)

// fixed are the fixed-width value types kernels compute on.
type fixed interface {
	int64 | float64 | int32 | arrow.Timestamp | arrow.Date32
}

// values returns the logical values of a fixed-width array (null slots hold
// arbitrary values).
func values[T fixed](a arrow.Array) []T {
	d := a.Data()
	buf := d.Buffers()[1]
	if buf == nil || a.Len() == 0 {
		return nil
	}
	return arrow.GetData[T](buf.Bytes())[d.Offset() : d.Offset()+d.Len()]
}

// validity returns a fresh validity bitmap (offset 0) that is the AND of the
// arguments' validities, and its null count; nil when nothing is null.
func validity(mem memory.Allocator, n int, args ...arrow.Array) (*memory.Buffer, int) {
	var out *memory.Buffer
	for _, a := range args {
		if a.NullN() == 0 {
			continue
		}
		bm, off := a.NullBitmapBytes(), int64(a.Data().Offset())
		if out == nil {
			out = memory.NewResizableBuffer(mem)
			out.Resize(int(bitutil.BytesForBits(int64(n))))
			bitutil.CopyBitmap(bm, int(off), n, out.Bytes(), 0)
			continue
		}
		bitutil.BitmapAnd(out.Bytes(), bm, 0, off, out.Bytes(), 0, int64(n))
	}
	if out == nil {
		return nil, 0
	}
	return out, n - bitutil.CountSetBits(out.Bytes(), 0, n)
}

// allocFixed allocates an n-value buffer of T.
func allocFixed[T fixed](mem memory.Allocator, n int) (*memory.Buffer, []T) {
	buf := memory.NewResizableBuffer(mem)
	var zero T
	buf.Resize(n * int(unsafe.Sizeof(zero)))
	if n == 0 {
		return buf, nil
	}
	return buf, arrow.GetData[T](buf.Bytes())[:n]
}

// allocBits allocates an n-bit bitmap, cleared.
func allocBits(mem memory.Allocator, n int) *memory.Buffer {
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(int(bitutil.BytesForBits(int64(n))))
	clear(buf.Bytes())
	return buf
}

// bitsOf returns an array's boolean values as an offset-0 bitmap: the
// buffer itself when aligned, else a copy (release with the returned func).
// An empty array may have no buffer at all.
func bitsOf(mem memory.Allocator, a arrow.Array) ([]byte, func()) {
	d := a.Data()
	if a.Len() == 0 {
		return nil, func() {}
	}
	buf := d.Buffers()[1].Bytes()
	if d.Offset() == 0 {
		return buf, func() {}
	}
	c := allocBits(mem, a.Len())
	bitutil.CopyBitmap(buf, d.Offset(), a.Len(), c.Bytes(), 0)
	return c.Bytes(), c.Release
}

// validBits returns an array's validity as an offset-0 bitmap (all set when
// it has no nulls); release with the returned func.
func validBits(mem memory.Allocator, a arrow.Array) ([]byte, func()) {
	n := a.Len()
	c := allocBits(mem, n)
	switch {
	case a.NullN() == 0:
		bitutil.SetBitsTo(c.Bytes(), 0, int64(n), true)
	case a.NullBitmapBytes() == nil:
		// a null-typed array has no bitmap: every row null, c is clear
	default:
		bitutil.CopyBitmap(a.NullBitmapBytes(), a.Data().Offset(), n, c.Bytes(), 0)
	}
	return c.Bytes(), c.Release
}

// mapFixed applies f elementwise to one fixed-width argument; nulls stay
// null.
func mapFixed[I, O fixed](out arrow.DataType, f func(I) O) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		in := values[I](args[0])
		buf, res := allocFixed[O](ctx.Mem, n)
		for i, v := range in {
			res[i] = f(v)
		}
		valid, nulls := validity(ctx.Mem, n, args[0])
		return operators.FromBuffers(out, n, valid, nulls, buf), nil
	}
}

// zipFixed applies f elementwise to two fixed-width arguments; a row is null
// when either argument is.
func zipFixed[A, B, O fixed](out arrow.DataType, f func(A, B) O) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		a, b := values[A](args[0]), values[B](args[1])
		buf, res := allocFixed[O](ctx.Mem, n)
		b = b[:len(a)]
		for i := range a {
			res[i] = f(a[i], b[i])
		}
		valid, nulls := validity(ctx.Mem, n, args...)
		return operators.FromBuffers(out, n, valid, nulls, buf), nil
	}
}

// zipFixedOK is zipFixed for functions that may themselves yield null
// (ok false): safe_divide, mod by zero, ...
func zipFixedOK[A, B, O fixed](out arrow.DataType, f func(A, B) (O, bool)) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := args[0].Len()
		a, b := values[A](args[0]), values[B](args[1])
		buf, res := allocFixed[O](ctx.Mem, n)
		valid, _ := validity(ctx.Mem, n, args...)
		if valid == nil {
			valid = allocBits(ctx.Mem, n)
			bitutil.SetBitsTo(valid.Bytes(), 0, int64(n), true)
		}
		vb := valid.Bytes()
		b = b[:len(a)]
		for i := range a {
			if !bitutil.BitIsSet(vb, i) {
				continue
			}
			var ok bool
			if res[i], ok = f(a[i], b[i]); !ok {
				bitutil.ClearBit(vb, i)
			}
		}
		return operators.FromBuffers(out, n, valid, n-bitutil.CountSetBits(vb, 0, n), buf), nil
	}
}

// rowValid reports whether row i of every argument is non-null.
func rowValid(args []arrow.Array, i int) bool {
	for _, a := range args {
		if a.IsNull(i) {
			return false
		}
	}
	return true
}
