package planner

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/operators/functions"
)

// TestCallKeysStayShort binds a chain of calls as deep as a statement may
// nest them: every call's memo key stays a few bytes long (each key spelled
// its whole sub-tree, so binding a chain cost the square of its depth),
// equal calls share a key, and different ones do not.
func TestCallKeysStayShort(t *testing.T) {
	pl := &planner{funcs: functions.Default()}
	one := &literal{value: int64(1), typ: arrow.PrimitiveTypes.Int64}
	var b bexpr = &colRef{idx: 0, name: "x", typ: arrow.PrimitiveTypes.Int64}
	x := b
	seen := map[string]bool{}
	for depth := range 256 {
		c, err := pl.bindCall(expr.Pos{}, "add", []bexpr{b, one})
		if err != nil {
			t.Fatal(err)
		}
		key := c.(*call).key
		if len(key) > 16 {
			t.Fatalf("depth %d: a %d-byte key %.40q…", depth, len(key), key)
		}
		if seen[key] {
			t.Fatalf("depth %d: key %q is an outer call's too", depth, key)
		}
		seen[key] = true
		b = c
	}
	again, err := pl.bindCall(expr.Pos{}, "add", []bexpr{x, one})
	if err != nil {
		t.Fatal(err)
	}
	first, err := pl.bindCall(expr.Pos{}, "add", []bexpr{x, one})
	if err != nil {
		t.Fatal(err)
	}
	if again.(*call).key != first.(*call).key {
		t.Errorf("x + 1 bound twice: keys %q and %q", again.(*call).key, first.(*call).key)
	}
}
