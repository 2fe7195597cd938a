package pyload_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fletch-engine/fletch/features/pyload"
)

// A query expression reads exactly as the same text written as a feature's
// definition in a repository: the loader's linked tree is the reference.
func TestParseExprReadsAsTheLoader(t *testing.T) {
	for _, src := range []string{
		`_.price * 2 + 1`,
		`F.jaccard_similarity(a=F.lower(_.name), b=F.lower(_.name))`,
		`_.name.lower()`,
		`_.prices.value.mean()`,
		`_.prices[_.kind == "a", _.value, _.value > 1].sum()`,
		`F.when(_.a).then(1).otherwise(2)`,
		`_.total["30d"] / 2`,
		`_.total['7d']`,
		`(_.price * 2).alias("double")`,
	} {
		t.Run(src, func(t *testing.T) {
			g, err := link(fmt.Sprintf(base, src))
			if err != nil {
				t.Fatal(err)
			}
			item := g.Class("Item")
			x, err := pyload.ParseExpr(src)
			if err != nil {
				t.Fatal(err)
			}
			linked, err := pyload.LinkExpr(g, item, x)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := linked.String(), item.Feature("x").Expr.String(); got != want {
				t.Errorf("got  %s\nwant %s (the loader)", got, want)
			}
		})
	}
}

func TestParseExprErrors(t *testing.T) {
	g, err := link(fmt.Sprintf(base, `_.price`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ src, want string }{
		{`_.price +`, `1:1: syntax error`},
		{`_.price; _.name`, `1:1: expected one expression`},
		{`x = 1`, `1:1: unsupported expression "x = 1"`},
		{``, `1:1: expected one expression`},
		{`price * 2`, `1:1: unknown name price: features are referenced as ` + "`_.price`"},
		{`_.prise * 2`, "1:1: Item has no feature prise (did you mean \"price\"?)"},
		{`_.total["8d"]`, `has no 8d window (its windows: 7d, 30d)`},
		{`_.total`, `_.total is windowed: pick a window`},
		{`_.prices.value > 1`, `goes through the has-many prices`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			x, err := pyload.ParseExpr(tt.src)
			if err == nil {
				_, err = pyload.LinkExpr(g, g.Class("Item"), x)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestParseExprSyntaxWithoutErrorNode: tree-sitter flags `00000000000A`
// as an error without a node syntaxErrors names; ParseExpr answered (nil,
// nil), and linking nil panicked (found by flight.FuzzNativeCommand).
func TestParseExprSyntaxWithoutErrorNode(t *testing.T) {
	x, err := pyload.ParseExpr("00000000000A")
	if err == nil || x != nil {
		t.Errorf("ParseExpr(00000000000A) = %v, %v; want a syntax error", x, err)
	}
}
