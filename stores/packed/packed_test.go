package packed

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/storetest"
)

// The decoding part of an online store's Get alone: K entities × 50 float
// features into the answer, over entities packed once that store those 50
// or 250 (every fifth asked, or the first 50: an Unpack stops once every
// asked feature is found).
func BenchmarkUnpack(b *testing.B) {
	for _, shape := range []struct {
		k, stored int
		first     bool // the asked are the 50 stored first, not every fifth
	}{{1, 50, false}, {10000, 50, false}, {100, 250, false}, {100, 250, true}} {
		k := shape.k
		name := fmt.Sprintf("%dx50of%d", k, shape.stored)
		if shape.first {
			name += "first"
		}
		b.Run(name, func(b *testing.B) {
			mem := memory.NewGoAllocator()
			names := make([]string, shape.stored)
			for i := range names {
				names[i] = fmt.Sprintf("f%d", i)
			}
			rec := storetest.FloatRecord(mem, names, k, func(r, i int) float64 { return float64(r*50 + i) })
			defer rec.Release()
			asked := storetest.FloatRecord(mem, names[:50], 0, nil)
			defer asked.Release()
			if shape.stored > 50 && !shape.first {
				for i := range 50 {
					names[i] = names[i*shape.stored/50]
				}
				asked = storetest.FloatRecord(mem, names[:50], 0, nil)
				defer asked.Release()
			}
			f := fields(b, rec.Schema(), true)
			blobs := make([]string, k)
			for r := range blobs {
				buf, err := Append(nil, t0, f, rec, r)
				if err != nil {
					b.Fatal(err)
				}
				blobs[r] = string(buf)
			}
			af := fields(b, asked.Schema(), false)
			b.ReportAllocs()
			for b.Loop() {
				vb, err := stores.NewValuesBuilder(mem, asked.Schema(), k)
				if err != nil {
					b.Fatal(err)
				}
				u := NewUnpacker(af)
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

// FuzzEntity: whatever bytes a store hands back (another program's value
// under fletch's key, a torn write), reading and merging them answer an
// error or a value, never a panic; a merge that succeeds reads back.
func FuzzEntity(f *testing.F) {
	mem := memory.NewGoAllocator()
	rec := storetest.FloatRecord(mem, []string{"a", "b", "c"}, 2, func(r, i int) float64 { return float64(r + i) })
	defer rec.Release()
	fs := fields(f, rec.Schema(), true)
	for r := range 2 {
		enc, err := Append(nil, t0.Add(time.Duration(r)*time.Minute), fs, rec, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, enc[:len(enc)/2])
		f.Add([]byte{}, enc)
		f.Add(append(enc[:5:5], enc[13:]...), enc)
	}
	f.Add([]byte{Layout, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, []byte{0})
	f.Fuzz(func(t *testing.T, stored, given []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		read := func(blob string) error {
			vb, err := stores.NewValuesBuilder(mem, rec.Schema(), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer vb.Release()
			err = NewUnpacker(fs).Unpack(vb, 0, blob)
			vb.Finish().Release()
			return err
		}
		_ = read(string(stored))
		merged, err := Merge(string(stored), string(given))
		if err != nil {
			return
		}
		if err := readAll(merged); err != nil {
			t.Errorf("Merge(%q, %q) = %q, which does not read back: %v", stored, given, merged, err)
		}
		_ = read(merged)
	})
}
