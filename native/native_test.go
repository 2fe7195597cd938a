package native_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/features/expr"
	"github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/native"
	"github.com/fletch-engine/fletch/statement"
)

func reader(t *testing.T) *native.Reader {
	t.Helper()
	g, err := features.Load("../examples/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	return native.NewReader(g, func(c *features.Class, src string) (expr.Node, error) { return pyload.Expr(g, c, src) }, 16, 1<<20)
}

var userIDs = arrow.NewSchema([]arrow.Field{{Name: "user.id", Type: arrow.BinaryTypes.StringView}}, nil)

func TestRead(t *testing.T) {
	r := reader(t)
	st, err := r.Read([]byte(`{"query": {"outputs": ["user.full_name", "review_count[7d]", "F.lower(_.email).alias(\"e\")"],
		"now": "2026-03-01T12:00:00Z", "staleness": {"user.full_name": "0s", "*": "infinity"}, "meta": true, "partial": true}}`), userIDs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Class.Table != "user" || len(st.Inputs) != 1 || st.Inputs[0].Name != "id" || !arrow.TypeEqual(st.Inputs[0].Type, arrow.BinaryTypes.String) {
		t.Errorf("class %s, inputs %v: want user, id as utf8 (the feature's type)", st.Class.Table, st.Inputs)
	}
	var outs []string
	for _, o := range st.Outputs {
		outs = append(outs, o.Name+"="+o.Expr.String())
	}
	if got, want := strings.Join(outs, " "), `user.full_name=_.full_name review_count[7d]=_.review_count__604800__ e=F.lower(_.email).alias("e")`; got != want {
		t.Errorf("outputs %s, want %s", got, want)
	}
	o := st.Options
	if !o.Now.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) || !o.Meta || !o.Partial || o.Explain ||
		o.Staleness["user.full_name"] != 0 || o.Staleness["*"] != -1 || len(o.Staleness) != 2 {
		t.Errorf("options %+v", o)
	}
	again, err := r.Read([]byte(`{"query": {"outputs": ["user.full_name", "review_count[7d]", "F.lower(_.email).alias(\"e\")"],
		"now": "2026-03-01T12:00:00Z", "staleness": {"user.full_name": "0s", "*": "infinity"}, "meta": true, "partial": true}}`), userIDs)
	if err != nil || again != st {
		t.Errorf("the same command read twice: %v (same statement: %v)", err, again == st)
	}

	// The seeds write windows `name["7d"]`, qualified by the Python class.
	seed, err := r.Read([]byte(`{"query": {"outputs": ["review_count[\"7d\"]", "User.review_count['30d']"]}}`), userIDs)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := seed.Outputs[0].Expr.String(), seed.Outputs[1].Expr.String(); a != "_.review_count__604800__" || b != "_.review_count__2592000__" {
		t.Errorf("seed spellings of windows: %s, %s", a, b)
	}

	all, err := r.Read([]byte(`{"query": {}}`), userIDs)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(statement.Columns(all.Class)); len(all.Outputs) != n {
		t.Errorf("no outputs asked: %d outputs, want every scalar feature (%d)", len(all.Outputs), n)
	}
}

// TestRecomputeFeatures: Chalk's recompute_features as the native query
// takes it: true (and absent) recomputes, false reads every output from
// the offline store, a list recomputes the features it names.
func TestRecomputeFeatures(t *testing.T) {
	r := reader(t)
	for _, c := range []struct {
		value     string
		fromLog   bool
		recompute []string
	}{{"", false, nil}, {"true", false, nil}, {"false", true, nil}, {`["user.full_name", "email"]`, true, []string{"user.full_name", "email"}},
		{`["review_count[\"7d\"]", "User.review_count['30d']", "user.review_count[1d]"]`, true,
			[]string{"user.review_count__604800__", "user.review_count__2592000__", "user.review_count__86400__"}}} {
		cmd := `{"query": {"outputs": ["full_name"]}}`
		if c.value != "" {
			cmd = `{"query": {"outputs": ["full_name"], "recompute_features": ` + c.value + `}}`
		}
		st, err := r.Read([]byte(cmd), userIDs)
		if err != nil {
			t.Fatal(err)
		}
		if st.Options.FromLog != c.fromLog || !slices.Equal(st.Options.Recompute, c.recompute) {
			t.Errorf("recompute_features %s: from log %v, recompute %v; want %v, %v", c.value, st.Options.FromLog, st.Options.Recompute, c.fromLog, c.recompute)
		}
	}
}

func TestReadErrors(t *testing.T) {
	r := reader(t)
	for _, c := range []struct {
		cmd    string
		inputs *arrow.Schema
		want   string
	}{
		{`{"query": {"outputs": ["id"], "partail": true}}`, userIDs, `unknown field "partail" (did you mean "partial"?)`},
		{`{"query": {"class": "usr"}}`, userIDs, `unknown feature class "usr" (did you mean "user"?)`},
		{`{"query": {}}`, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), `name the class`},
		{`{"query": {"outputs": ["F.lower(_.frist_name)"]}}`, userIDs, `outputs[0] "F.lower(_.frist_name)": 1:9: User has no feature frist_name (did you mean "first_name"?)`},
		{`{"query": {"now": "yesterday"}}`, userIDs, `now: invalid timestamp "yesterday"`},
		{`{"query": {"staleness": {"user.ful_name": "1h"}}}`, userIDs, `user has no feature "ful_name" (did you mean "full_name"?)`},
		{`{"query": {"class": "user"}}`, arrow.NewSchema([]arrow.Field{{Name: "idd", Type: arrow.BinaryTypes.String}}, nil), `input column "idd" is not a feature of user (did you mean "id"?)`},
		{`[1]`, userIDs, `the descriptor must be a CMD`},
		{`{"query": null}`, userIDs, `missing "query"`},
		{`{"query": {"recompute_features": "no"}}`, userIDs, `recompute_features must be true, false or a list of feature names, not no`},
		{`{"query": {"recompute_features": [1]}}`, userIDs, `found 1 in the list`},
		{`{"query": {"recompute_feature": false}}`, userIDs, `(did you mean "recompute_features"?)`},
	} {
		_, err := r.Read([]byte(c.cmd), c.inputs)
		if err == nil || statement.KindOf(err) != statement.InvalidInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an InvalidInput containing %s", c.cmd, err, c.want)
		}
	}
}
