package functions

import (
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/fletch-engine/fletch/internal/suggest"
)

func init() {
	ab := []string{"a", "b"}
	strPair := func(out arrow.DataType, f func(b array.Builder, x, y []rune)) Kernel {
		return rows(out, func(b array.Builder, a []arrow.Array, i int) {
			f(b, []rune(str(a[0], i)), []rune(str(a[1], i)))
		})
	}
	builtin(
		fn("jaccard_similarity", ab, "|A ∩ B| / |A ∪ B| over the sets of characters of a and b, in 0..1 (DuckDB's jaccard); 0 when both are empty",
			sig(strPair(tFloat, func(b array.Builder, x, y []rune) { putFloat(b, jaccard(x, y)) }), kStr, kStr, kFloat)),
		fn("levenshtein_distance", ab, "minimum number of single-character insertions, deletions and substitutions",
			sig(strPair(tInt, func(b array.Builder, x, y []rune) { putInt(b, int64(suggest.EditDistance(x, y))) }), kStr, kStr, kInt)),
		withNulls(fn("hamming_distance", ab, "number of positions at which equal-length strings differ",
			sig(strPair(tInt, func(b array.Builder, x, y []rune) {
				if len(x) != len(y) {
					b.AppendNull()
					return
				}
				d := 0
				for i := range x {
					if x[i] != y[i] {
						d++
					}
				}
				putInt(b, int64(d))
			}), kStr, kStr, kInt)), propagates+"; null when the lengths differ"),
		fn("jaro_winkler_similarity", ab, "Jaro-Winkler similarity in 0..1 (prefix scale 0.1 over up to 4 characters, applied above a Jaro similarity of 0.7)",
			sig(strPair(tFloat, func(b array.Builder, x, y []rune) { putFloat(b, jaroWinkler(x, y)) }), kStr, kStr, kFloat)),
		withNulls(fn("cosine_similarity", ab, "cosine of the angle between two equal-length float lists",
			sig(listPair(func(x, y []float64) (float64, bool) {
				if len(x) != len(y) || len(x) == 0 {
					return 0, false
				}
				var dot, nx, ny float64
				for i := range x {
					dot, nx, ny = dot+x[i]*y[i], nx+x[i]*x[i], ny+y[i]*y[i]
				}
				return dot / math.Sqrt(nx*ny), true
			}), kListFloat, kListFloat, kFloat)), propagates+" or holds a null; null when lengths differ or are 0"),
		withNulls(fn("dot_product", ab, "sum of the products of two equal-length float lists",
			sig(listPair(func(x, y []float64) (float64, bool) {
				if len(x) != len(y) {
					return 0, false
				}
				var dot float64
				for i := range x {
					dot += x[i] * y[i]
				}
				return dot, true
			}), kListFloat, kListFloat, kFloat)), propagates+" or holds a null; null when lengths differ"),
	)
}

// jaccard compares the character sets as sorted, deduplicated slices
// (x and y are the caller's scratch copies, reordered here).
func jaccard(x, y []rune) float64 {
	slices.Sort(x)
	slices.Sort(y)
	x, y = slices.Compact(x), slices.Compact(y)
	inter := 0
	for i, j := 0, 0; i < len(x) && j < len(y); {
		switch {
		case x[i] == y[j]:
			inter++
			i++
			j++
		case x[i] < y[j]:
			i++
		default:
			j++
		}
	}
	union := len(x) + len(y) - inter
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

func jaroWinkler(a, b []rune) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	window := max(0, max(len(a), len(b))/2-1)
	ma, mb := make([]bool, len(a)), make([]bool, len(b))
	matches := 0
	for i := range a {
		for j := max(0, i-window); j < min(len(b), i+window+1); j++ {
			if !mb[j] && a[i] == b[j] {
				ma[i], mb[j] = true, true
				matches++
				break
			}
		}
	}
	if matches == 0 {
		return 0
	}
	trans, j := 0, 0
	for i := range a {
		if !ma[i] {
			continue
		}
		for !mb[j] {
			j++
		}
		if a[i] != b[j] {
			trans++
		}
		j++
	}
	m := float64(matches)
	jaro := (m/float64(len(a)) + m/float64(len(b)) + (m-float64(trans)/2)/m) / 3
	// Winkler's prefix bonus applies only to already similar strings.
	if jaro <= 0.7 {
		return jaro
	}
	prefix := 0
	for prefix < min(4, len(a), len(b)) && a[prefix] == b[prefix] {
		prefix++
	}
	return jaro + float64(prefix)*0.1*(1-jaro)
}

// listPair applies f to the float elements of two list arguments; a list
// holding a null gives null.
func listPair(f func(x, y []float64) (float64, bool)) Kernel {
	return rows(tFloat, func(b array.Builder, a []arrow.Array, i int) {
		x, okx := floatList(a[0].(*array.List), i)
		y, oky := floatList(a[1].(*array.List), i)
		if !okx || !oky {
			b.AppendNull()
			return
		}
		if v, ok := f(x, y); ok {
			putFloat(b, v)
		} else {
			b.AppendNull()
		}
	})
}

// floatList returns row i of a list<float64> as a slice of its values;
// false when an element is null.
func floatList(l *array.List, i int) ([]float64, bool) {
	lo, hi := l.ValueOffsets(i)
	el := l.ListValues().(*array.Float64)
	for j := lo; j < hi; j++ {
		if el.IsNull(int(j)) {
			return nil, false
		}
	}
	return el.Float64Values()[lo:hi], true
}
