package sql

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPosAnyOrder checks the incremental line:col against counting from
// the start of the text, for offsets asked in increasing and random order.
func TestPosAnyOrder(t *testing.T) {
	src := "SELECT a,\n  \"é\", b\r\n\tFROM user\nWHERE id = 'ü'\n  AND x = 1"
	p := &parser{src: src, text: src}
	naive := func(off int) (int, int) {
		before := src[:off]
		return strings.Count(before, "\n") + 1, utf8.RuneCountInString(before[strings.LastIndexByte(before, '\n')+1:]) + 1
	}
	var offs []int
	for i := range len(src) + 1 {
		if i == len(src) || utf8.RuneStart(src[i]) {
			offs = append(offs, i)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	shuffled := append([]int(nil), offs...)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, order := range [][]int{offs, shuffled} {
		for _, off := range order {
			got := p.pos(int32(off))
			if line, col := naive(off); got.Line != line || got.Col != col {
				t.Fatalf("pos(%d) = %d:%d, want %d:%d", off, got.Line, got.Col, line, col)
			}
		}
	}
}
