package packed

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/storetest"
)

// The decoding part of an online store's Get alone: K entities × 50 float
// features into the answer, over entities packed once.
func BenchmarkUnpack(b *testing.B) {
	for _, k := range []int{1, 10000} {
		b.Run(fmt.Sprintf("%dx50", k), func(b *testing.B) {
			mem := memory.NewGoAllocator()
			names := make([]string, 50)
			for i := range names {
				names[i] = fmt.Sprintf("f%d", i)
			}
			rec := storetest.FloatRecord(mem, names, k, func(r, i int) float64 { return float64(r*50 + i) })
			defer rec.Release()
			blobs := make([]string, k)
			for r := range blobs {
				buf, err := Append(nil, t0, rec, r)
				if err != nil {
					b.Fatal(err)
				}
				blobs[r] = string(buf)
			}
			b.ReportAllocs()
			for b.Loop() {
				vb, err := stores.NewValuesBuilder(mem, rec.Schema(), k)
				if err != nil {
					b.Fatal(err)
				}
				u := NewUnpacker(rec.Schema())
				for r, blob := range blobs {
					if err := u.Unpack(vb, r, blob); err != nil {
						b.Fatal(err)
					}
				}
				vb.Finish().Release()
				vb.Release()
			}
		})
	}
}
