package planner_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// TestCountOfAProjection is seed 004's Document: `count` of a projected
// column counts its non-null values ("Aggregations automatically skip null
// or None values"), `count` of a frame without a projection counts its
// rows; both checked against DuckDB's count(col) and count(*) over the
// same rows (a projection's count counted its nulls: 5 for 4 sizes).
func TestCountOfAProjection(t *testing.T) {
	g, db := documentsFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	in := accountInputs(mem, 1, 2, 3)
	defer in.Release()
	var outs []statement.Output
	for _, f := range []string{"sizes", "big_sizes", "all_revisions", "max_revision_size"} {
		outs = append(outs, statement.Output{Expr: ref(f).Expr, Name: f})
	}
	rec, err := e.Execute(context.Background(), &statement.Statement{Class: g.Class("document"), Inputs: in.Schema().Fields(), Outputs: outs}, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	rows, err := db.DB().Query(`SELECT d.id, count(r.size_bytes), count(r.size_bytes) FILTER (WHERE r.size_bytes > 100), count(r.id), max(r.size_bytes)
		FROM documents d LEFT JOIN revisions r ON r.document_id = d.id GROUP BY d.id ORDER BY d.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		var id, sizes, big, all int64
		var largest *float64
		if err := rows.Scan(&id, &sizes, &big, &all, &largest); err != nil {
			t.Fatal(err)
		}
		got := []int64{rec.Column(0).(*array.Int64).Value(i), rec.Column(1).(*array.Int64).Value(i), rec.Column(2).(*array.Int64).Value(i)}
		if got[0] != sizes || got[1] != big || got[2] != all {
			t.Errorf("document %d: sizes, big sizes, revisions = %v, DuckDB %d, %d, %d", id, got, sizes, big, all)
		}
		mx := rec.Column(3)
		if (largest == nil) != mx.IsNull(i) || largest != nil && mx.(*array.Float64).Value(i) != *largest {
			t.Errorf("document %d: max_revision_size %s, DuckDB %v", id, mx.ValueStr(i), largest)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestNullKeyAnswersNulls: a row whose key is null names no entity, so
// every output is null (an entity without revisions counts 0; a null key
// is not such an entity), and the result names the row.
func TestNullKeyAnswersNulls(t *testing.T) {
	g, db := documentsFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1, 0, 3}, []bool{true, false, true})
	ids := b.NewArray()
	b.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil), []arrow.Array{ids}, 3)
	ids.Release()
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: g.Class("document"), Inputs: in.Schema().Fields(),
		Outputs: []statement.Output{ref("id"), ref("sizes"), ref("all_revisions")}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(context.Background(), in, planner.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	var got []string
	for i := range int(res.Record.NumCols()) {
		got = append(got, res.Record.Column(i).String())
	}
	// Document 3 has no revisions: 0, as DuckDB's count over none.
	if want := []string{"[1 (null) 3]", "[4 (null) 0]", "[5 (null) 0]"}; !slices.Equal(got, want) || !slices.Equal(res.NullKeys, []int{1}) {
		t.Errorf("outputs %v, null keys %v; want %v and [1]", got, res.NullKeys, want)
	}
}

// documentsFixture is seed 004's Document and Revision over DuckDB: one
// document with five revisions (one size null), one with a revision of
// null size, one with none.
func documentsFixture(t *testing.T) (*features.Graph, *duckdb.Source) {
	t.Helper()
	return repoWithDuckDB(t, map[string]string{
		"documents.py": `from chalk.features import features, DataFrame, _
from datetime import datetime

@features
class Document:
    id: int
    revisions: "DataFrame[Revision]"
    sizes: int = _.revisions[_.size_bytes].count()
    big_sizes: int = _.revisions[_.size_bytes > 100, _.size_bytes].count()
    all_revisions: int = _.revisions.count()
    max_revision_size: float = _.revisions[_.size_bytes].max()

@features
class Revision:
    id: int
    document_id: Document.id
    size_bytes: float | None
    timestamp: datetime
`,
		"documents.sql": "-- resolves: Document\n-- source: db\nselect id from documents\n",
		"revisions.sql": "-- resolves: Revision\n-- source: db\nselect id, document_id, size_bytes, timestamp from revisions\n",
	},
		"CREATE TABLE documents (id BIGINT)",
		"INSERT INTO documents VALUES (1), (2), (3)",
		"CREATE TABLE revisions (id BIGINT, document_id BIGINT, size_bytes DOUBLE, timestamp TIMESTAMPTZ)",
		`INSERT INTO revisions VALUES (1, 1, 50, '2026-01-01'), (2, 1, NULL, '2026-01-02'), (3, 1, 200, '2026-01-03'),
			(4, 1, 300, '2026-01-04'), (5, 1, 10, '2026-01-05'), (6, 2, NULL, '2026-01-01')`,
	)
}

// TestWindowGroupIsCached: a windowed feature with max_staleness asked for
// by its group name (every window) is read from and written to the online
// store per window, as its windows asked by name are (by the group name,
// every repeat recomputed and no cell was a hit).
func TestWindowGroupIsCached(t *testing.T) {
	g, db := repoWithDuckDB(t, map[string]string{
		"logins.py": `from chalk.features import features, DataFrame, _, windowed, Windowed
from datetime import datetime

@features
class Account:
    id: int
    logins: "DataFrame[Login]"
    num_failed_logins: Windowed[int] = windowed("10m", "1h", max_staleness="1h",
        expression=_.logins[_.failed == True, _.happened_at > _.chalk_window].count())

@features
class Login:
    id: int
    account_id: Account.id
    failed: bool
    happened_at: datetime
`,
		"accounts.sql": "-- resolves: Account\n-- source: db\nselect id from accounts\n",
		"logins.sql":   "-- resolves: Login\n-- source: db\nselect id, account_id, failed, happened_at from logins\n",
	},
		"CREATE TABLE accounts (id BIGINT)",
		"INSERT INTO accounts VALUES (1), (2)",
		"CREATE TABLE logins (id BIGINT, account_id BIGINT, failed BOOLEAN, happened_at TIMESTAMPTZ)",
		"INSERT INTO logins VALUES (1, 1, true, now() - INTERVAL 5 MINUTE), (2, 1, true, now() - INTERVAL 30 MINUTE), (3, 2, false, now())",
	)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem, planner.WithOnlineStore(onlinemem.New()))
	defer e.Close()
	in := accountInputs(mem, 1, 2)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: g.Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("num_failed_logins")}})
	if err != nil {
		t.Fatal(err)
	}
	for run, wantHit := range []bool{false, true} {
		res, err := plan.Run(context.Background(), in, planner.RunOptions{Meta: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := range int(res.Record.NumCols()) {
			got = append(got, res.Record.Schema().Field(i).Name+"="+res.Record.Column(i).String())
			if hits := res.Hits[i].(*array.Boolean); hits.Value(0) != wantHit || hits.Value(1) != wantHit {
				t.Errorf("run %d, %s: hits %s, want all %v", run, res.Record.Schema().Field(i).Name, hits, wantHit)
			}
		}
		if want := []string{"num_failed_logins__600__=[1 0]", "num_failed_logins__3600__=[2 0]"}; !slices.Equal(got, want) {
			t.Errorf("run %d: %v, want %v", run, got, want)
		}
		res.Release()
		e.Flush()
	}
}

// TestInferredEventTimeHidesTheFuture is the tutorial's Review without
// FeatureTime: its only datetime, created_at, is its event time, so a
// review dated after the query's time is in no window and no aggregation
// (it was counted: 7d/30d = 2/3, not 1/2), as DuckDB computes with
// created_at <= now.
func TestInferredEventTimeHidesTheFuture(t *testing.T) {
	g, db := repoWithDuckDB(t, map[string]string{
		"reviews.py": `from chalk.features import features, DataFrame, _, windowed, Windowed
from datetime import datetime

@features
class User:
    id: int
    reviews: "DataFrame[Review]"
    review_count: Windowed[int] = windowed("7d", "30d", expression=_.reviews[_.created_at > _.chalk_window].count())
    average_rating_given: float | None = _.reviews[_.star_rating].mean()

@features
class Review:
    id: int
    user_id: User.id
    star_rating: int
    created_at: datetime
`,
		"users.sql":   "-- resolves: User\n-- source: db\nselect id from users\n",
		"reviews.sql": "-- resolves: Review\n-- source: db\nselect id, user_id, star_rating, created_at from reviews\n",
	},
		"CREATE TABLE users (id BIGINT)",
		"INSERT INTO users VALUES (1)",
		"CREATE TABLE reviews (id BIGINT, user_id BIGINT, star_rating BIGINT, created_at TIMESTAMPTZ)",
		`INSERT INTO reviews VALUES (1, 1, 5, '2026-02-27'), (2, 1, 2, '2026-02-10'), (3, 1, 1, '2026-03-05')`,
	)
	if g.Class("review").EventTime == nil || g.Class("review").EventTime.Name != "created_at" {
		t.Fatalf("Review's event time %v, want created_at (its only datetime)", g.Class("review").EventTime)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	in := accountInputs(mem, 1)
	defer in.Release()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rec, err := e.Execute(context.Background(), &statement.Statement{Class: g.Class("user"), Inputs: in.Schema().Fields(),
		Outputs: []statement.Output{ref("review_count"), ref("average_rating_given")}, Options: statement.Options{Now: now}}, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var week, month int64
	var avg float64
	if err := db.DB().QueryRow(`SELECT count(*) FILTER (WHERE created_at > TIMESTAMPTZ '2026-02-22'), count(*), avg(star_rating)
		FROM reviews WHERE user_id = 1 AND created_at <= TIMESTAMPTZ '2026-03-01' AND created_at > TIMESTAMPTZ '2026-01-30'`).Scan(&week, &month, &avg); err != nil {
		t.Fatal(err)
	}
	got := []string{rec.Column(0).ValueStr(0), rec.Column(1).ValueStr(0), rec.Column(2).ValueStr(0)}
	if want := []string{fmt.Sprint(week), fmt.Sprint(month), fmt.Sprint(avg)}; !slices.Equal(got, want) {
		t.Errorf("review_count 7d, 30d, average = %v, DuckDB %v", got, want)
	}
}

// TestInputColumnOfAnyKind: the engine takes an input column of any kind
// the coercion module converts (a string_view id for an int key was
// refused: "input column "id" has type string_view").
func TestInputColumnOfAnyKind(t *testing.T) {
	g, db := accountFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	b := array.NewStringViewBuilder(mem)
	b.AppendValues([]string{"2", "1"}, nil)
	ids := b.NewArray()
	b.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.StringView}}, nil), []arrow.Array{ids}, 2)
	ids.Release()
	defer in.Release()
	rec, err := e.Execute(context.Background(), &statement.Statement{Class: g.Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("score")}}, in)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	// accountFixture's scores: 1 → 0.5, 2 → 0.25.
	if got := rec.Column(0).String(); got != "[0.25 0.5]" {
		t.Errorf("scores %s, want [0.25 0.5]", got)
	}
}
