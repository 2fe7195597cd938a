package sqlload_test

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/pyload"
	"github.com/fletch-engine/fletch/features/sqlload"
)

const classes = `
@features
class User:
    id: str
    created_at: datetime
    first_name: str
    last_name: str
    email: str | None
    birthday: date | None
    reviews: DataFrame[Review]
    review_count: Windowed[int] = windowed("7d", expression=_.reviews.count())

@features
class Review:
    id: int
    user_id: User.id
    user: User
    star_rating: int
    created_at: FeatureTime
`

func graph(t *testing.T) *features.Graph {
	t.Helper()
	f, err := pyload.ParseFile("m.py", []byte(classes))
	if err != nil {
		t.Fatal(err)
	}
	g := features.NewGraph()
	if err := pyload.Link(g, []*pyload.File{f}); err != nil {
		t.Fatal(err)
	}
	return g
}

// at is the 1-based path:line:col of the first occurrence of marker in src.
func at(path, src, marker string) string {
	i := strings.Index(src, marker)
	if i < 0 {
		panic("marker not found: " + marker)
	}
	line := strings.Count(src[:i], "\n") + 1
	start := strings.LastIndexByte(src[:i], '\n') + 1
	return fmt.Sprintf("%s:%d:%d", path, line, len([]rune(src[start:i]))+1)
}

func columns(r *features.SQLResolver) []string {
	var out []string
	for _, c := range r.Columns {
		out = append(out, c.Column+"->"+c.Feature.QualifiedName())
	}
	return out
}

func TestSeedsResolver(t *testing.T) {
	src := `-- resolves: User
-- source: postgres
-- owner: ml-core@example.com
-- a plain comment
select
hid as id,
created_at,
first_name,
last_name,
email,
birthday
from marketplace_users
`
	g := graph(t)
	r, err := sqlload.ParseFile(g, "repo/users.chalk.sql", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "users" || r.Resolves != g.Class("User") || r.Source != "postgres" || r.Headers["owner"] != "ml-core@example.com" ||
		len(r.Headers) != 3 || r.Pos.String() != "repo/users.chalk.sql:1:1" {
		t.Errorf("resolver %+v", r)
	}
	want := "id->user.id created_at->user.created_at first_name->user.first_name last_name->user.last_name email->user.email birthday->user.birthday"
	if got := strings.Join(columns(r), " "); got != want {
		t.Errorf("columns %s\nwant    %s", got, want)
	}
	if !strings.HasPrefix(r.Query, "select\nhid as id,") || !strings.HasSuffix(r.Query, "from marketplace_users") {
		t.Errorf("query %q", r.Query)
	}
}

// TestPlaceholders runs the rewritten query in DuckDB: the reference for
// the $n numbering and for the result column names the loader read.
func TestPlaceholders(t *testing.T) {
	src := `-- resolves: review
-- source: marketplace
select id, user_hid as user_id, stars::bigint as star_rating, created_at
from reviews
where user_hid = ${user.id} and created_at <= ${ now } and ${user.id} <> ''
order by id
`
	g := graph(t)
	r, err := sqlload.ParseFile(g, "reviews.sql", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "reviews" || r.Resolves != g.Class("Review") {
		t.Errorf("resolver %s resolves %v", r.Name, r.Resolves)
	}
	if !strings.Contains(r.Query, "where user_hid = $1 and created_at <= $2 and $1 <> ''") {
		t.Errorf("query %q", r.Query)
	}
	if len(r.Params) != 2 || r.Params[0].Feature != g.Class("User").Feature("id") || r.Params[0].Text != "user.id" || !r.Params[1].Now {
		t.Errorf("params %+v", r.Params)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`create table reviews (id bigint, user_hid varchar, stars integer, created_at timestamp);
		insert into reviews values (1, 'u1', 4, '2024-01-01'), (2, 'u2', 5, '2024-01-02'), (3, 'u1', 2, '2024-03-01'), (4, 'u1', 3, '2024-01-05')`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(r.Query, "u1", time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names, _ := rows.Columns()
	var mapped []string
	for _, c := range r.Columns {
		mapped = append(mapped, c.Column)
	}
	if strings.Join(names, ",") != strings.Join(mapped, ",") {
		t.Errorf("DuckDB names the columns %v, the loader %v", names, mapped)
	}
	var ids []int64
	for rows.Next() {
		var id, stars int64
		var user string
		var ts time.Time
		if err := rows.Scan(&id, &user, &stars, &ts); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if fmt.Sprint(ids) != "[1 4]" {
		t.Errorf("rows %v, want [1 4]", ids)
	}
}

func TestTimeoutHeader(t *testing.T) {
	r, err := sqlload.ParseFile(graph(t), "u.sql", []byte("-- resolves: User\n-- timeout: 250ms\nselect id from users"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Timeout != 250*time.Millisecond {
		t.Errorf("timeout %v, want 250ms", r.Timeout)
	}
}

func TestStar(t *testing.T) {
	r, err := sqlload.ParseFile(graph(t), "u.sql", []byte("-- resolves: User\nselect * from users"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Columns) != 0 || r.Query != "select * from users" {
		t.Errorf("columns %v, query %q", r.Columns, r.Query)
	}
}

// TestUnknownColumnIsAWarning: a column that fills no feature is read as
// nothing and warned about, at its position (the tutorial's resolver
// selects created_at, email and birthday before User declares them; it was
// an error, and the whole repository failed to load).
func TestUnknownColumnIsAWarning(t *testing.T) {
	for _, tt := range []struct {
		name, src, marker, want string
	}{
		{"unknown column", "-- resolves: User\nselect id,\n  frist_name\nfrom users", "frist_name", `column frist_name matches no feature of User, so it is ignored (did you mean "first_name"?)`},
		{"aliased column", "-- resolves: User\nselect id, fn as frist_name from users", "fn as", `column frist_name matches no feature of User, so it is ignored (did you mean "first_name"?)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := graph(t)
			r, err := sqlload.ParseFile(g, "r.sql", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Columns) != 1 || r.Columns[0].Column != "id" {
				t.Errorf("columns %v, want only id", r.Columns)
			}
			want := at("r.sql", tt.src, tt.marker) + ": " + tt.want
			if got := fileWarnings(g, "r.sql"); len(got) != 1 || got[0] != want {
				t.Errorf("warnings %v\nwant       [%s]", got, want)
			}
		})
	}
}

// TestHeadersNotImplementedAreWarned: a header fletch does nothing with is
// a located warning, a typo with the nearest known header (they loaded
// with ok and did nothing).
func TestHeadersNotImplementedAreWarned(t *testing.T) {
	src := "-- resolves: User\n-- owner: ml@example.com\n-- type: streaming\n-- cron: 1h\n-- incremental: true\n-- sorce: pg\nselect id from users"
	g := graph(t)
	if _, err := sqlload.ParseFile(g, "r.sql", []byte(src)); err != nil {
		t.Fatal(err)
	}
	got := fileWarnings(g, "r.sql")
	want := []string{
		at("r.sql", src, "-- type") + `: header "type" is not supported yet: it is ignored`,
		at("r.sql", src, "-- cron") + `: header "cron" is not supported yet: it is ignored`,
		at("r.sql", src, "-- incremental") + `: header "incremental" is not supported yet: it is ignored`,
		at("r.sql", src, "-- sorce") + `: unknown header "sorce": it is ignored (did you mean "source"?)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// fileWarnings are the warnings of g about file.
func fileWarnings(g *features.Graph, file string) []string {
	var out []string
	for _, w := range g.Warnings {
		if strings.HasPrefix(w.Error(), file+":") {
			out = append(out, w.Error())
		}
	}
	return out
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, src, marker, want string
	}{
		{"bad timeout", "-- resolves: User\n-- timeout: soon\nselect id from users", "-- timeout", `timeout: expected a duration such as 500ms or 2s, found "soon"`},
		{"unknown class", "-- resolves: Usr\nselect id from users", "-- resolves", `resolves: unknown feature class Usr (did you mean "User"?)`},
		{"missing resolves", "-- source: pg\nselect id from users", "-- source", "missing header `-- resolves: Class` naming the feature class this query fills"},
		{"syntax error", "-- resolves: User\nselect id,\nfrom users", "from users", `SQL syntax error: syntax error at or near "from"`},
		{"syntax error after a placeholder", "-- resolves: User\nselect id from users where id = ${user.id} and or", "or", `SQL syntax error: syntax error at or near "or"`},
		{"unnamed expression", "-- resolves: User\nselect id, 1 + 2 from users", "1 + 2", "select list entry \"1 + 2 from users\" has no name: add `AS feature_name`"},
		{"relation column", "-- resolves: User\nselect id, reviews from users", "reviews from", `column reviews: User.reviews is a has-many relation, not a column: its rows come from Review's own resolver`},
		{"has-one column", "-- resolves: Review\nselect id, \"user\" from reviews", "\"user\"", `column user: Review.user is a relation, not a column; select its foreign key user_id instead`},
		{"windowed column", "-- resolves: User\nselect id, review_count from users", "review_count", `column review_count: User.review_count is windowed; select its windows by their names (review_count__604800__)`},
		{"duplicate column", "-- resolves: User\nselect id, id from users", "id from", `column id is selected twice`},
		{"unknown placeholder feature", "-- resolves: Review\nselect id from reviews where user_hid = ${user.idd}", "${user.idd}", `placeholder ${user.idd}: User has no feature idd (did you mean "id"?)`},
		{"unknown placeholder class", "-- resolves: Review\nselect id from reviews where user_hid = ${usr.id}", "${usr.id}", `placeholder ${usr.id}: unknown feature class usr (did you mean "user"?)`},
		{"bad placeholder", "-- resolves: Review\nselect id from reviews where at < ${today}", "${today}", `placeholder ${today}: expected ${now} or ${class.feature}, e.g. ${user.id}`},
		{"two statements", "-- resolves: User\nselect id from a; select id from b", "select", `a SQL resolver is one SELECT statement, found 2 statements`},
		{"not a select", "-- resolves: User\ndelete from users", "delete", `a SQL resolver is a SELECT query`},
		{"empty", "-- resolves: User\n", "-- resolves", `expected a SELECT query after the header comments`},
		{"duplicate header", "-- resolves: User\n-- Resolves: User\nselect id from users", "-- Resolves", `header "resolves" is given twice (first on line 1)`},
	}
	g := graph(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlload.ParseFile(g, "r.sql", []byte(tt.src))
			want := at("r.sql", tt.src, tt.marker) + ": " + tt.want
			if tt.name == "empty" {
				want = "r.sql:2:1: " + tt.want
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v\nwant     %s", err, want)
			}
		})
	}
}
