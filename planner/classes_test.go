package planner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// The expected classes are read off examples/marketplace/marketplace.py:
// each output's definition and the relations it goes through.
func TestPlanClasses(t *testing.T) {
	g, e := definitionsOnly(t)
	str, i64 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64
	for _, tc := range []struct {
		class string
		key   []arrow.Field
		out   []string
		want  string
	}{
		{"user", []arrow.Field{{Name: "id", Type: str}}, []string{"first_name", "full_name"}, "user"},
		// a has-many aggregation reads the related class
		{"user", []arrow.Field{{Name: "id", Type: str}}, []string{"average_rating_given"}, "review user"},
		// a has-one reach named by the query
		{"review", []arrow.Field{{Name: "id", Type: i64}}, []string{"star_rating", "item.title"}, "item review"},
		// a has-one reach hidden in a feature's expression, then has-many from there
		{"review", []arrow.Field{{Name: "id", Type: i64}}, []string{"normalized_rating"}, "item review"},
		{"user_item", []arrow.Field{{Name: "user_id", Type: str}, {Name: "item_id", Type: str}}, []string{"price_fit"}, "item item_price user user_item"},
		{"seller", []arrow.Field{{Name: "id", Type: str}}, []string{"item_count", "name"}, "item seller"},
	} {
		shape := &statement.Statement{Class: g.Class(tc.class), Inputs: tc.key}
		for _, o := range tc.out {
			shape.Outputs = append(shape.Outputs, ref(o))
		}
		p, err := e.Prepare(shape)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.class, tc.out, err)
		}
		if got := strings.Join(p.Classes(), " "); got != tc.want {
			t.Errorf("%s %v: Classes() = %s, want %s", tc.class, tc.out, got, tc.want)
		}
	}
}

// TestReads: the classes a feature's value reads, as a plan of it alone
// reads them: its own class, and those its definition reaches.
func TestReads(t *testing.T) {
	g, e := definitionsOnly(t)
	for _, tc := range []struct {
		feature string
		want    []string
	}{
		{"user.full_name", []string{"user"}},
		{"user.average_rating_given", []string{"review", "user"}},
		{"user.average_purchase_price", []string{"item_price", "user"}},
		{"review.normalized_rating", []string{"item", "review"}},
	} {
		c, f, _ := strings.Cut(tc.feature, ".")
		feat := g.Class(c).Feature(f)
		if got := e.Reads(feat); !slices.Equal(got, tc.want) {
			t.Errorf("Reads(%s) = %v, want %v", tc.feature, got, tc.want)
		}
		if again := e.Reads(feat); !slices.Equal(again, tc.want) {
			t.Errorf("Reads(%s) remembered %v", tc.feature, again)
		}
	}
}

// definitionsOnly is the marketplace's graph and an engine over it
// without sources, for what planning alone shows.
func definitionsOnly(t *testing.T) (*features.Graph, *planner.Engine) {
	t.Helper()
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	e := planner.NewEngine(g, nil, nil)
	t.Cleanup(func() { e.Close() })
	return g, e
}
