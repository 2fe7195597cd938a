package pysym_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/pyload"
)

// A body whose expression would outgrow the gas limit (each `if` that
// returns on some paths only copies the rest of the body into both of its
// branches) runs in Python, and says so; a small one is an expression.
func TestGasLimit(t *testing.T) {
	body := func(ifs int) string {
		var b strings.Builder
		for i := range ifs {
			fmt.Fprintf(&b, "    if x > %d:\n        if x > %d:\n            return x\n        x = x * 2\n", i, i+1)
		}
		b.WriteString("    return x\n")
		return b.String()
	}
	for _, c := range []struct {
		ifs  int
		mode features.PyMode
	}{{3, features.PyExpression}, {16, features.PyWorker}} {
		src := "@features\nclass Row:\n    id: int\n    x: float\n    y: float\n\n@online\ndef grow(x: Row.x) -> Row.y:\n" + body(c.ifs)
		g := features.NewGraph()
		if err := pyload.Load(g, []features.SourceFile{{Path: "m.py", Src: []byte(src)}}); err != nil {
			t.Fatal(err)
		}
		r := g.PyResolvers[0]
		if r.Mode != c.mode || (c.mode == features.PyWorker) != strings.Contains(r.Why, "gas: ") {
			t.Errorf("%d ifs: %s (%s)", c.ifs, r.Mode, r.Why)
		}
	}
}
