package functions

import (
	"math"
	"math/rand/v2"
	"testing"
)

// wideSamples are floats where vector and scalar loops could part ways:
// NaNs (two payloads), signed zeros and infinities, subnormals, extremes.
var wideSamples = []float64{
	math.NaN(), math.Float64frombits(0x7ff8_0000_0000_0abc), math.Copysign(0, -1), 0, 1, -1,
	math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
	math.MaxFloat64, -math.MaxFloat64, 0.1, 2.5, -7.25, 1e300, -1e-300,
}

func wideInputs(r *rand.Rand, n int) (a, b []float64) {
	a, b = make([]float64, n), make([]float64, n)
	for i := range a {
		for _, v := range []*float64{&a[i], &b[i]} {
			if r.IntN(3) == 0 {
				*v = wideSamples[r.IntN(len(wideSamples))]
			} else {
				*v = (r.Float64() - 0.5) * 1000
			}
		}
		if r.IntN(8) == 0 {
			b[i] = a[i] // equal operands, for == and <=
		}
	}
	return a, b
}

// sameFloat is bit equality, any NaN equal to any NaN (CPython's answers
// do not show a NaN's payload).
func sameFloat(x, y float64) bool {
	return math.Float64bits(x) == math.Float64bits(y) || math.IsNaN(x) && math.IsNaN(y)
}

// TestFloatLoops: the float loops (vector registers in a GOEXPERIMENT=simd
// build, scalar otherwise: scripts/test runs both) against one Go operation
// per row, for every length up to three words, at every offset of the
// vector width.
func TestFloatLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for n := 0; n <= 200; n++ {
		a, b := wideInputs(r, n)
		for _, op := range []byte{'+', '-', '*'} {
			res := make([]float64, n)
			arithFloats(op, res, a, b)
			for i := range res {
				var want float64
				switch op {
				case '+':
					want = a[i] + b[i]
				case '-':
					want = a[i] - b[i]
				default:
					want = a[i] * b[i]
				}
				if !sameFloat(res[i], want) {
					t.Fatalf("n=%d row %d: %v %c %v = %v, want %v", n, i, a[i], op, b[i], res[i], want)
				}
			}
		}
		if n > 64 {
			continue
		}
		for _, op := range []cmpOp{cmpLt, cmpLe, cmpEq} {
			got := cmpWord(op, a, b)
			for i := range a {
				var want bool
				switch op {
				case cmpLt:
					want = a[i] < b[i]
				case cmpLe:
					want = a[i] <= b[i]
				default:
					want = a[i] == b[i]
				}
				if got>>i&1 == 1 != want {
					t.Fatalf("n=%d row %d: cmp %d of %v and %v is %v, want %v", n, i, op, a[i], b[i], !want, want)
				}
			}
			if n < 64 && got>>n != 0 {
				t.Fatalf("n=%d: bits set past the rows: %064b", n, got)
			}
		}
	}
}

// TestPatchRows: patchRows against a row-by-row copy, for takes sparse,
// dense and whole, on whole and partial words.
func TestPatchRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, n := range []int{1, 63, 64, 65, 128, 200, 512} {
		for _, density := range []int{0, 1, 8, 32, 56, 63, 64} {
			a, res := wideInputs(r, n)
			take := make([]uint64, (n+63)/64)
			for i := 0; i < n; i++ {
				if r.IntN(64) < density {
					take[i/64] |= 1 << (i % 64)
				}
			}
			want := append([]float64(nil), res...)
			for i := range want {
				if take[i/64]>>(i%64)&1 == 1 {
					want[i] = a[i]
				}
			}
			patchRows(res, a, take)
			for i := range res {
				if math.Float64bits(res[i]) != math.Float64bits(want[i]) {
					t.Fatalf("n=%d density %d/64 row %d: %v, want %v", n, density, i, res[i], want[i])
				}
			}
		}
	}
}
