package functions

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// strs returns the string views of args (the binder has cast them to utf8).
func strs(args []arrow.Array) []*array.String {
	out := make([]*array.String, len(args))
	for i, a := range args {
		out[i] = a.(*array.String)
	}
	return out
}

// concatKernel joins its arguments with sep; any null argument makes the
// row null.
func concatKernel(sep string) Kernel {
	return func(ctx *Context, args []arrow.Array) (arrow.Array, error) {
		n := batchLen(args)
		ss := strs(args)
		b := array.NewStringBuilder(ctx.Mem)
		defer b.Release()
		b.Reserve(n)
		size := 0
		for _, s := range ss {
			size += len(s.ValueBytes())
		}
		b.ReserveData(size + n*len(sep)*len(ss))
		var row []byte
		for i := 0; i < n; i++ {
			if !rowValid(args, i) {
				b.AppendNull()
				continue
			}
			row = row[:0]
			for j, s := range ss {
				if j > 0 {
					row = append(row, sep...)
				}
				row = append(row, s.Value(i)...)
			}
			b.BinaryBuilder.Append(row)
		}
		return b.NewArray(), nil
	}
}
