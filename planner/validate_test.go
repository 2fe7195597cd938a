package planner_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// TestValidations: feature(min=, max=, min_length=, max_length=, strict=)
// over 200 generated reviews, checked against DuckDB SQL computing the
// violating rows of the same table. A strict violation is that feature's
// error for its row (Partial): the cell is null, the error names the rows,
// the value is neither stored online nor aggregated; without Partial the
// query fails naming the feature. A non-strict violation is served as it
// is and counted (Engine.Validations). (min= and max= were parsed and
// never enforced: ratings 9 and 0 came back unchanged.)
func TestValidations(t *testing.T) {
	g, db := repoWithDuckDB(t, map[string]string{
		"reviews.py": `from chalk.features import features, feature, DataFrame, _
from chalk import Validation

@features
class Shop:
    id: int
    reviews: "DataFrame[Review]"
    best_score: float = _.reviews[_.score].max()
    mean_rating: float = _.reviews[_.star_rating].mean()

@features
class Review:
    id: int
    shop_id: Shop.id
    star_rating: int = feature(min=1, max=5)
    headline: str = feature(max_staleness="1h", validations=[Validation(min_length=1, max_length=10, strict=True), Validation(min_length=3)])
    score: float = feature(max=1.0, strict=True)
`,
		"shops.sql":   "-- resolves: Shop\n-- source: db\nselect id from shops\n",
		"reviews.sql": "-- resolves: Review\n-- source: db\nselect id, shop_id, star_rating, headline, score from reviews\n",
	},
		"CREATE TABLE shops AS SELECT i AS id FROM range(1, 6) t(i)",
		`CREATE TABLE reviews AS SELECT i AS id, i % 5 + 1 AS shop_id,
			CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 7) % 9 - 1 END AS star_rating,
			CASE WHEN i % 11 = 0 THEN NULL ELSE repeat('é', (i * 5) % 16) END AS headline,
			CASE WHEN i % 19 = 0 THEN NULL ELSE (i % 17) / 10.0 END::DOUBLE AS score
		FROM range(1, 201) t(i)`,
	)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	store := onlinemem.New()
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem, planner.WithOnlineStore(store))
	defer e.Close()
	ids := make([]int64, 200)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	in := accountInputs(mem, ids...)
	defer in.Release()
	var outs []statement.Output
	for _, f := range []string{"star_rating", "headline", "score"} {
		outs = append(outs, statement.Output{Expr: ref(f).Expr, Name: f})
	}
	st := &statement.Statement{Class: g.Class("review"), Inputs: in.Schema().Fields(), Outputs: outs}
	p, err := e.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	// Without Partial, a strict violation fails the query, naming it (on
	// an engine of its own: what it counted before failing depends on the
	// order columns are computed in).
	other, err := planner.NewEngine(g, markettest.OneSource{Src: db}, mem).Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	// Which of headline and score fails it first depends on the order the
	// columns are computed in.
	if _, err := other.Run(context.Background(), in, planner.RunOptions{Now: now}); err == nil ||
		!strings.Contains(err.Error(), "review.headline: ") && !strings.Contains(err.Error(), "review.score: ") ||
		!strings.Contains(err.Error(), "outside min_length=1, max_length=10 (strict)") && !strings.Contains(err.Error(), "outside max=1 (strict)") {
		t.Errorf("without Partial: err = %v, want the strict violation of review.headline or review.score", err)
	}

	res, err := p.Run(context.Background(), in, planner.RunOptions{Now: now, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	strict := map[string][]int{} // output → violating rows, from DuckDB
	for out, cond := range map[string]string{
		"headline": "length(headline) < 1 OR length(headline) > 10",
		"score":    "score > 1.0",
	} {
		strict[out] = duckRows(t, db, "SELECT id - 1 FROM reviews WHERE "+cond+" ORDER BY id")
		if len(strict[out]) == 0 {
			t.Fatalf("the data has no %s violations", out)
		}
	}
	got := map[string][]int{}
	for _, oe := range res.Errors {
		name := p.Schema().Field(oe.Output).Name
		got[name] = oe.Rows
		if oe.Kind != statement.InvalidInput || !strings.Contains(oe.Message, "(strict)") {
			t.Errorf("%s: error %v %q", name, oe.Kind, oe.Message)
		}
	}
	for out, want := range strict {
		if !slices.Equal(got[out], want) {
			t.Errorf("%s: error rows %v, DuckDB's violations %v", out, got[out], want)
		}
	}
	if _, ok := got["star_rating"]; ok || len(res.Errors) != 2 {
		t.Errorf("errors %+v, want headline's and score's only", res.Errors)
	}

	// Cells: a strict violation is null, every other value as DuckDB has it
	// (star_rating's violations included: served as they are).
	rows, err := db.DB().Query("SELECT star_rating, headline, score FROM reviews ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for r := 0; rows.Next(); r++ {
		var rating *int64
		var headline *string
		var score *float64
		if err := rows.Scan(&rating, &headline, &score); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(strict["headline"], r) {
			headline = nil
		}
		if slices.Contains(strict["score"], r) {
			score = nil
		}
		for c, want := range []any{rating, headline, score} {
			col := res.Record.Column(c)
			if w := deref(want); (w == nil) != col.IsNull(r) || (w != nil && col.GetOneForMarshal(r) != w) {
				t.Errorf("row %d %s: %v, want %v", r, p.Schema().Field(c).Name, col.GetOneForMarshal(r), w)
			}
		}
	}

	// The non-strict violations were counted, once per computed value, per
	// validation (headline's second, lenient one too).
	lenient := len(duckRows(t, db, "SELECT id FROM reviews WHERE star_rating < 1 OR star_rating > 5"))
	short := len(duckRows(t, db, "SELECT id FROM reviews WHERE length(headline) < 3"))
	counts := map[string]int64{}
	for _, v := range e.Validations() {
		counts[v.Feature+" "+v.Bounds] = v.Violations
	}
	for k, want := range map[string]int{
		"review.star_rating min=1, max=5":             lenient,
		"review.headline min_length=1, max_length=10": len(strict["headline"]),
		"review.headline min_length=3":                short,
		"review.score max=1":                          len(strict["score"]),
	} {
		if counts[k] != int64(want) {
			t.Errorf("count %s = %d, DuckDB says %d", k, counts[k], want)
		}
	}

	// A strict violation is never stored: the online store has headline
	// for the valid rows only (max_staleness="1h" writes it back).
	e.Flush()
	keys := int64Array(mem, ids)
	defer keys.Release()
	cached, err := store.Get(context.Background(), mem, "review", keys, arrow.NewSchema([]arrow.Field{{Name: "headline", Type: arrow.BinaryTypes.String, Nullable: true}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer cached.Release()
	for r := range ids {
		if stored := cached.Observed[0].IsValid(r); stored == slices.Contains(strict["headline"], r) {
			t.Errorf("row %d: stored %v, strict violation %v", r, stored, !stored)
		}
	}

	// Aggregated over a has-many, a strict violation is skipped as a null
	// would be; a non-strict one counts.
	shops := accountInputs(mem, 1, 2, 3, 4, 5)
	defer shops.Release()
	p2, err := e.Prepare(&statement.Statement{Class: g.Class("shop"), Inputs: shops.Schema().Fields(),
		Outputs: []statement.Output{{Expr: ref("best_score").Expr, Name: "best_score"}, {Expr: ref("mean_rating").Expr, Name: "mean_rating"}}})
	if err != nil {
		t.Fatal(err)
	}
	res2, err := p2.Run(context.Background(), shops, planner.RunOptions{Now: now, Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Release()
	agg, err := db.DB().Query("SELECT max(score) FILTER (WHERE score <= 1.0), avg(star_rating) FROM reviews GROUP BY shop_id ORDER BY shop_id")
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	for r := 0; agg.Next(); r++ {
		var best, mean float64
		if err := agg.Scan(&best, &mean); err != nil {
			t.Fatal(err)
		}
		gb, gm := res2.Record.Column(0).(*array.Float64).Value(r), res2.Record.Column(1).(*array.Float64).Value(r)
		if gb != best || gm < mean-1e-9 || gm > mean+1e-9 {
			t.Errorf("shop %d: best_score %v mean_rating %v, DuckDB %v %v", r+1, gb, gm, best, mean)
		}
	}
}

// duckRows answers a query of one int column.
func duckRows(t *testing.T, db *duckdb.Source, q string) []int {
	t.Helper()
	rows, err := db.DB().Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []int{}
	for rows.Next() {
		var r int
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func deref(v any) any {
	switch v := v.(type) {
	case *int64:
		if v != nil {
			return *v
		}
	case *string:
		if v != nil {
			return *v
		}
	case *float64:
		if v != nil {
			return *v
		}
	}
	return nil
}

func int64Array(mem memory.Allocator, v []int64) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}
