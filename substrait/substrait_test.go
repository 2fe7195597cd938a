package substrait

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/substrait-io/substrait-go/v8/expr"
	"github.com/substrait-io/substrait-go/v8/extensions"
	"github.com/substrait-io/substrait-go/v8/plan"
	"github.com/substrait-io/substrait-go/v8/types"
	"google.golang.org/protobuf/proto"

	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
)

const (
	comparison = extensions.SubstraitDefaultURNPrefix + "functions_comparison"
	boolean    = extensions.SubstraitDefaultURNPrefix + "functions_boolean"
	arithmetic = extensions.SubstraitDefaultURNPrefix + "functions_arithmetic"
	str        = extensions.SubstraitDefaultURNPrefix + "functions_string"
)

func marketplace(t testing.TB) *features.Graph {
	t.Helper()
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// schema is a base schema of nullable columns of one type.
func schema(typ types.Type, names ...string) types.NamedStruct {
	ts := make([]types.Type, len(names))
	for i := range ts {
		ts[i] = typ
	}
	return types.NamedStruct{Names: names, Struct: types.StructType{Nullability: types.NullabilityRequired, Types: ts}}
}

var (
	strType = &types.StringType{Nullability: types.NullabilityNullable}
	i64Type = &types.Int64Type{Nullability: types.NullabilityNullable}
)

// builder wraps substrait-go's plan builder for terse test plans; the first
// error sticks.
type builder struct {
	t testing.TB
	b plan.Builder
}

func newBuilder(t testing.TB) *builder { return &builder{t: t, b: plan.NewBuilderDefault()} }

func (b *builder) must(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *builder) ref(rel plan.Rel, i int32) expr.Expression {
	b.t.Helper()
	r, err := b.b.RootFieldRef(rel, i)
	b.must(err)
	return r
}

func (b *builder) fn(urn, name string, args ...types.FuncArg) expr.Expression {
	b.t.Helper()
	f, err := b.b.ScalarFn(urn, name, nil, args...)
	b.must(err)
	return f
}

func (b *builder) filter(rel plan.Rel, cond expr.Expression) plan.Rel {
	b.t.Helper()
	f, err := b.b.Filter(rel, cond)
	b.must(err)
	return f
}

// project projects exprs, keeping only them (as SQL's select list does).
func (b *builder) project(rel plan.Rel, exprs ...expr.Expression) plan.Rel {
	b.t.Helper()
	p, err := b.b.Project(rel, exprs...)
	b.must(err)
	n := len(rel.RecordType().Types())
	remap := make([]int32, len(exprs))
	for i := range remap {
		remap[i] = int32(n + i)
	}
	out, err := p.Remap(remap...)
	b.must(err)
	return out
}

// bytes encodes the plan of root; without names, its columns are c0, c1...
func (b *builder) bytes(root plan.Rel, names ...string) []byte {
	b.t.Helper()
	if len(names) == 0 {
		for i := range root.RecordType().Types() {
			names = append(names, fmt.Sprintf("c%d", i))
		}
	}
	p, err := b.b.Plan(root, names)
	b.must(err)
	pp, err := p.ToProto()
	b.must(err)
	data, err := proto.Marshal(pp)
	b.must(err)
	return data
}

func lit[T string | int64 | bool | float64](v T) expr.Expression {
	return expr.NewPrimitiveLiteral(v, false)
}

func in(value expr.Expression, options ...expr.Expression) expr.Expression {
	return &expr.SingularOrList{Value: value, Options: options}
}

// describe prints what a statement means: its shape, rows and limit.
func describe(t *testing.T, st *statement.Statement) string {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var b strings.Builder
	b.WriteString("class=" + st.Class.Table + " inputs=")
	for _, f := range st.Inputs {
		b.WriteString(f.Name + ":" + f.Type.String() + " ")
	}
	b.WriteString("outputs=")
	for _, o := range st.Outputs {
		b.WriteString(o.Name + "=" + o.Expr.String() + " ")
	}
	b.WriteString("params=")
	for _, p := range st.Params {
		b.WriteString(p.Column + ":" + p.Type.String() + " ")
	}
	if len(st.Params) == 0 {
		rec, err := st.LiteralInputs(mem)
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		b.WriteString("rows=")
		for i := 0; i < int(rec.NumRows()); i++ {
			for _, c := range rec.Columns() {
				b.WriteString(c.ValueStr(i) + ",")
			}
			b.WriteString(";")
		}
	}
	fmt.Fprintf(&b, " limit=%d", st.Limit)
	return b.String()
}

// TestSameAsSQL checks that each plan means what its SQL text means: the
// same class, outputs, input rows, parameters and limit.
func TestSameAsSQL(t *testing.T) {
	g := marketplace(t)
	for _, tt := range sameAsSQLPlans {
		t.Run(tt.name, func(t *testing.T) {
			want, err := sql.Parse(g, tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(g, tt.plan(newBuilder(t)))
			if err != nil {
				t.Fatal(err)
			}
			if d, w := describe(t, got), describe(t, want); d != w {
				t.Errorf("plan:\n %s\nSQL:\n %s", d, w)
			}
		})
	}
}

// sameAsSQLPlans are plans and the SQL text they mean (also fuzz seeds).
var sameAsSQLPlans = []struct {
	name string
	sql  string
	plan func(b *builder) []byte
}{
	{
		name: "the issue's query: IN as a SingularOrList",
		sql:  `SELECT first_name, last_name FROM user WHERE id IN ('1', '2', '3')`,
		plan: func(b *builder) []byte {
			scan := b.b.NamedScan([]string{"user"}, schema(strType, "id", "first_name", "last_name"))
			f := b.filter(scan, in(b.ref(scan, 0), lit("1"), lit("2"), lit("3")))
			return b.bytes(b.project(f, b.ref(f, 1), b.ref(f, 2)), "first_name", "last_name")
		},
	},
	{
		name: "IN as an or of equals, output mapping instead of a project",
		sql:  `SELECT first_name AS a, last_name AS b FROM user WHERE id IN ('1', '2', '3')`,
		plan: func(b *builder) []byte {
			scan, err := b.b.NamedScanRemap([]string{"features", "user"}, schema(strType, "id", "first_name", "last_name"), []int32{1, 2, 0})
			b.must(err)
			eq := func(v string) types.FuncArg { return b.fn(comparison, "equal", b.ref(scan, 2), lit(v)) }
			f, err := b.b.FilterRemap(scan, b.fn(boolean, "or", eq("1"), eq("2"), eq("3")), []int32{0, 1})
			b.must(err)
			return b.bytes(f, "a", "b")
		},
	},
	{
		name: "equal with the literal first, catalog-qualified table, fetch",
		sql:  `SELECT email FROM fletch.features.user WHERE id = '50' LIMIT 1`,
		plan: func(b *builder) []byte {
			scan := b.b.NamedScan([]string{"fletch", "features", "user"}, schema(strType, "id", "email"))
			f := b.filter(scan, b.fn(comparison, "equal", lit("50"), b.ref(scan, 0)))
			fetch, err := b.b.Fetch(b.project(f, b.ref(f, 1)), 0, 1)
			b.must(err)
			return b.bytes(fetch, "email")
		},
	},
	{
		name: "and with __as_of__, an integer for a str key",
		sql:  `SELECT full_name FROM user WHERE id IN (7, 8) AND __as_of__ = '2026-01-15T00:00:00Z'`,
		plan: func(b *builder) []byte {
			ns := schema(strType, "id", "full_name", statement.AsOfColumn)
			ns.Struct.Types[0] = i64Type
			ns.Struct.Types[2] = &types.PrecisionTimestampType{Precision: types.PrecisionMicroSeconds, Nullability: types.NullabilityNullable}
			scan := b.b.NamedScan([]string{"user"}, ns)
			ts := expr.NewPrecisionTimestampLiteral(1768435200000000, types.PrecisionMicroSeconds, types.NullabilityRequired)
			f := b.filter(scan, b.fn(boolean, "and",
				in(b.ref(scan, 0), lit(int64(7)), lit(int64(8))),
				b.fn(comparison, "equal", b.ref(scan, 2), ts)))
			return b.bytes(b.project(f, b.ref(f, 1)), "full_name")
		},
	},
	{
		name: "expressions over features: arithmetic, comparison, string functions",
		sql:  `SELECT star_rating * 2 + 1 AS r, star_rating >= 4 AND NOT is_positive AS odd, upper(review_headline) AS h FROM review WHERE id = 5`,
		plan: func(b *builder) []byte {
			ns := schema(i64Type, "id", "star_rating", "is_positive", "review_headline")
			ns.Struct.Types[2] = &types.BooleanType{Nullability: types.NullabilityNullable}
			ns.Struct.Types[3] = strType
			scan := b.b.NamedScan([]string{"review"}, ns)
			f := b.filter(scan, b.fn(comparison, "equal", b.ref(scan, 0), lit(int64(5))))
			r := b.fn(arithmetic, "add", b.fn(arithmetic, "multiply", b.ref(f, 1), lit(int64(2))), lit(int64(1)))
			odd := b.fn(boolean, "and", b.fn(comparison, "gte", b.ref(f, 1), lit(int64(4))), b.fn(boolean, "not", b.ref(f, 2)))
			h := b.fn(str, "upper", b.ref(f, 3))
			return b.bytes(b.project(f, r, odd, h), "r", "odd", "h")
		},
	},
	{
		name: "composite key: an or of ands",
		sql:  `SELECT id FROM user_item WHERE (user_id, item_id) IN (('u1', 'i1'), ('u2', 'i2'))`,
		plan: func(b *builder) []byte {
			scan := b.b.NamedScan([]string{"user_item"}, schema(strType, "id", "user_id", "item_id"))
			pair := func(u, i string) types.FuncArg {
				return b.fn(boolean, "and", b.fn(comparison, "equal", b.ref(scan, 1), lit(u)), b.fn(comparison, "equal", lit(i), b.ref(scan, 2)))
			}
			f := b.filter(scan, b.fn(boolean, "or", pair("u1", "i1"), pair("u2", "i2")))
			return b.bytes(b.project(f, b.ref(f, 0)), "id")
		},
	},
	{
		name: "a parameter of a prepared plan",
		sql:  `SELECT full_name FROM user WHERE id = ?`,
		plan: func(b *builder) []byte {
			scan := b.b.NamedScan([]string{"user"}, schema(strType, "id", "full_name"))
			p, err := b.b.GetExprBuilder().DynamicParam(strType, 0).Build()
			b.must(err)
			f := b.filter(scan, b.fn(comparison, "equal", b.ref(scan, 0), p))
			return b.bytes(b.project(f, b.ref(f, 1)), "full_name")
		},
	},
}

func TestErrors(t *testing.T) {
	g := marketplace(t)
	userScan := func(b *builder) plan.Rel {
		return b.b.NamedScan([]string{"user"}, schema(strType, "id", "full_name"))
	}
	byID := func(b *builder, rel plan.Rel) plan.Rel {
		return b.filter(rel, in(b.ref(rel, 0), lit("1")))
	}
	tests := []struct {
		name string
		plan func(b *builder) []byte
		kind statement.ErrorKind
		msg  string
	}{
		{"no filter", func(b *builder) []byte { return b.bytes(userScan(b)) }, statement.InvalidInput, "missing WHERE"},
		{"offset", func(b *builder) []byte {
			f, err := b.b.Fetch(byID(b, userScan(b)), 2, 5)
			b.must(err)
			return b.bytes(f)
		}, statement.Unsupported, "fetch with offset 2"},
		{"fetch below the filter", func(b *builder) []byte {
			f, err := b.b.Fetch(userScan(b), 0, 5)
			b.must(err)
			return b.bytes(byID(b, f))
		}, statement.Unsupported, "a fetch below a filter"},
		{"__as_of__ as an output", func(b *builder) []byte {
			s := b.b.NamedScan([]string{"user"}, schema(strType, "id", statement.AsOfColumn))
			return b.bytes(byID(b, s))
		}, statement.InvalidInput, "__as_of__ is not a column of the result"},
		{"range condition", func(b *builder) []byte {
			s := userScan(b)
			return b.bytes(b.filter(s, b.fn(comparison, "lt", b.ref(s, 0), lit("5"))))
		}, statement.InvalidInput, "unsupported condition (function extension:io.substrait:functions_comparison#lt:any_any)"},
		{"non-key column", func(b *builder) []byte {
			s := userScan(b)
			return b.bytes(b.filter(s, in(b.ref(s, 1), lit("x"))))
		}, statement.InvalidInput, "full_name is not a key column of user"},
		{"computed column in the filter", func(b *builder) []byte {
			s := userScan(b)
			p := b.project(s, b.fn(str, "lower", b.ref(s, 0)))
			return b.bytes(b.filter(p, in(b.ref(p, 0), lit("x"))))
		}, statement.InvalidInput, "field 0 is computed (F.lower(_.id))"},
		{"a sort", func(b *builder) []byte {
			s := byID(b, userScan(b))
			fields, err := b.b.SortFields(s, 1)
			b.must(err)
			sorted, err := b.b.Sort(s, fields...)
			b.must(err)
			return b.bytes(sorted)
		}, statement.Unsupported, "sort relations are not supported"},
		{"a virtual table", func(b *builder) []byte {
			v, err := b.b.VirtualTable([]string{"id"}, expr.StructLiteralValue{expr.NewPrimitiveLiteral("1", false)})
			b.must(err)
			return b.bytes(v)
		}, statement.Unsupported, "virtual_table reads are not supported"},
		{"a function without equivalent", func(b *builder) []byte {
			s := byID(b, userScan(b))
			return b.bytes(b.project(s, b.fn(str, "reverse", b.ref(s, 1))))
		}, statement.Unsupported, "function extension:io.substrait:functions_string#reverse:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(g, tt.plan(newBuilder(t)))
			var pe *statement.Error
			if !errors.As(err, &pe) || pe.Kind != tt.kind || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error %v (kind %d), want kind %d containing %q", err, statement.KindOf(err), tt.kind, tt.msg)
			}
		})
	}
}

// typicalPlan is a plan of a typical online query: ten outputs (nine
// features and an expression over one) of one user named by key.
func typicalPlan(b *builder) []byte {
	names := []string{"id", "first_name", "last_name", "email", "full_name", "created_at", "birthday",
		"average_rating_given", "average_purchase_price", "name_email_sim"}
	scan := b.b.NamedScan([]string{"user"}, schema(strType, names...))
	f := b.filter(scan, b.fn(comparison, "equal", b.ref(scan, 0), lit("50")))
	outs := []expr.Expression{b.fn(str, "upper", b.ref(f, 1))}
	for i := 1; i < len(names); i++ {
		outs = append(outs, b.ref(f, int32(i)))
	}
	return b.bytes(b.project(f, outs...))
}

// BenchmarkParse is the cost of reading a typical plan's bytes into a
// statement (docs/SUBSTRAIT.md).
func BenchmarkParse(b *testing.B) {
	g := marketplace(b)
	data := typicalPlan(newBuilder(b))
	if _, err := Parse(g, data); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(g, data); err != nil {
			b.Fatal(err)
		}
	}
}
