package substrait

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fletch-engine/fletch/statement"
	"github.com/substrait-io/substrait-go/v8/expr"
	"github.com/substrait-io/substrait-go/v8/extensions"
	"github.com/substrait-io/substrait-go/v8/plan"
	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// revisit is what a failure of TestWhyNotSubstraitGo asks of its reader.
const revisit = "revisit docs/SUBSTRAIT.md (Why not substrait-go's typed plan): it says substrait-go cannot read this plan, " +
	"and the reader may now be portable to plan.FromProto"

// goPlan is a plan of the current specification (extensions named by URN)
// over user's id, email and first_name: urn declares more extensions than
// functions_comparison (anchor 1) and functions_string (2), ext more
// functions than equal (anchor 1); root is the root relation, names its
// output names.
func goPlan(t testing.TB, urn, ext, root, names string) []byte {
	t.Helper()
	js := `{"extensionUrns": [{"extensionUrnAnchor": 1, "urn": "extension:io.substrait:functions_comparison"},
    {"extensionUrnAnchor": 2, "urn": "extension:io.substrait:functions_string"}` + urn + `],
  "extensions": [{"extensionFunction": {"extensionUrnReference": 1, "functionAnchor": 1, "name": "equal:any_any"}}` + ext + `],
  "relations": [{"root": {"input": ` + root + `, "names": ` + names + `}}]}`
	var p pb.Plan
	if err := protojson.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	data, err := proto.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Pieces of goPlan's plans.
const (
	goRead    = `{"read": {"baseSchema": {"names": ["id", "email", "first_name"], "struct": {"types": [{"string": {}}, {"string": {}}, {"string": {}}]}}, "namedTable": {"names": ["user"]}}}`
	goField0  = `{"selection": {"directReference": {"structField": {}}, "rootReference": {}}}`
	goField1  = `{"selection": {"directReference": {"structField": {"field": 1}}, "rootReference": {}}}`
	goByID    = `{"scalarFunction": {"functionReference": 1, "outputType": {"bool": {}}, "arguments": [{"value": ` + goField0 + `}, {"value": {"literal": {"string": "1"}}}]}}`
	goFilter  = `{"filter": {"input": ` + goRead + `, "condition": ` + goByID + `}}`
	goColumns = `["id", "email", "first_name"]`
)

// goProject projects one expression over goFilter, keeping it alone.
func goProject(e string) string {
	return `{"project": {"common": {"emit": {"outputMapping": [3]}}, "input": ` + goFilter + `, "expressions": [` + e + `]}}`
}

// typedPlan reads data with substrait-go's typed API, as a port of the
// reader would, reporting a panic rather than failing on it.
func typedPlan(t *testing.T, data []byte) (p *plan.Plan, panicked any, err error) {
	t.Helper()
	var msg pb.Plan
	if err := proto.Unmarshal(data, &msg); err != nil {
		t.Fatal(err)
	}
	c, err := extensions.GetDefaultCollection()
	if err != nil {
		t.Fatal(err)
	}
	// substrait-go's type parser prints its syntax errors to stdout and
	// stderr before it panics; they are expected here, not news.
	stdout, stderr := os.Stdout, os.Stderr
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		os.Stdout, os.Stderr = null, null
		defer null.Close()
	}
	defer func() {
		os.Stdout, os.Stderr = stdout, stderr
		panicked = recover()
	}()
	p, err = plan.FromProto(&msg, c)
	return p, nil, err
}

// TestWhyNotSubstraitGo keeps docs/SUBSTRAIT.md's account of why the reader
// decodes raw protobuf messages true: for each plan, substrait-go's typed
// API (plan.FromProto) refuses it, loses what the reader needs, or panics,
// while the reader answers it. A case fails the day substrait-go handles its
// plan, so the docs are revisited then.
func TestWhyNotSubstraitGo(t *testing.T) {
	g := marketplace(t)
	legacy := func(t testing.TB) []byte {
		data, err := os.ReadFile(filepath.Join("testdata", "duckdb_in_list.json"))
		if err != nil {
			t.Fatal(err)
		}
		return legacyProto(t, data)
	}
	tests := []struct {
		name string
		plan func(t testing.TB) []byte
		// today is what substrait-go does with the plan: an error or a
		// panic containing this text, unless lost is set.
		today string
		// lost tells whether substrait-go's plan still lacks what the
		// reader needs.
		lost func(p *plan.Plan) bool
		// ours is the reader's error, or "" when it reads the plan.
		ours string
		kind statement.ErrorKind
	}{
		{
			name:  "extensions named by URI (before Substrait 0.74), as DuckDB's substrait extension writes them",
			plan:  legacy,
			today: "URN reference 0 could not be resolved",
		},
		{
			name: "a function declared with an undeclared URN anchor (flight's or-of-equals plan)",
			plan: func(t testing.TB) []byte {
				or := `, {"extensionFunction": {"extensionUrnReference": 3, "functionAnchor": 2, "name": "or:bool"}}`
				cond := `{"scalarFunction": {"functionReference": 2, "outputType": {"bool": {}}, "arguments": [{"value": ` + goByID + `}, {"value": ` + goByID + `}]}}`
				return goPlan(t, "", or, `{"filter": {"input": `+goRead+`, "condition": `+cond+`}}`, goColumns)
			},
			today: "URN reference 3 could not be resolved",
		},
		{
			name: "an extension URN of the producer's own (the whole plan is refused, not the function)",
			plan: func(t testing.TB) []byte {
				urn := `, {"extensionUrnAnchor": 5, "urn": "extension:com.example:geo"}`
				ext := `, {"extensionFunction": {"extensionUrnReference": 5, "functionAnchor": 2, "name": "distance:str"}}`
				return goPlan(t, urn, ext, goProject(`{"scalarFunction": {"functionReference": 2, "outputType": {"fp64": {}}, "arguments": [{"value": `+goField1+`}]}}`), `["d"]`)
			},
			today: "URN 'extension:com.example:geo' not found in extension collection",
			ours:  "function extension:com.example:geo#distance:str has no fletch equivalent",
			kind:  statement.Unsupported,
		},
		{
			name: "an unknown function of a standard extension, its signature in the specification's short type names",
			plan: func(t testing.TB) []byte {
				lev := `, {"extensionFunction": {"extensionUrnReference": 2, "functionAnchor": 2, "name": "levenshtein:str_str"}}`
				return goPlan(t, "", lev, goProject(`{"scalarFunction": {"functionReference": 2, "outputType": {"i64": {}}, "arguments": [{"value": `+goField1+`}, {"value": `+goField1+`}]}}`), `["d"]`)
			},
			today: "error parsing input 'str'",
			ours:  "function extension:io.substrait:functions_string#levenshtein:str_str has no fletch equivalent",
			kind:  statement.Unsupported,
		},
		{
			name: "a fetch with count_expr (the current field; count is deprecated)",
			plan: func(t testing.TB) []byte {
				return goPlan(t, "", "", `{"fetch": {"input": `+goFilter+`, "countExpr": {"literal": {"i64": "5"}}}}`, goColumns)
			},
			today: "missing required Offset field for Fetch Relation",
		},
		{
			name: "a read's projection mask (DuckDB writes one)",
			plan: func(t testing.TB) []byte {
				read := strings.Replace(goRead, `"namedTable"`, `"projection": {"select": {"structItems": [{}, {"field": 2}]}}, "namedTable"`, 1)
				return goPlan(t, "", "", `{"filter": {"input": `+read+`, "condition": `+goByID+`}}`, `["id", "first_name"]`)
			},
			today: "root relation has 2 output name(s) but the output schema requires 3",
		},
		{
			name: "a function's arguments in the deprecated args field",
			plan: func(t testing.TB) []byte {
				cond := `{"scalarFunction": {"functionReference": 1, "outputType": {"bool": {}}, "args": [` + goField0 + `, {"literal": {"string": "1"}}]}}`
				return goPlan(t, "", "", `{"filter": {"input": `+goRead+`, "condition": `+cond+`}}`, goColumns)
			},
			lost: func(p *plan.Plan) bool {
				f, ok := p.Relations()[0].Root().Input().(*plan.FilterRel)
				if !ok {
					return false
				}
				fn, ok := f.Condition().(*expr.ScalarFunction)
				return ok && fn.NArgs() == 0
			},
		},
		{
			name: "an output mapping out of range",
			plan: func(t testing.TB) []byte {
				read := strings.Replace(goRead, `{"read": {`, `{"read": {"common": {"emit": {"outputMapping": [7]}}, `, 1)
				return goPlan(t, "", "", `{"filter": {"input": `+read+`, "condition": `+goByID+`}}`, `["id"]`)
			},
			today: "index out of range [7] with length 3",
			ours:  "output mapping 0 refers to field 7 of 3",
			kind:  statement.InvalidInput,
		},
		{
			name: "a read without a base schema",
			plan: func(t testing.TB) []byte {
				return goPlan(t, "", "", `{"filter": {"input": {"read": {"namedTable": {"names": ["user"]}}}, "condition": `+goByID+`}}`, goColumns)
			},
			today: "index out of range [0]",
			ours:  "the base schema names no columns",
			kind:  statement.InvalidInput,
		},
		{
			name:  "a literal without a value",
			plan:  func(t testing.TB) []byte { return goPlan(t, "", "", goProject(`{"literal": {}}`), `["x"]`) },
			today: "unimplemented literal type",
			ours:  "literals are not supported",
			kind:  statement.Unsupported,
		},
		{
			name: "a cast without a type",
			plan: func(t testing.TB) []byte {
				return goPlan(t, "", "", goProject(`{"cast": {"input": `+goField1+`}}`), `["x"]`)
			},
			today: "nil pointer dereference",
			ours:  "cast to none is not supported",
			kind:  statement.Unsupported,
		},
		{
			name: "a base schema of names without types (flight's sort plan has one)",
			plan: func(t testing.TB) []byte {
				read := `{"read": {"baseSchema": {"names": ["id", "email"]}, "namedTable": {"names": ["user"]}}}`
				return goPlan(t, "", "", `{"filter": {"input": `+read+`, "condition": `+goByID+`}}`, `["id", "email"]`)
			},
			today: "nil pointer dereference",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.plan(t)
			_, err := Parse(g, data)
			switch {
			case tt.ours == "" && err != nil:
				t.Errorf("the reader: %v, want a statement", err)
			case tt.ours != "" && (statement.KindOf(err) != tt.kind || !strings.Contains(fmt.Sprint(err), tt.ours)):
				t.Errorf("the reader: %v (kind %d), want kind %d containing %q", err, statement.KindOf(err), tt.kind, tt.ours)
			}

			p, panicked, err := typedPlan(t, data)
			switch {
			case tt.lost != nil:
				if err != nil || panicked != nil || !tt.lost(p) {
					t.Errorf("substrait-go no longer reads the plan as it did (error %v, panic %v): %s", err, panicked, revisit)
				}
			case panicked != nil:
				if !strings.Contains(fmt.Sprint(panicked), tt.today) {
					t.Errorf("substrait-go panics with %v, not %q: %s", panicked, tt.today, revisit)
				}
			case err == nil || !strings.Contains(err.Error(), tt.today):
				t.Errorf("substrait-go: %v, not %q: %s", err, tt.today, revisit)
			}
		})
	}
}

// BenchmarkTypedPlan is what a reader ported onto substrait-go's typed API
// would cost on BenchmarkParse's plan: the same decoding, plan.FromProto's
// typed plan, and a walk as costly as today's (today's, over the same
// message), docs/SUBSTRAIT.md.
func BenchmarkTypedPlan(b *testing.B) {
	g := marketplace(b)
	data := typicalPlan(newBuilder(b))
	c, err := extensions.GetDefaultCollection()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var msg pb.Plan
		if err := proto.Unmarshal(data, &msg); err != nil {
			b.Fatal(err)
		}
		if _, err := plan.FromProto(&msg, c); err != nil {
			b.Fatal(err)
		}
		if _, err := FromProto(g, &msg); err != nil {
			b.Fatal(err)
		}
	}
}
