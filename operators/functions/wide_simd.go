//go:build goexperiment.simd && amd64

package functions

import (
	"simd/archsimd"
	"unsafe"
)

// The float loops' wide forms, over the CPU's vector registers through the
// Go toolchain's simd/archsimd (built with GOEXPERIMENT=simd; wide_scalar.go
// otherwise): four rows an instruction with AVX (eight with AVX-512 measured
// no faster: docs/BENCHMARKS.md §12.3), none without; AVX-512's masked
// merge for if_then_else's patches. Each computes a prefix of its rows and says how many; the
// scalar loops finish the rest. The bits are the scalar loops' either way:
// one IEEE operation per row, a NaN operand's payload taken from the first
// operand as SUBSD, ADDSD and MULSD take it (TestFusedMatchesKernels
// compares the two bit for bit).
//
// The loops address rows through pointers, not slices: indexing a slice a
// vector's worth at a time re-derived and re-checked each address, ~40
// scalar instructions around every two vector ones. Every offset read is
// below the row count the caller's slices were cut to.
var (
	avx    = archsimd.X86.AVX()
	avx512 = archsimd.X86.AVX512()
)

func load4(p unsafe.Pointer, off uintptr) archsimd.Float64x4 {
	return archsimd.LoadFloat64x4((*[4]float64)(unsafe.Add(p, off)))
}

func load8(p unsafe.Pointer, off uintptr) archsimd.Float64x8 {
	return archsimd.LoadFloat64x8((*[8]float64)(unsafe.Add(p, off)))
}

func store4(p unsafe.Pointer, off uintptr, v archsimd.Float64x4) {
	v.Store((*[4]float64)(unsafe.Add(p, off)))
}

func store8(p unsafe.Pointer, off uintptr, v archsimd.Float64x8) {
	v.Store((*[8]float64)(unsafe.Add(p, off)))
}

// arithFloatsWide computes res = a op b over the rows up to the last
// multiple of 8 and returns that count.
func arithFloatsWide(op byte, res, a, b []float64) int {
	n := len(res) &^ 7
	if n == 0 || !avx {
		return 0
	}
	a, b = a[:n], b[:n]
	pa, pb, po := unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&res[0])
	end := uintptr(n) * 8
	switch op {
	case '+':
		for off := uintptr(0); off < end; off += 64 {
			x0, x1 := load4(pa, off), load4(pa, off+32)
			store4(po, off, x0.Add(load4(pb, off)))
			store4(po, off+32, x1.Add(load4(pb, off+32)))
		}
	case '-':
		for off := uintptr(0); off < end; off += 64 {
			x0, x1 := load4(pa, off), load4(pa, off+32)
			store4(po, off, x0.Sub(load4(pb, off)))
			store4(po, off+32, x1.Sub(load4(pb, off+32)))
		}
	case '*':
		for off := uintptr(0); off < end; off += 64 {
			x0, x1 := load4(pa, off), load4(pa, off+32)
			store4(po, off, x0.Mul(load4(pb, off)))
			store4(po, off+32, x1.Mul(load4(pb, off+32)))
		}
	default:
		return 0
	}
	return n
}

// cmpFloatsWide compares xs with ys (op: cmpLt, cmpLe or cmpEq) over the
// rows up to the last multiple of 4, bit j of the word for row j, and
// returns the word and that count.
func cmpFloatsWide(op cmpOp, xs, ys []float64) (uint64, int) {
	n := len(xs) &^ 3
	if n == 0 || !avx {
		return 0, 0
	}
	ys = ys[:n]
	px, py := unsafe.Pointer(&xs[0]), unsafe.Pointer(&ys[0])
	var m uint64
	switch op {
	case cmpLt:
		for j := 0; j < n; j += 4 {
			off := uintptr(j) * 8
			m |= uint64(load4(px, off).Less(load4(py, off)).ToBits()) << j
		}
	case cmpLe:
		for j := 0; j < n; j += 4 {
			off := uintptr(j) * 8
			m |= uint64(load4(px, off).LessEqual(load4(py, off)).ToBits()) << j
		}
	case cmpEq:
		for j := 0; j < n; j += 4 {
			off := uintptr(j) * 8
			m |= uint64(load4(px, off).Equal(load4(py, off)).ToBits()) << j
		}
	default:
		return 0, 0
	}
	return m, n
}

// patchWordWide sets res[j] = a[j] for the 64 rows whose bit is set in
// take, eight masked merges; false where the CPU has no AVX-512 masks.
func patchWordWide(res, a []float64, take uint64) bool {
	if !avx512 {
		return false
	}
	res, a = res[:64], a[:64]
	pr, pa := unsafe.Pointer(&res[0]), unsafe.Pointer(&a[0])
	for g := uintptr(0); g < 64; g += 8 {
		m := archsimd.Mask64x8FromBits(uint8(take >> g))
		store8(pr, g*8, load8(pa, g*8).Merge(load8(pr, g*8), m))
	}
	return true
}

// arithPatchWide sets res[j] = x[j] where take's bit j is set, else
// a[j] op b[j], over the rows up to the last multiple of 64, and returns
// that count: eight rows an operation and a masked merge, one pass where
// arithFloatsWide and patchWordWide take two.
func arithPatchWide(op byte, res, a, b, x []float64, take []uint64) int {
	n := len(res) &^ 63
	if n == 0 || !avx512 {
		return 0
	}
	a, b, x = a[:n], b[:n], x[:n]
	pa, pb, px, po := unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&x[0]), unsafe.Pointer(&res[0])
	for w, t := range take[:n/64] {
		base := uintptr(w) * 512
		for g := uintptr(0); g < 64; g += 8 {
			off := base + g*8
			m := archsimd.Mask64x8FromBits(uint8(t >> g))
			var v archsimd.Float64x8
			switch op {
			case '+':
				v = load8(pa, off).Add(load8(pb, off))
			case '-':
				v = load8(pa, off).Sub(load8(pb, off))
			default:
				v = load8(pa, off).Mul(load8(pb, off))
			}
			store8(po, off, load8(px, off).Merge(v, m))
		}
	}
	return n
}

// patch2Wide sets res[j] = a[j] where ta's bit j is set, then b[j] where
// tb's is, over the rows up to the last multiple of 64, and returns that
// count: one load and store of res for two patches.
func patch2Wide(res, a []float64, ta []uint64, b []float64, tb []uint64) int {
	n := len(res) &^ 63
	if n == 0 || !avx512 {
		return 0
	}
	a, b = a[:n], b[:n]
	pa, pb, po := unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&res[0])
	for w := range n / 64 {
		t1, t2 := ta[w], tb[w]
		base := uintptr(w) * 512
		for g := uintptr(0); g < 64; g += 8 {
			off := base + g*8
			v := load8(pa, off).Merge(load8(po, off), archsimd.Mask64x8FromBits(uint8(t1>>g)))
			store8(po, off, load8(pb, off).Merge(v, archsimd.Mask64x8FromBits(uint8(t2>>g))))
		}
	}
	return n
}
