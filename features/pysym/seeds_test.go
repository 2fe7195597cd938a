package pysym_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// The seeds' resolvers, as written there, over data in DuckDB: fletch
// answers each row (inputs gathered through has-one paths, aggregations
// and windows), and CPython runs the function on the inputs fletch
// gathered for that row; the outputs must agree, exceptions included.

// sqlFloat is v as a DuckDB literal, NaN, infinities and -0.0 included.
func sqlFloat(v any) string {
	f, ok := v.(float64)
	switch {
	case v == nil:
		return "NULL"
	case !ok:
		return fmt.Sprint(v)
	case math.IsNaN(f):
		return "'nan'::DOUBLE"
	case math.IsInf(f, 1):
		return "'inf'::DOUBLE"
	case math.IsInf(f, -1):
		return "'-inf'::DOUBLE"
	case f == 0 && math.Signbit(f):
		return "'-0.0'::DOUBLE"
	}
	return fmt.Sprintf("%v::DOUBLE", f)
}

// seedCase queries out and the resolver's input paths for ids and compares
// out with CPython's fn over those inputs.
func seedCase(t *testing.T, file string, files map[string]string, ddl []string, class string, n int, now time.Time) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files["repo.py"] = string(src)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := duckdb.Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range ddl {
		if _, err := db.DB().Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	pr := g.PyResolvers[0]
	if pr.Mode != features.PyExpression {
		t.Fatalf("%s runs as %s: %s", pr.Name, pr.Mode, pr.Why)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	b := array.NewInt64Builder(mem)
	for i := 1; i <= n; i++ {
		b.Append(int64(i))
	}
	ids := b.NewArray()
	b.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{ids}, int64(n))
	ids.Release()
	defer in.Release()
	st := &statement.Statement{Class: g.Class(class), Inputs: in.Schema().Fields()}
	st.Outputs = append(st.Outputs, statement.Output{Name: pr.Outputs[0].Name, Expr: &expr.Ref{Path: []string{pr.Outputs[0].Name}}})
	for _, p := range pr.Inputs {
		st.Outputs = append(st.Outputs, statement.Output{Name: p.Param, Expr: &expr.Ref{Path: p.Path}})
	}
	plan, err := e.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{Now: now, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	call := pyCall{Fn: pr.Name}
	var inputs [][]any
	for k := 0; k < n; k++ {
		args := map[string]any{}
		var row []any
		for i, p := range pr.Inputs {
			v := cell(res.Record.Column(i+1), k)
			args[p.Param] = jsonValue(v)
			row = append(row, v)
		}
		call.Rows = append(call.Rows, args)
		inputs = append(inputs, row)
	}
	abs, _ := filepath.Abs(file)
	answers := runPython(t, abs, []pyCall{call})[0]
	// Rows with a missing required input are not the function's: null
	// outputs, no error (docs/PYTHON.md); CPython is asked only the others.
	errs, values := 0, 0
	for k := range answers {
		for i, p := range pr.Inputs {
			if inputs[k][i] == nil && !p.Root.Feature(p.Path[0]).Type.Nullable && len(p.Path) == 1 {
				answers[k] = pyAnswer{V: []byte("null")}
			}
		}
		if answers[k].Exc != "" {
			errs++
		} else if string(answers[k].V) != "null" {
			values++
		}
	}
	if values+errs < n/2 || values == 0 {
		t.Errorf("only %d of %d rows have a value: the data tests little", values, n)
	}
	t.Logf("%s: %d rows, %d values, %d exceptions", pr.Name, n, values, errs)
	// Only the first output column is the resolver's; compare it alone.
	one := *pr
	one.Outputs = pr.Outputs[:1]
	compare(t, &one, inputs, answers, res)
}

func TestComputeTotalAgreesWithCPython(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	floats := []any{nil, 0.0, math.Copysign(0, -1), 10.0, 99.99, 1e308, math.Inf(1), math.NaN(), -5.0, 0.07, 12.5}
	pick := func() any {
		if r.IntN(2) == 0 {
			return floats[r.IntN(len(floats))]
		}
		return math.Round(r.Float64()*20000) / 100
	}
	var locales, txns []string
	for i := 1; i <= 20; i++ {
		rate := pick()
		if f, ok := rate.(float64); ok && r.IntN(3) > 0 {
			rate = math.Mod(math.Abs(f), 0.3)
		}
		locales = append(locales, fmt.Sprintf("(%d, %s)", i, sqlFloat(rate)))
	}
	const n = 400
	for i := 1; i <= n; i++ {
		subtotal, discount := pick(), pick()
		taxable := []string{"true", "false", "NULL"}[r.IntN(3)]
		if r.IntN(5) > 0 {
			taxable = "true"
		}
		txns = append(txns, fmt.Sprintf("(%d, %s, %s, %d, %s)", i, sqlFloat(subtotal), sqlFloat(discount), r.IntN(22)+1, taxable))
	}
	seedCase(t, "testdata/compute_total.py", map[string]string{
		"locales.sql": "-- resolves: Locale\n-- source: db\nselect id, sales_tax_rate from locales\n",
		"txns.sql":    "-- resolves: Transaction\n-- source: db\nselect id, subtotal, discount, locale_id, taxable from txns\n",
	}, []string{
		"CREATE TABLE locales (id BIGINT, sales_tax_rate DOUBLE)",
		"INSERT INTO locales VALUES " + strings.Join(locales, ", "),
		"CREATE TABLE txns (id BIGINT, subtotal DOUBLE, discount DOUBLE, locale_id BIGINT, taxable BOOLEAN)",
		"INSERT INTO txns VALUES " + strings.Join(txns, ", "),
	}, "transaction", n, time.Now())
}

// reviewData is items with 0 to 30 reviews, some old, some recent.
func reviewData(now time.Time) []string {
	r := rand.New(rand.NewPCG(3, 4))
	var rows []string
	id := 1
	for item := 1; item <= 40; item++ {
		for k := r.IntN(12); k > 0; k-- {
			at := now.Add(-time.Duration(r.IntN(400*24)) * time.Hour)
			rows = append(rows, fmt.Sprintf("(%d, %d, %d, TIMESTAMPTZ '%s')", id, item, r.IntN(5)+1, at.UTC().Format("2006-01-02 15:04:05Z07:00")))
			id++
		}
	}
	return []string{
		"CREATE TABLE reviews (id BIGINT, item_id BIGINT, star_rating BIGINT, created_at TIMESTAMPTZ)",
		"INSERT INTO reviews VALUES " + strings.Join(rows, ", "),
	}
}

func TestNormalizedRatingAgreesWithCPython(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	seedCase(t, "testdata/normalized_rating.py", map[string]string{
		"reviews.sql": "-- resolves: Review\n-- source: db\nselect id, item_id, star_rating from reviews\n",
	}, reviewData(now), "review", 300, now)
}

func TestNormalizedRating30dAgreesWithCPython(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	seedCase(t, "testdata/normalized_rating_30d.py", map[string]string{
		"reviews.sql": "-- resolves: Review\n-- source: db\nselect id, item_id, star_rating, created_at from reviews\n",
	}, reviewData(now), "review", 300, now)
}
