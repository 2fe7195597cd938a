package flight

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/status"
)

// literal is one spelling of the number one in a select list, in each
// front end's language.
type literal struct {
	sql, native, substrait string
	// want is the answer's type; nil when the test only asks that the
	// answer be the same in every order.
	want arrow.DataType
}

var literals = []literal{
	{"1", "1", `{"i64": "1"}`, arrow.PrimitiveTypes.Int64},
	{"1.0", "1.0", `{"fp64": 1.0}`, arrow.PrimitiveTypes.Float64},
	{"'1'", `"1"`, `{"string": "1"}`, nil},
	{"1::bigint", "1", `{"i32": 1}`, arrow.PrimitiveTypes.Int64},
	{"1e0", "1e0", `{"fp32": 1.0}`, arrow.PrimitiveTypes.Float64},
}

// reviewPlusPlan is `SELECT star_rating + <lit> AS b FROM review WHERE id =
// 7` as a Substrait plan.
func reviewPlusPlan(lit string) string {
	field := func(i int) string {
		return fmt.Sprintf(`{"selection": {"directReference": {"structField": {"field": %d}}, "rootReference": {}}}`, i)
	}
	return `{
  "extensionUrns": [{"extensionUrnAnchor": 1, "urn": "extension:io.substrait:functions_comparison"},
                    {"extensionUrnAnchor": 2, "urn": "extension:io.substrait:functions_arithmetic"}],
  "extensions": [{"extensionFunction": {"extensionUrnReference": 1, "functionAnchor": 1, "name": "equal:any_any"}},
                 {"extensionFunction": {"extensionUrnReference": 2, "functionAnchor": 2, "name": "add:i64_i64"}}],
  "relations": [{"root": {
    "input": {"project": {
      "common": {"emit": {"outputMapping": [2]}},
      "input": {"filter": {
        "input": {"read": {
          "baseSchema": {"names": ["id", "star_rating"], "struct": {"types": [
            {"i64": {"nullability": "NULLABILITY_NULLABLE"}}, {"i64": {"nullability": "NULLABILITY_NULLABLE"}}]}},
          "namedTable": {"names": ["review"]}}},
        "condition": {"scalarFunction": {"functionReference": 1, "outputType": {"bool": {}},
          "arguments": [{"value": ` + field(0) + `}, {"value": {"literal": {"i64": "7"}}}]}}}},
      "expressions": [{"scalarFunction": {"functionReference": 2, "outputType": {"i64": {}},
        "arguments": [{"value": ` + field(1) + `}, {"value": {"literal": ` + lit + `}}]}}]}},
    "names": ["b"]}}],
  "version": {"minorNumber": 54, "producer": "hand-written"}
}`
}

// TestLiteralTypesKeepTheirPlans: a literal's type is part of the plan's
// key, so on one server `+ 1` answers int64 and `+ 1.0` float64 whichever
// came first, over SQL text, prepared statements, Substrait and the native
// query (the plan key once printed literals, and 1 and 1.0 shared a plan).
// The value is checked against DuckDB over the same table.
func TestLiteralTypesKeepTheirPlans(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()

	// One answer, printed: the type and value of b, or the error's code.
	answer := func(schema *arrow.Schema, recs []arrow.RecordBatch) string {
		defer releaseAll(recs)
		return fmt.Sprintf("%s %v", schema.Field(0).Type, column(recs, 0))
	}
	failed := func(err error) string { return "error " + status.Code(err).String() }
	fronts := map[string]func(cl *flightsql.Client, l literal) string{
		"sql": func(cl *flightsql.Client, l literal) string {
			info, err := cl.Execute(ctx, `SELECT star_rating + `+l.sql+` AS b FROM review WHERE id = 7`)
			if err != nil {
				return failed(err)
			}
			return answer(fetch(t, ctx, cl, info))
		},
		"prepared": func(cl *flightsql.Client, l literal) string {
			stmt, err := cl.Prepare(ctx, `SELECT star_rating + `+l.sql+` AS b FROM review WHERE id = ?`)
			if err != nil {
				return failed(err)
			}
			defer stmt.Close(ctx)
			b := array.NewInt64Builder(mem)
			b.Append(7)
			col := b.NewArray()
			b.Release()
			params := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 1)
			col.Release()
			stmt.SetParameters(params)
			params.Release()
			info, err := stmt.Execute(ctx)
			if err != nil {
				return failed(err)
			}
			return answer(fetch(t, ctx, cl, info))
		},
		"substrait": func(cl *flightsql.Client, l literal) string {
			info, err := cl.ExecuteSubstrait(ctx, substraitPlan(t, reviewPlusPlan(l.substrait)))
			if err != nil {
				return failed(err)
			}
			return answer(fetch(t, ctx, cl, info))
		},
		"native": func(cl *flightsql.Client, l literal) string {
			in := stringBatch(mem, "review.id", "7")
			defer in.Release()
			a, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["(_.star_rating + `+l.native+`).alias(\"b\")"]}}`, in.Schema(), in)
			if err != nil {
				return failed(err)
			}
			return answer(a.schema, a.recs)
		},
	}

	// Each order on a server of its own: every query meets the plans the
	// ones before it left in the cache.
	run := func(order []literal) map[string]string {
		srv, db := e2eServer(t, mem)
		cl := serve(t, srv)
		var want float64
		if err := db.DB().QueryRow(`SELECT star_rating + 1 FROM marketplace_reviews WHERE id = 7`).Scan(&want); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, l := range order {
			for name, front := range fronts {
				a := front(cl, l)
				got[name+" "+l.sql] = a
				switch {
				case l.want == nil:
				case !strings.HasPrefix(a, l.want.String()+" "):
					t.Errorf("%s, + %s: answered %s, want %s", name, l.sql, a, l.want)
				case !strings.HasSuffix(a, fmt.Sprintf("[%v]", want)):
					t.Errorf("%s, + %s: answered %s, want the value %v (DuckDB)", name, l.sql, a, want)
				}
			}
		}
		return got
	}
	forward := run(literals)
	back := slices.Clone(literals)
	slices.Reverse(back)
	reversed := run(back)
	for k, a := range forward {
		if reversed[k] != a {
			t.Errorf("%s: %s first, %s last", k, reversed[k], a)
		}
	}
}
