package sql

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/fletch-engine/fletch/statement"
)

// TestTemplateAgreesWithParse checks that a statement filled in from its
// template is the statement Parse makes of the text itself, and that a
// text Parse refuses never gets a statement through its template (the
// server then parses the text for the error).
func TestTemplateAgreesWithParse(t *testing.T) {
	g := marketplaceGraph(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		sql      string
		template bool // whether the template path must give a statement
	}{
		{`SELECT full_name FROM user WHERE id = '50'`, true},
		{`SELECT full_name, email FROM user WHERE id = 'it''s'`, true},
		{`SELECT user.full_name FROM user WHERE user.id = 123`, true},
		{"SELECT full_name -- a comment with 'quotes' and ?\nFROM user /* 7 */ WHERE id = '9'", true},
		{`SELECT "item.title", review.star_rating FROM review WHERE id = 7`, true},
		{`SELECT review_count__604800__, "review_count[30d]" FROM user WHERE id = 'x'`, true},
		{`SELECT price_diff FROM user_item WHERE user_id = '50' AND item_id = '200'`, true},
		{`SELECT price_diff FROM "UserItem" WHERE item_id = 200 AND user_id = 50`, true},
		{`SELECT full_name FROM user WHERE id = '1' AND __as_of__ = '2026-01-01T00:00:00Z'`, true},
		{`SELECT star_rating FROM review WHERE id = '12'`, true},
		{`SELECT star_rating FROM review WHERE id = '12'::int`, true},
		{`SELECT star_rating * 2 + 1 AS a FROM review WHERE id = 1`, false}, // literals outside WHERE
		{`SELECT full_name FROM user WHERE id IN ('1','2','3')`, false},
		{`SELECT full_name FROM user WHERE id = '1' LIMIT 2`, false},
		{`SELECT star_rating FROM review WHERE __as_of__ = TIMESTAMP '2026-03-04 05:06:07.5' AND id = '12'`, true},
		{`SELECT full_name FROM user WHERE id = ?`, false},
		{`SELECT full_name FROM user WHERE id = $1`, false},
		{`SELECT full_name FROM user WHERE id = E'x'`, false},
		{`SELECT f FROM user WHERE id = 99999999999999999999`, false},
		{`SELECT f FROM user WHERE id = 'unterminated`, false},
		// Texts Parse refuses.
		{`SELECT id FROM review WHERE id = 'abc'`, false},
		{`SELECT id FROM user WHERE id = 1.5`, false},
		{`SELECT full_nme FROM user WHERE id = '1'`, false},
		{`SELECT id FROM user WHERE email = 'a@b'`, false},
		{`SELECT id FROM review WHERE id = -3`, false},
		{`SELECT id FROM review WHERE id = 1e3`, false},
	}
	for _, c := range cases {
		want, wantErr := Parse(g, c.sql)
		var got *statement.Statement
		if text, vals, ok := template(c.sql); ok {
			if tmpl, err := Parse(g, text); err == nil {
				got, _ = tmpl.WithValues(c.sql, vals)
			}
		}
		if got == nil {
			if c.template {
				t.Errorf("%s: no statement through the template", c.sql)
			}
			continue
		}
		if !c.template {
			t.Errorf("%s: a statement through the template, expected none", c.sql)
		}
		if wantErr != nil {
			t.Errorf("%s: Parse refuses it (%v), the template accepts it", c.sql, wantErr)
			continue
		}
		if fields(got.Inputs) != fields(want.Inputs) || outputs(got.Outputs) != outputs(want.Outputs) || got.Limit != want.Limit || got.Text != c.sql || len(got.Params) != 0 {
			t.Errorf("%s: template gives inputs %s, outputs %s, limit %d; Parse: %s, %s, %d", c.sql, fields(got.Inputs), outputs(got.Outputs), got.Limit, fields(want.Inputs), outputs(want.Outputs), want.Limit)
			continue
		}
		a, err := got.LiteralInputs(mem)
		if err != nil {
			t.Fatal(err)
		}
		b, err := want.LiteralInputs(mem)
		if err != nil {
			t.Fatal(err)
		}
		if rows(a) != rows(b) {
			t.Errorf("%s: template rows %s, Parse rows %s", c.sql, rows(a), rows(b))
		}
		a.Release()
		b.Release()
	}
}
