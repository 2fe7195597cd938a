// Package suggest finds the valid name nearest to a mistyped one, for the
// "did you mean" of error messages. It knows nothing of what the names are.
package suggest

import "strings"

// Nearest returns the candidate closest to name by edit distance (case
// insensitive), or "" when none is close enough to be a plausible typo.
func Nearest(name string, candidates []string) string {
	best, bestD := "", -1
	lname := strings.ToLower(name)
	for _, c := range candidates {
		d := EditDistance([]rune(lname), []rune(strings.ToLower(c)))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(name)/3) {
		return ""
	}
	return best
}

// DidYouMean formats Nearest as a message suffix: ` (did you mean "x"?)`.
func DidYouMean(name string, candidates []string) string {
	if n := Nearest(name, candidates); n != "" {
		return ` (did you mean "` + n + `"?)`
	}
	return ""
}

// EditDistance is the Levenshtein distance between a and b: the fewest
// single-character insertions, deletions and substitutions turning a into b.
func EditDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
