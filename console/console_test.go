package console

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/auth"
	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/features/pyload"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/planner"
	onlinemem "github.com/fletch-engine/fletch/stores/memory"
)

// The expectations below are read off the tutorial's definitions
// (examples/marketplace/marketplace.py and its .sql resolvers) and, for
// values, computed by DuckDB SQL over the same generated data.

func engine(t *testing.T, mem memory.Allocator) *planner.Engine {
	t.Helper()
	src, g := markettest.Fixture(t)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem)
	t.Cleanup(e.Close)
	return e
}

func exprs(g *features.Graph) native.Expressions {
	return func(c *features.Class, src string) (expr.Node, error) { return pyload.Expr(g, c, src) }
}

// viewers by the scopes of their token; "" is auth off.
func viewerWith(t *testing.T, scopes ...string) viewer {
	t.Helper()
	if len(scopes) == 0 {
		return viewer{}
	}
	v, err := auth.NewVerifier([]auth.Token{{Name: "t", Hash: auth.Hash("tok"), Scopes: scopes}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify("tok")
	if err != nil {
		t.Fatal(err)
	}
	return viewer{p: p}
}

func TestCatalogue(t *testing.T) {
	_, g := markettest.Fixture(t)
	d := newDeps(g)
	for _, tc := range []struct {
		name      string
		scopes    []string
		classes   []string
		relations []string // from.feature>to
		check     func(t *testing.T, c Catalogue)
	}{
		{name: "auth off", classes: []string{"item", "item_price", "review", "seller", "user", "user_item"},
			relations: []string{"item.prices>item_price", "item.reviews>review", "item.seller>seller", "item_price.item>item", "review.item>item",
				"review.user>user", "seller.items>item", "user.purchases>item_price", "user.reviews>review", "user_item.item>item", "user_item.user>user"},
			check: func(t *testing.T, c Catalogue) {
				user := feature(t, c, "user", "review_count")
				if user.Kind != "windowed" || strings.Join(user.Windows, ",") != "7d,30d,60d" || user.Materialization != "tiles of 1d" {
					t.Errorf("user.review_count: %+v, want windows 7d, 30d, 60d materialized in 1d tiles", user)
				}
				cls := class(t, c, "user")
				if cls.Owner != "ml-core@example.com" || strings.Join(cls.Tags, ",") != "marketplace" || cls.EventTime != "created_at" || cls.Primary != "id" {
					t.Errorf("class user: owner %q tags %v event time %q primary %q", cls.Owner, cls.Tags, cls.EventTime, cls.Primary)
				}
				if f := feature(t, c, "user", "full_name"); f.Owner != "ml-core@example.com" || f.ComputedBy != "expression" || !strings.Contains(f.Expression, "_.first_name") {
					t.Errorf("user.full_name: %+v", f)
				}
				if f := feature(t, c, "review", "star_rating"); f.Description != "1 to 5 stars" || strings.Join(f.Validations, ";") != "min=1, max=5" || f.Resolver != "reviews" {
					t.Errorf("review.star_rating: %+v", f)
				}
				if f := feature(t, c, "item", "genre_from_llm"); f.MaxStaleness != "infinity" {
					t.Errorf("item.genre_from_llm: staleness %q, want infinity", f.MaxStaleness)
				}
				if f := feature(t, c, "review", "normalized_rating"); f.ComputedBy != kindPython || f.Resolver != "get_normalized_rating" {
					t.Errorf("review.normalized_rating: %+v, want the python resolver get_normalized_rating", f)
				}
				if f := feature(t, c, "item", "purchase_count"); f.Default != "0" {
					t.Errorf("item.purchase_count: default %q, want 0", f.Default)
				}
			}},
		{name: "read:user", scopes: []string{"read:user"}, classes: []string{"user"},
			check: func(t *testing.T, c Catalogue) {
				for _, f := range class(t, c, "user").Features {
					if f.Name == "reviews" || f.Name == "purchases" {
						t.Errorf("user.%s (a relation to a hidden class) is shown", f.Name)
					}
				}
				if f := feature(t, c, "user", "average_rating_given"); f.ComputedBy != "hidden" || f.Expression != "" {
					t.Errorf("user.average_rating_given reads hidden reviews: %+v", f)
				}
				if f := feature(t, c, "user", "full_name"); f.Expression == "" {
					t.Errorf("user.full_name reads user only, yet shows no expression")
				}
				var rs []string
				for _, r := range c.Resolvers {
					rs = append(rs, r.Name)
				}
				if strings.Join(rs, ",") != "users" {
					t.Errorf("resolvers %v, want users only", rs)
				}
			}},
		{name: "read:user_item,item", scopes: []string{"read:user_item", "read:item"}, classes: []string{"item", "user_item"},
			relations: []string{"user_item.item>item"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := catalogue(g, d, viewerWith(t, tc.scopes...))
			var got []string
			for _, cl := range c.Classes {
				got = append(got, cl.Table)
			}
			if !slices.Equal(got, tc.classes) {
				t.Errorf("classes %v, want %v", got, tc.classes)
			}
			var rels []string
			for _, r := range c.Relations {
				rels = append(rels, r.From+"."+r.Feature+">"+r.To)
			}
			sort.Strings(rels)
			if !slices.Equal(rels, tc.relations) {
				t.Errorf("relations %v, want %v", rels, tc.relations)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func class(t *testing.T, c Catalogue, table string) ClassView {
	t.Helper()
	for _, cl := range c.Classes {
		if cl.Table == table {
			return cl
		}
	}
	t.Fatalf("no class %s", table)
	return ClassView{}
}

func feature(t *testing.T, c Catalogue, table, name string) FeatureView {
	t.Helper()
	for _, f := range class(t, c, table).Features {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no feature %s.%s", table, name)
	return FeatureView{}
}

func TestLineage(t *testing.T) {
	_, g := markettest.Fixture(t)
	d := newDeps(g)
	for _, tc := range []struct {
		feature string
		scopes  []string
		// upstream and downstream name some nodes (by id) that must be
		// there; absent must not.
		upstream, downstream, absent []string
		hiddenDetail                 []string // nodes shown without how they are computed
		hidden                       bool
		err                          string
	}{
		{feature: "user_item.price_fit",
			upstream:   []string{"sql:item_prices", "sql:items", "sql:users", "src:marketplace", "f:item.most_recent_price", "f:user.average_purchase_price", "f:user_item.user_id", "f:item_price.value"},
			downstream: nil,
			absent:     []string{"sql:reviews", "sql:sellers", "f:user_item.affordability_cap"}},
		{feature: "user_item.price_diff_ratio", upstream: []string{"f:user_item.price_diff"}, downstream: []string{"f:user_item.price_fit", "f:user_item.affordability_cap"}},
		{feature: "review.normalized_rating", upstream: []string{"py:get_normalized_rating", "f:review.star_rating", "f:item.total_reviews", "f:item.average_rating", "sql:reviews"}},
		{feature: "item.price", upstream: []string{"sql:items"}, downstream: []string{"f:item.is_discounted"}},
		{feature: "item.purchase_count", upstream: []string{"f:item.purchase_count__86400__", "f:item_price.type", "sql:item_prices"},
			downstream: []string{"f:item.average_purchase_value"}},
		// A relation to a hidden class is left out, as the catalogue leaves
		// it out, and a feature computed from one shows no expression (its
		// relation's join named item_price; its expression, item_price's
		// features).
		{feature: "user.average_rating_given", scopes: []string{"read:user"}, absent: []string{"f:review.star_rating", "sql:reviews", "f:user.reviews"}, hidden: true,
			hiddenDetail: []string{"f:user.average_rating_given"}},
		{feature: "user.average_purchase_price", scopes: []string{"read:user"}, absent: []string{"f:user.purchases", "f:item_price.value"}, hidden: true,
			hiddenDetail: []string{"f:user.average_purchase_price"}},
		{feature: "user.id", scopes: []string{"read:user"}, absent: []string{"f:user.purchases", "f:user.reviews"}, hidden: true},
		{feature: "user.purchases", scopes: []string{"read:user"}, err: `no feature "user.purchases"`},
		{feature: "user.full_name", scopes: []string{"read:user"}, upstream: []string{"f:user.first_name", "sql:users"}},
		{feature: "user_item.price_fti", err: `no feature "user_item.price_fti" (did you mean "user_item.price_fit"?)`},
		{feature: "user_item.price_fit", scopes: []string{"read:user"}, err: `no feature "user_item.price_fit"`},
	} {
		t.Run(tc.feature+"/"+strings.Join(tc.scopes, ","), func(t *testing.T) {
			l, err := lineage(g, d, viewerWith(t, tc.scopes...), tc.feature)
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) || strings.Contains(err.Error(), "user_item") && len(tc.scopes) > 0 && !strings.HasPrefix(tc.err, `no feature "user_item`) {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			layer := map[string]int{}
			for _, n := range l.Nodes {
				layer[n.ID] = n.Layer
			}
			for _, id := range tc.upstream {
				if lay, ok := layer[id]; !ok || lay >= 0 {
					t.Errorf("%s is not upstream (layer %d, present %v)", id, lay, ok)
				}
			}
			for _, id := range tc.downstream {
				if lay, ok := layer[id]; !ok || lay <= 0 {
					t.Errorf("%s is not downstream (layer %d, present %v)", id, lay, ok)
				}
			}
			for _, id := range tc.absent {
				if _, ok := layer[id]; ok {
					t.Errorf("%s is in the lineage", id)
				}
			}
			for _, id := range tc.hiddenDetail {
				for _, n := range l.Nodes {
					if n.ID == id && n.Detail != "hidden" {
						t.Errorf("%s shows %q, want hidden", id, n.Detail)
					}
				}
			}
			// No node names a class the viewer may not read.
			if v := viewerWith(t, tc.scopes...); len(tc.scopes) > 0 {
				for _, n := range l.Nodes {
					for _, w := range strings.FieldsFunc(n.Label+" "+n.Detail, func(r rune) bool { return r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
						if c := g.Class(w); c != nil && !v.canRead(c.Table) {
							t.Errorf("%s (%s) names %s, a class the viewer may not read", n.ID, n.Detail, w)
						}
					}
				}
			}
			if (l.Hidden > 0) != tc.hidden {
				t.Errorf("hidden %d, want hidden %v", l.Hidden, tc.hidden)
			}
			// Every edge goes from a lower layer to a higher one: the page
			// draws data flowing left to right.
			for _, e := range l.Edges {
				if layer[e.From] >= layer[e.To] {
					t.Errorf("edge %s (layer %d) → %s (layer %d) flows backwards", e.From, layer[e.From], e.To, layer[e.To])
				}
			}
		})
	}
}

func TestQuery(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := engine(t, mem)
	src, g := markettest.Fixture(t)
	r := runner{engine: e, exprs: exprs(g), mem: mem}
	now := marketplace.DefaultAnchor.Format("2006-01-02T15:04:05Z")
	at := "TIMESTAMPTZ '" + marketplace.DefaultAnchor.Format("2006-01-02 15:04:05Z07:00") + "'"

	// user_item for pairs, against DuckDB: price_fit = 1 / (1 + ratio²),
	// ratio = |most recent price − average purchase| / average purchase.
	pairs := [][2]string{{"50", "200"}, {"1", "2"}, {"7", "499"}}
	req := QueryRequest{Class: "user_item", Inputs: map[string][]string{}, Outputs: []string{"price_fit", "item.title"}, Now: now}
	for _, p := range pairs {
		req.Inputs["user_id"] = append(req.Inputs["user_id"], p[0])
		req.Inputs["item_id"] = append(req.Inputs["item_id"], p[1])
	}
	res, err := r.run(context.Background(), viewer{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Columns, []string{"price_fit", "item.title"}) || len(res.Rows) != len(pairs) || !res.Hits {
		t.Fatalf("columns %v, %d rows", res.Columns, len(res.Rows))
	}
	for i, p := range pairs {
		rows, err := src.DB().Query(`WITH recent AS (SELECT value, created_at FROM marketplace_item_prices WHERE item_id = ? AND created_at <= `+at+` AND value IS NOT NULL),
			app AS (SELECT avg(value) AS a FROM marketplace_item_prices WHERE buyer_hid = ? AND kind = 'purchase' AND created_at <= `+at+`)
			SELECT 1 / (1 + power(abs(r.value - app.a) / app.a, 2)), (SELECT title FROM marketplace_items WHERE id = ?)
			FROM recent r, app WHERE r.created_at = (SELECT max(created_at) FROM recent)`, p[1], p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		ref := markettest.Rows(t, rows)
		got := res.Rows[i][0].Value
		ok := false
		for _, want := range ref {
			if w, isF := want[0].(float64); isF && got != nil && math.Abs(got.(float64)-w) < 1e-9 {
				ok = true
			}
			if res.Rows[i][1].Value != want[1] {
				t.Errorf("pair %v: item.title %v, want %v", p, res.Rows[i][1].Value, want[1])
			}
		}
		if len(ref) == 0 && got == nil {
			ok = true
		}
		if !ok {
			t.Errorf("pair %v: price_fit %v, want one of %v", p, got, ref)
		}
	}
	// The plan: frames from user_item down to item_price, and stages
	// within them with their rows.
	if len(res.Plan.Frames) == 0 || res.Plan.Frames[0].Class != "user_item" || res.Plan.Frames[0].Parent != -1 {
		t.Fatalf("plan frames %+v", res.Plan.Frames)
	}
	fetches := 0
	for _, s := range res.Plan.Stages {
		if s.Frame < 0 || s.Frame >= len(res.Plan.Frames) {
			t.Errorf("stage %+v names no frame", s)
		}
		if what, ok := strings.CutPrefix(s.What, "fetch "); ok && !slices.Contains(res.Plan.Frames[s.Frame].Fetches, what) {
			t.Errorf("stage %q is drawn in frame %+v, which does not fetch it", s.What, res.Plan.Frames[s.Frame])
		}
		if strings.HasPrefix(s.What, "fetch item_prices") {
			fetches++
			if f := res.Plan.Frames[s.Frame]; f.Class != "item_price" {
				t.Errorf("the item_prices fetch is drawn in frame %+v, want a has-many of item_price", f)
			}
			if s.In != len(pairs) {
				t.Errorf("stage %+v: %d keys in, want %d (one batch per source)", s, s.In, len(pairs))
			}
		}
	}
	if fetches != 2 || !strings.Contains(res.Plan.Text, "analyze: 3 rows in") {
		t.Errorf("%d item_prices fetches (want 2: through item and through user); plan:\n%s", fetches, res.Plan.Text)
	}

	// SQL: a lookup (with hit flags) and SQL beyond one (over DuckDB).
	res, err = r.run(context.Background(), viewer{}, QueryRequest{SQL: `SELECT full_name FROM "user" WHERE id = '50'`, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(q string) any {
		rows, err := src.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		return markettest.Rows(t, rows)[0][0]
	}
	if want := ref(`SELECT first_name || ' ' || last_name FROM marketplace_users WHERE hid = '50'`); len(res.Rows) != 1 || res.Rows[0][0].Value != want {
		t.Errorf("full_name of user 50: %v, want %v", res.Rows, want)
	}
	res, err = r.run(context.Background(), viewer{}, QueryRequest{SQL: `SELECT count(*) AS n FROM item WHERE price > 100`, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if want := ref(`SELECT count(*) FROM marketplace_items WHERE list_price > 100`); len(res.Rows) != 1 || res.Hits || res.Rows[0][0].Value != want {
		t.Errorf("count of items over 100: %v, want %v", res.Rows, want)
	}

	// Without a now, the server's clock: a scan sees every event (the
	// generated ones are all in the past).
	res, err = r.run(context.Background(), viewer{}, QueryRequest{SQL: `SELECT count(*) FROM review`})
	if err != nil {
		t.Fatal(err)
	}
	if want := ref(`SELECT count(*) FROM marketplace_reviews`); len(res.Rows) != 1 || res.Rows[0][0].Value != want {
		t.Errorf("count of reviews now: %v, want %v", res.Rows, want)
	}

	// SQL beyond a lookup stops at the first row past the ones shown:
	// scanning every review to count rows nobody sees cost a core for as
	// long as the class is large.
	res, err = r.run(context.Background(), viewer{}, QueryRequest{SQL: `SELECT id, star_rating FROM review`, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if n := ref(`SELECT count(*) FROM marketplace_reviews`).(int64); n <= maxRows+1 {
		t.Fatalf("%d reviews: the test needs more than %d", n, maxRows+1)
	}
	if len(res.Rows) != maxRows || res.TotalRows != maxRows || !res.More {
		t.Errorf("SELECT … FROM review: %d rows shown, %d counted, more %v; want %d, %d, true", len(res.Rows), res.TotalRows, res.More, maxRows, maxRows)
	}
	res, err = r.run(context.Background(), viewer{}, QueryRequest{SQL: `SELECT id FROM review LIMIT 5`, Now: now})
	if err != nil || len(res.Rows) != 5 || res.TotalRows != 5 || res.More {
		t.Errorf("LIMIT 5: %v, %d rows, %d counted, more %v", err, len(res.Rows), res.TotalRows, res.More)
	}

	// Errors, in the viewer's eyes: nothing hidden is named.
	user := viewerWith(t, "read:user")
	reviews := viewerWith(t, "read:user", "read:review")
	for _, tc := range []struct {
		v        viewer
		req      QueryRequest
		want     string
		notNamed string
	}{
		{viewer{}, QueryRequest{Class: "usr", Inputs: map[string][]string{"id": {"1"}}}, `no feature class "usr" (did you mean "user"?)`, ""},
		{viewer{}, QueryRequest{Class: "user"}, "give at least one input of user, e.g. its key id", ""},
		{user, QueryRequest{Class: "user_item", Inputs: map[string][]string{"user_id": {"1"}}}, `no feature class "user_item"`, "item_price"},
		{user, QueryRequest{SQL: `SELECT title FROM item WHERE id = '1'`}, "item", "user_item"},
		{user, QueryRequest{Class: "user", Inputs: map[string][]string{"id": {"1"}}, Outputs: []string{"average_rating_given"}}, errDenied.Error(), "review"},
		{viewer{}, QueryRequest{Class: "user", Inputs: map[string][]string{"id": {"1"}}, Now: "yesterday"}, `now "yesterday"`, ""},
		// A typo past a relation into a hidden class suggests none of its
		// features (it suggested item's "title"), on either path.
		{reviews, QueryRequest{SQL: `SELECT item.titl FROM review WHERE id = 1`}, errDenied.Error(), "title"},
		{reviews, QueryRequest{Class: "review", Inputs: map[string][]string{"id": {"1"}}, Outputs: []string{"item.titl"}}, errDenied.Error(), "title"},
		{reviews, QueryRequest{Class: "review", Inputs: map[string][]string{"id": {"1"}}, Outputs: []string{"itme"}}, errDenied.Error(), `"item"`},
		{reviews, QueryRequest{Class: "review", Inputs: map[string][]string{"id": {"1"}}, Outputs: []string{"star_ratin"}}, `did you mean "star_rating"`, ""},
	} {
		_, err := r.run(context.Background(), tc.v, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.notNamed != "" && strings.Contains(err.Error(), tc.notNamed)) {
			t.Errorf("%+v: error %v, want %q naming no %q", tc.req, err, tc.want, tc.notNamed)
		}
	}

	// A `*` is the columns the viewer may read, as on the Flight port:
	// user's but those computed from reviews or purchases.
	for _, q := range []string{`SELECT * FROM user WHERE id = '1'`, `SELECT * FROM user LIMIT 2`} {
		res, err := r.run(context.Background(), user, QueryRequest{SQL: q, Now: now})
		if err != nil {
			t.Fatalf("%s as read:user: %v", q, err)
		}
		if !slices.Contains(res.Columns, "full_name") || slices.Contains(res.Columns, "average_rating_given") || slices.Contains(res.Columns, "average_purchase_price") {
			t.Errorf("%s as read:user: columns %v", q, res.Columns)
		}
	}
}

// TestHandler checks the API's authentication and that every answer is
// cut to the token's classes.
func TestHandler(t *testing.T) {
	e := engine(t, memory.NewGoAllocator())
	v, err := auth.NewVerifier([]auth.Token{
		{Name: "all", Hash: auth.Hash("all-token"), Scopes: []string{"read:*"}},
		{Name: "users", Hash: auth.Hash("user-token"), Scopes: []string{"read:user"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	slow := NewSlowest()
	srv := httptest.NewServer(Handler(Config{Current: func() (*planner.Engine, *auth.Verifier) { return e, v }, Exprs: exprs, Slowest: slow, Mode: "server"}))
	defer srv.Close()
	call := func(method, path, token, body string) (int, map[string]any, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var raw json.RawMessage
		_ = json.NewDecoder(res.Body).Decode(&raw)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return res.StatusCode, m, raw
	}
	for _, tc := range []struct {
		method, path, token, body string
		status                    int
		has, hasNot               string
	}{
		{"GET", "/console/api/catalogue", "", "", 401, "no credentials", ""},
		{"GET", "/console/api/catalogue", "wrong", "", 401, "unknown token", ""},
		{"GET", "/console/api/catalogue", "all-token", "", 200, `"user_item"`, ""},
		{"GET", "/console/api/catalogue", "user-token", "", 200, `"full_name"`, "item"},
		{"GET", "/console/api/whoami", "user-token", "", 200, `"read:user"`, ""},
		{"GET", "/console/api/lineage?feature=user.full_name", "user-token", "", 200, `"sql:users"`, ""},
		{"GET", "/console/api/lineage?feature=item.title", "user-token", "", 404, `no feature \"item.title\"`, ""},
		{"POST", "/console/api/query", "user-token", `{"class":"user","inputs":{"id":["50"]},"outputs":["full_name"]}`, 200, `"full_name"`, ""},
		{"POST", "/console/api/query", "user-token", `{"clas":"user"}`, 400, "unknown field", ""},
		{"GET", "/console/api/live", "all-token", "", 404, "fletch serve", ""},
		{"GET", "/console/api/slow", "user-token", "", 200, "[", "user_item"},
		{"GET", "/console/api/slow", "all-token", "", 200, "user_item", ""},
		{"GET", "/console/", "", "", 200, "", ""}, // the page itself holds no data
	} {
		if strings.Contains(tc.path, "slow") {
			recordQuery(slow, "user_item")
		}
		status, _, raw := call(tc.method, tc.path, tc.token, tc.body)
		if status != tc.status || !strings.Contains(string(raw), tc.has) || (tc.hasNot != "" && strings.Contains(string(raw), tc.hasNot)) {
			t.Errorf("%s %s as %q: %d %s, want %d with %q and no %q", tc.method, tc.path, tc.token, status, raw, tc.status, tc.has, tc.hasNot)
		}
	}
}

func TestJSONSafe(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{math.NaN(), `"NaN"`},
		{math.Inf(1), `"Infinity"`},
		{float32(math.Inf(-1)), `"-Infinity"`},
		{1.5, `1.5`},
		{[]any{1.0, math.NaN(), nil}, `[1,"NaN",null]`},
		{map[string]any{"a": math.Inf(1), "b": "x"}, `{"a":"Infinity","b":"x"}`},
	} {
		got, err := json.Marshal(jsonSafe(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("jsonSafe(%v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

// TestQueryHits: a feature with max_staleness (item.genre_from_llm,
// "infinity" in marketplace.py) is computed once, then served from the
// online store, and the answer's Hit? flag says so cell by cell.
func TestQueryHits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	src, g := markettest.Fixture(t)
	e := planner.NewEngine(g, markettest.OneSource{Src: src}, mem, planner.WithOnlineStore(onlinemem.New()))
	defer e.Close()
	r := runner{engine: e, exprs: exprs(g), mem: mem}
	req := QueryRequest{Class: "item", Inputs: map[string][]string{"id": {"200"}}, Outputs: []string{"genre_from_llm", "title"}}
	var hits [][2]bool
	for range 2 {
		res, err := r.run(context.Background(), viewer{}, req)
		if err != nil {
			t.Fatal(err)
		}
		hits = append(hits, [2]bool{res.Rows[0][0].Hit, res.Rows[0][1].Hit})
		e.Flush() // the write-back reaches the store before the next run
	}
	if hits[0] != [2]bool{false, false} || hits[1] != [2]bool{true, false} {
		t.Errorf("hits of (genre_from_llm, title) over two runs: %v, want computed then served (title has no staleness)", hits)
	}
}

// TestConcurrentLineage: pages read one dependency index at once (it is
// built once per graph and shared); reading it must not write to it (a
// resolver's dependencies were memoized on first read: concurrent map
// writes, which kill the process).
func TestConcurrentLineage(t *testing.T) {
	_, g := markettest.Fixture(t)
	d := newDeps(g)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, c := range g.Classes {
				for _, f := range c.Features {
					if _, err := lineage(g, d, viewer{}, f.QualifiedName()); err != nil {
						t.Error(err)
					}
				}
			}
			catalogue(g, d, viewerWith(t, "read:user"))
		})
	}
	wg.Wait()
}
