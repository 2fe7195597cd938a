package aggregate

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// TestApproxCountDistinctBias measures the sketch's error from 1× to 10×
// its register count (and below it, from the sparse form's end at 512
// values), where a raw HyperLogLog estimate is biased (the
// switch from linear counting to the raw estimate sits at 2.5×): per
// cardinality, the mean relative error (bias) and the mean absolute
// relative error over many seeds of random 64-bit hashes. The bias must
// stay within 4 standard errors of the mean (1.04/√m/√seeds) plus 0.2 %.
// FLETCH_HLL_SEEDS=1000 gives the figures of docs/TILES.md.
func TestApproxCountDistinctBias(t *testing.T) {
	seeds := 100
	if s, err := strconv.Atoi(os.Getenv("FLETCH_HLL_SEEDS")); err == nil && s > 0 {
		seeds = s
	}
	if testing.Short() {
		seeds = 20
	}
	const m = 1 << Precision
	se := 1.04 / math.Sqrt(m)
	t.Logf("%d registers, %d seeds per cardinality; standard error %.2f %%", m, seeds, se*100)
	t.Logf("%8s %6s %9s %9s %9s", "distinct", "×m", "bias %", "MRE %", "RMSE %")
	for _, x := range []float64{0.13, 0.25, 0.5, 1, 1.5, 2, 2.44, 2.5, 3, 4, 5, 6, 7, 8, 9, 10} {
		n := int(x * m)
		var sum, abs, sq float64
		for seed := range seeds {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
			var s Sketch
			for range n {
				s.Add(rng.Uint64())
			}
			rel := float64(s.Estimate()-int64(n)) / float64(n)
			sum += rel
			abs += math.Abs(rel)
			sq += rel * rel
		}
		bias := sum / float64(seeds)
		t.Logf("%8d %6.2f %+9.3f %9.3f %9.3f", n, x, bias*100, abs/float64(seeds)*100, math.Sqrt(sq/float64(seeds))*100)
		if limit := 4*se/math.Sqrt(float64(seeds)) + 0.002; math.Abs(bias) > limit {
			t.Errorf("%d distinct (%.2f× the registers): bias %+.3f %%, beyond %.3f %%", n, x, bias*100, limit*100)
		}
	}
}

// BenchmarkSketch: building one sketch per group (1M values, 100 or
// 10,000 distinct per group) and merging 90 serialized tile sketches of
// 200 distinct values each, as a 90-day window of day tiles does.
//
//	go test -run '^$' -bench BenchmarkSketch -benchmem ./operators/aggregate
func BenchmarkSketch(b *testing.B) {
	for _, per := range []int{100, 10000} {
		b.Run("build/"+strconv.Itoa(per)+"_per_group", func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 1 << 20
			hs := make([]uint64, n)
			groups := make([]int32, n)
			ngroups := n / per / 3
			for i := range hs {
				g := rng.IntN(ngroups)
				groups[i] = int32(g)
				hs[i] = mix64(uint64(g*per + rng.IntN(per)))
			}
			b.ResetTimer()
			for range b.N {
				sk := make([]Sketch, ngroups)
				for i, g := range groups {
					sk[g].Add(hs[i])
				}
				for i := range sk {
					_ = sk[i].Estimate()
				}
			}
		})
	}
	b.Run("merge/90_tiles", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		blobs := make([][]byte, 90)
		for i := range blobs {
			var s Sketch
			for range 200 {
				s.Add(mix64(uint64(rng.IntN(5000))))
			}
			blobs[i], _ = s.MarshalBinary()
		}
		b.ResetTimer()
		for range b.N {
			var acc Sketch
			for _, blob := range blobs {
				var s Sketch
				if err := s.UnmarshalBinary(blob); err != nil {
					b.Fatal(err)
				}
				acc.Merge(&s)
			}
			_ = acc.Estimate()
		}
	})
}
