package sql

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/statement"
)

// FuzzParse feeds arbitrary SQL text to Parse: it must return a statement
// or a planner error with a kind a client can act on, never panic, and a
// statement's input rows (or a parameter row of its own schema) must build.
func FuzzParse(f *testing.F) {
	g := marketplaceGraph(f)
	for _, s := range []string{
		`SELECT full_name FROM user WHERE id = '50'`,
		`select email, lower(full_name) AS l FROM fletch.features."user" where id in ('1', '2', '3') LIMIT 2`,
		`SELECT "item.title", star_rating * 2 FROM review WHERE id = ? AND __as_of__ = ?`,
		`SELECT id FROM user_item WHERE (user_id, item_id) IN (('a', 'b'), ('c', 'd'))`,
		`SELECT CASE WHEN star_rating > 3 THEN 'good' ELSE 'bad' END FROM review WHERE id = $1`,
		`SELECT * FROM user WHERE id = '1' AND __as_of__ = '2026-01-01T00:00:00Z'`,
		`SELECT '1.5'::float, CAST(2 AS text) FROM user WHERE id = 1`,
		`SELECT id FROM user WHERE id = $0`,
		`SELECT id FROM review WHERE id = '9223372036854775808'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		st, err := Parse(g, sql)
		if err != nil {
			var pe *statement.Error
			if !errors.As(err, &pe) || (pe.Kind != statement.InvalidInput && pe.Kind != statement.Unsupported) {
				t.Fatalf("Parse(%q) = %v (kind %d), want an InvalidInput or Unsupported planner error", sql, err, statement.KindOf(err))
			}
			return
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		if len(st.Params) == 0 {
			rec, err := st.LiteralInputs(mem)
			if err != nil {
				t.Fatalf("Parse(%q): no input rows: %v", sql, err)
			}
			rec.Release()
			return
		}
		// A parameter row of nulls, of the statement's own schema, binds.
		b := array.NewRecordBuilder(mem, st.ParamSchema())
		for _, fb := range b.Fields() {
			fb.AppendNull()
		}
		params := b.NewRecordBatch()
		b.Release()
		defer params.Release()
		in, err := st.BindInputs(context.Background(), mem, params)
		if err != nil {
			t.Fatalf("Parse(%q): its own parameter schema does not bind: %v", sql, err)
		}
		if in.NumRows() != 1 || !arrowFieldsEqual(in.Schema().Fields(), st.Inputs) {
			t.Errorf("Parse(%q): bound %d rows of %s", sql, in.NumRows(), in.Schema())
		}
		in.Release()
	})
}

func arrowFieldsEqual(a, b []arrow.Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
