package planner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
)

func ref(path string) statement.Output {
	return statement.Output{Expr: &expr.Ref{Path: strings.Split(path, ".")}}
}

func userStatement(g *features.Graph, outs ...string) *statement.Statement {
	s := &statement.Statement{Class: g.Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}}
	for _, o := range outs {
		s.Outputs = append(s.Outputs, ref(o))
	}
	return s
}

// The tutorial: asking for first_name and for full_name must give different
// plans — full_name adds the expression over first and last name.
func TestFirstNameAndFullNamePlansDiffer(t *testing.T) {
	_, g := markettest.Fixture(t)
	e := planner.NewEngine(g, nil, nil)
	first, err := e.Prepare(userStatement(g, "first_name"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := e.Prepare(userStatement(g, "full_name"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Explain() == full.Explain() {
		t.Fatalf("same plan for first_name and full_name:\n%s", first.Explain())
	}
	if strings.Contains(first.Explain(), "last_name") || !strings.Contains(full.Explain(), "compute full_name") {
		t.Errorf("first_name plan should fetch no last_name, full_name plan should compute it:\n%s\n%s", first.Explain(), full.Explain())
	}
	// Nothing about reviews is fetched for either: pruned.
	if strings.Contains(full.Explain(), "reviews") {
		t.Errorf("full_name plan fetches reviews:\n%s", full.Explain())
	}
	if !strings.HasPrefix(full.Graph(), "flowchart") {
		t.Errorf("Graph is not a Mermaid flowchart: %q", full.Graph())
	}
	again, err := e.Prepare(userStatement(g, "full_name"))
	if err != nil || again != full {
		t.Errorf("the same shape was planned twice (plan cache): %v", err)
	}
}

func TestPlanErrors(t *testing.T) {
	_, g := markettest.Fixture(t)
	e := planner.NewEngine(g, nil, nil)
	cases := []struct {
		name  string
		shape *statement.Statement
		kind  statement.ErrorKind
		want  string
	}{
		{"unknown feature", userStatement(g, "ful_name"), statement.InvalidInput, `did you mean "full_name"`},
		{"unknown path", userStatement(g, "reviews.star_ratin"), statement.InvalidInput, "aggregate it"},
		{"relation as value", &statement.Statement{Class: e.Graph().Class("review"), Inputs: []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, Outputs: []statement.Output{ref("user.nope")}}, statement.InvalidInput, `user has no feature "nope"`},
		{"missing key input", &statement.Statement{Class: e.Graph().Class("user_item"), Inputs: []arrow.Field{{Name: "user_id", Type: arrow.BinaryTypes.String}}, Outputs: []statement.Output{ref("price_fit")}}, statement.InvalidInput, "item_id"},
		{"wrong input type", &statement.Statement{Class: e.Graph().Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.FixedWidthTypes.Boolean}}, Outputs: []statement.Output{ref("full_name")}}, statement.InvalidInput, "has type bool"},
		{"unknown function", &statement.Statement{Class: e.Graph().Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}},
			Outputs: []statement.Output{{Expr: &expr.Call{Func: "lowr", Args: []expr.Node{&expr.Ref{Path: []string{"full_name"}}}}}}}, statement.InvalidInput, `did you mean "lower"`},
		{"type error", &statement.Statement{Class: e.Graph().Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}},
			Outputs: []statement.Output{{Expr: &expr.Binary{Op: "-", L: &expr.Ref{Path: []string{"full_name"}}, R: &expr.Literal{Value: int64(1)}}}}}, statement.InvalidInput, "subtract"},
		{"chalk_window outside a window", &statement.Statement{Class: e.Graph().Class("user"), Inputs: []arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}},
			Outputs: []statement.Output{{Expr: &expr.ChalkWindow{}}}}, statement.InvalidInput, "windowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Prepare(c.shape)
			if err == nil {
				t.Fatal("planned without error")
			}
			if statement.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v (kind %d), want kind %d containing %q", err, statement.KindOf(err), c.kind, c.want)
			}
		})
	}
}

// A definition that depends on itself is a planning error, not a hang.
func TestCycleIsAnError(t *testing.T) {
	dir := t.TempDir()
	src := "from chalk.features import features, _\n\n@features\nclass Thing:\n    id: int\n    a: int = _.b + 1\n    b: int = _.a * 2\n"
	if err := os.WriteFile(filepath.Join(dir, "thing.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := planner.NewEngine(g, nil, nil)
	_, err = e.Prepare(&statement.Statement{Class: e.Graph().Class("thing"), Inputs: []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, Outputs: []statement.Output{ref("a")}})
	if err == nil || !strings.Contains(err.Error(), "depends on itself") {
		t.Fatalf("got %v, want a cycle error", err)
	}
}

// A failing source is a SourceFailure naming the resolver, and the engine
// answers the next query.
func TestSourceFailureIsReported(t *testing.T) {
	_, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, failingSources{}, mem)
	b := array.NewStringBuilder(mem)
	b.Append("50")
	ids := b.NewArray()
	b.Release()
	defer ids.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{ids}, 1)
	defer in.Release()
	_, err := e.Execute(context.Background(), &statement.Statement{Class: e.Graph().Class("user"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("full_name")}}, in)
	var pe *statement.Error
	if !errors.As(err, &pe) || pe.Kind != statement.SourceFailure || !strings.Contains(err.Error(), "users") {
		t.Fatalf("got %v, want a SourceFailure naming the resolver", err)
	}
}

// failingSources is a source registry whose database is down.
type failingSources struct{}

func (failingSources) Source(string) (stores.Source, error) {
	return nil, errors.New("connection refused")
}

// Integer keys for a str id are read as their decimal text, without leaking
// (arrow-go's integer-to-string cast leaks a buffer: the checked allocator
// caught it).
func TestIntegerKeysForStringIDs(t *testing.T) {
	src, g := markettest.Fixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	b := array.NewInt32Builder(mem)
	b.AppendValues([]int32{50, 7}, nil)
	ids := b.NewArray()
	b.Release()
	defer ids.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}}, nil), []arrow.Array{ids}, 2)
	defer in.Release()
	rec, err := e.Execute(context.Background(), &statement.Statement{Class: e.Graph().Class("user"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("id"), ref("full_name")}}, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var want0, want1 string
	if err := src.DB().QueryRow("SELECT (SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '50'), (SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '7')").Scan(&want0, &want1); err != nil {
		t.Fatal(err)
	}
	if got := rec.Column(0).String(); got != `["50" "7"]` {
		t.Errorf("ids %s", got)
	}
	names := rec.Column(1).(*array.String)
	if names.Value(0) != want0 || names.Value(1) != want1 {
		t.Errorf("full names %s, want %q %q", names, want0, want1)
	}
}
