package features_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fletch-engine/fletch/features"
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
)

// The classes of the seeds' marketplace tutorial, with FeatureTime event
// times (the tutorial's get_normalized_rating resolver is tested in
// features/pysym).
const marketplace = `from chalk.features import features, DataFrame, FeatureTime, _, feature
from chalk import Windowed, windowed
import chalk.functions as F

@features(owner="ml-core@chalk.ai")
class User:
    id: str
    created_at: FeatureTime
    first_name: str
    last_name: str
    email: str
    birthday: date
    full_name: str = _.first_name + " " + _.last_name
    # computed after we've fetched first and last name
    reviews: DataFrame[Review]  # has-many relationship
    purchases: "DataFrame[ItemPrice]"
    average_rating_given: float = _.reviews.star_rating.mean()
    average_purchase_price: float | None = _.purchases[_.type == "purchase", _.value].mean()
    review_count: Windowed[int] = windowed(
        "7d",
        "30d",
        "60d",
        expression=_.reviews[_.created_at > _.chalk_window].count(),
        materialization=MaterializationWindowConfig(
            bucket_duration="3d",
            backfill_schedule="0 0 * * *",
        )
    )

@features
class Review:
    id: int
    created_at: FeatureTime
    review_headline: str
    review_body: str
    star_rating: int = feature(min=1, max=5)
    normalized_rating: float
    # user_id: str
    user_id: User.id
    user: User
    item_id: "Item.id"
    item: "Item"
    sentiment_from_llm: str = feature(max_staleness="infinity")

@features
class Item:
    id: str
    title: str
    genre_from_llm: str = feature(max_staleness="infinity")
    price: float
    prices: "DataFrame[ItemPrice]"
    reviews: "DataFrame[Review]"
    times_purchased: int = _.prices[_.type == "purchase"].count()
    average_price: float | None = _.prices[_.value].mean()
    most_recent_price: float | None = _.prices[_.value].max_by(_.created_at)
    is_discounted: bool = _.price < _.average_price
    average_rating: float | None = _.reviews[_.star_rating].mean()
    total_reviews: int = _.reviews.count()
    review_count: Windowed[int] = windowed("7d", "30d", expression=_.reviews[_.created_at > _.chalk_window].count())

@features
class ItemPrice:
    id: int
    item_id: Item.id
    user_id: "User.id"
    type: str
    value: float | None
    created_at: FeatureTime

@features
class UserItem:
    id: str = _.user_id + "-" + _.item_id
    user_id: "User.id"
    user: "User"
    item_id: "Item.id"
    item: "Item"
    # import chalk.functions as F
    price_diff: float = F.abs(_.item.most_recent_price - _.user.average_purchase_price)
    price_diff_ratio: float = _.price_diff / _.user.average_purchase_price
    affordability_cap: float = F.sigmoid(_.price_diff_ratio)
    price_fit: float = 1 / (1 + _.price_diff_ratio**2)
`

const usersSQL = `-- resolves: User
-- source: postgres
select
hid as id,
created_at,
first_name,
last_name,
email,
birthday
from marketplace_users
`

const reviewsSQL = `-- resolves: Review
-- source: postgres
select id, created_at, review_headline, review_body, star_rating, user_hid as user_id, item_id
from marketplace_reviews
where created_at <= ${now}
`

func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadMarketplace(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"marketplace.py":                "",
		"features/marketplace.py":       marketplace,
		"resolvers/users.chalk.sql":     usersSQL,
		"resolvers/reviews.sql":         reviewsSQL,
		"README.md":                     "not a definition",
		".git/hooks/bad.py":             "this is not python (",
		"__pycache__/bad.py":            "nor this (",
		".venv/lib/site.py":             "class (",
		"node_modules/x/query.sql":      "select (",
		"features/__pycache__/more.sql": "select (",
	})
	g, err := features.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.ClassNames(), " "); got != "item item_price review user user_item" {
		t.Errorf("classes %s", got)
	}
	user, review, item, price, ui := g.Class("User"), g.Class("review"), g.Class("Item"), g.Class("ItemPrice"), g.Class("user_item")

	// Relations, both ways.
	rels := []struct {
		f    *features.Feature
		want features.Relation
	}{
		{review.Feature("user"), features.Relation{From: review, To: user, FromKey: review.Feature("user_id"), ToKey: user.Feature("id")}},
		{user.Feature("reviews"), features.Relation{From: user, To: review, FromKey: user.Feature("id"), ToKey: review.Feature("user_id"), Many: true}},
		{item.Feature("prices"), features.Relation{From: item, To: price, FromKey: item.Feature("id"), ToKey: price.Feature("item_id"), Many: true}},
		{user.Feature("purchases"), features.Relation{From: user, To: price, FromKey: user.Feature("id"), ToKey: price.Feature("user_id"), Many: true}},
		{ui.Feature("user"), features.Relation{From: ui, To: user, FromKey: ui.Feature("user_id"), ToKey: user.Feature("id")}},
		{ui.Feature("item"), features.Relation{From: ui, To: item, FromKey: ui.Feature("item_id"), ToKey: item.Feature("id")}},
	}
	for _, r := range rels {
		if r.f.Relation == nil || *r.f.Relation != r.want {
			t.Errorf("%s: relation %+v, want %+v", r.f.QualifiedName(), r.f.Relation, r.want)
		}
	}

	// Keys, event times, types.
	if user.Primary != user.Feature("id") || user.EventTime != user.Feature("created_at") || ui.Primary != ui.Feature("id") || ui.EventTime != nil {
		t.Errorf("keys: user %v/%v, user_item %v/%v", user.Primary, user.EventTime, ui.Primary, ui.EventTime)
	}
	types := map[*features.Feature]string{
		review.Feature("user_id"): "str", review.Feature("item_id"): "str", price.Feature("value"): "float | None",
		user.Feature("birthday"): "date", user.Feature("created_at"): "datetime", user.Feature("reviews"): "list[Review]",
		ui.Feature("item"): "Item", user.Feature("review_count__5184000__"): "int",
	}
	for f, want := range types {
		if f.Type.String() != want {
			t.Errorf("%s: type %s, want %s", f.QualifiedName(), f.Type, want)
		}
	}
	if got := user.Feature("id").Type.Arrow().String(); got != "utf8" {
		t.Errorf("user.id arrow type %s", got)
	}

	// Windows.
	rc := user.Feature("review_count")
	var fqns []string
	for _, w := range rc.Windows {
		fqns = append(fqns, w.Name+"="+w.Window.Label)
	}
	if strings.Join(fqns, " ") != "review_count__604800__=7d review_count__2592000__=30d review_count__5184000__=60d" {
		t.Errorf("windows %v", fqns)
	}
	if w := user.Feature(`review_count["60d"]`); w == nil || w.Window.Duration != 60*24*time.Hour || w.Window.Group != rc {
		t.Errorf(`review_count["60d"] is %+v`, w)
	}
	if m := rc.Materialization; m == nil || m.BucketDuration != 3*24*time.Hour || m.BackfillSchedule != "0 0 * * *" || rc.Windows[0].Materialization != m {
		t.Errorf("materialization %+v", m)
	}
	if st := review.Feature("sentiment_from_llm").MaxStaleness; !st.Infinite {
		t.Errorf("sentiment max_staleness %+v", st)
	}
	if s := review.Feature("star_rating"); s.Min.Value != int64(1) || s.Max.Value != int64(5) {
		t.Errorf("star_rating bounds %v..%v", s.Min, s.Max)
	}
	if user.Options["owner"].String() != `"ml-core@chalk.ai"` {
		t.Errorf("owner %v", user.Options["owner"])
	}

	exprs := map[*features.Feature]string{
		user.Feature("full_name"):               `((_.first_name + " ") + _.last_name)`,
		user.Feature("average_rating_given"):    `_.reviews[_.star_rating].mean()`,
		user.Feature("review_count__2592000__"): `_.reviews[(_.created_at > _.chalk_window)].count()`,
		item.Feature("times_purchased"):         `_.prices[(_.type == "purchase")].count()`,
		item.Feature("most_recent_price"):       `_.prices[_.value].max_by(_.created_at)`,
		item.Feature("is_discounted"):           `(_.price < _.average_price)`,
		ui.Feature("id"):                        `((_.user_id + "-") + _.item_id)`,
		ui.Feature("price_diff"):                `F.abs((_.item.most_recent_price - _.user.average_purchase_price))`,
		ui.Feature("price_fit"):                 `(1 / (1 + (_.price_diff_ratio ** 2)))`,
	}
	for f, want := range exprs {
		if f.Expr == nil || f.Expr.String() != want {
			t.Errorf("%s = %v, want %s", f.QualifiedName(), f.Expr, want)
		}
	}

	// SQL resolvers, in sorted path order, with their columns.
	if len(g.SQLResolvers) != 2 {
		t.Fatalf("SQL resolvers %v", g.SQLResolvers)
	}
	rv, us := g.SQLResolvers[0], g.SQLResolvers[1]
	if rv.Name != "reviews" || rv.Resolves != review || len(rv.Columns) != 7 || !rv.Params[0].Now || !strings.HasSuffix(rv.Query, "where created_at <= $1") {
		t.Errorf("reviews resolver %+v", rv)
	}
	if us.Name != "users" || us.Resolves != user || us.Source != "postgres" || us.Columns[0].Feature != user.Feature("id") ||
		us.File != filepath.Join(dir, "resolvers", "users.chalk.sql") {
		t.Errorf("users resolver %+v", us)
	}
	if want := filepath.Join(dir, "features", "marketplace.py") + ":6:7"; user.Pos.String() != want {
		t.Errorf("User at %s, want %s", user.Pos, want)
	}
}

func TestLoadErrors(t *testing.T) {
	resolver := `
@features
class Review:
    id: int
    star_rating: int
    normalized_rating: float

@online
def get_normalized_rating(
    review_rating: Review.star_rating,
) -> Review.normalized_rating:
    return review_rating
`
	dir := writeRepo(t, map[string]string{
		"a.py":       resolver,
		"b.py":       "@features\nclass Broken:\n    id: int\n    x: int = _.yy\n",
		"bad.sql":    "-- resolves: Reviw\nselect id from reviews",
		"ok.sql":     "-- resolves: Review\nselect id, stars as star_ratin from reviews",
		"nested/.py": "ignored (", // a hidden file name is not a hidden folder: still loaded
	})
	g, err := features.Load(dir)
	if err == nil {
		t.Fatal("expected errors")
	}
	for _, want := range []string{
		filepath.Join(dir, "b.py") + ":4:14: Broken has no feature yy",
		filepath.Join(dir, "bad.sql") + `:1:1: resolves: unknown feature class Reviw (did you mean "Review"?)`,
		filepath.Join(dir, "nested", ".py") + ":1:1: syntax error",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors\n%v\nlack %s", err, want)
		}
	}
	var de *features.DefinitionError
	if !errors.As(err, &de) {
		t.Errorf("%T holds no DefinitionError", err)
	}
	// A resolver column that fills no feature is a warning, not an error.
	if w := filepath.Join(dir, "ok.sql") + `:2:12: column star_ratin matches no feature of Review, so it is ignored (did you mean "star_rating"?)`; g == nil || len(g.Warnings) != 1 || g.Warnings[0].Error() != w || strings.Contains(err.Error(), "star_ratin") {
		t.Errorf("warnings %v, errors %v; want the warning %s alone", g.Warnings, err, w)
	}
	if g == nil || g.Class("Review") == nil {
		t.Errorf("the partial graph is returned with the errors")
	}
	if g == nil || len(g.PyResolvers) != 1 || g.PyResolvers[0].File != filepath.Join(dir, "a.py") {
		t.Errorf("the resolver of a.py is loaded, with its file: %+v", g.PyResolvers)
	}
}

// The repository the project ships loads without errors.
func TestLoadExample(t *testing.T) {
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Classes) == 0 || len(g.SQLResolvers) == 0 {
		t.Errorf("example loaded %d classes, %d SQL resolvers", len(g.Classes), len(g.SQLResolvers))
	}
	for _, r := range g.SQLResolvers {
		if r.Resolves == nil || len(r.Columns) == 0 {
			t.Errorf("%s: resolves %v, columns %v", r.File, r.Resolves, r.Columns)
		}
	}
}
