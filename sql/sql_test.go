package sql

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/statement"
)

// rows prints a record as `v, v; v, v` (rows separated by ;).
func rows(rec arrow.RecordBatch) string {
	var out []string
	for r := 0; r < int(rec.NumRows()); r++ {
		var cells []string
		for _, c := range rec.Columns() {
			cells = append(cells, c.ValueStr(r))
		}
		out = append(out, strings.Join(cells, ", "))
	}
	return strings.Join(out, "; ")
}

func fields(fs []arrow.Field) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name+":"+f.Type.String())
	}
	return strings.Join(out, ", ")
}

func outputs(outs []statement.Output) string {
	var out []string
	for _, o := range outs {
		out = append(out, o.Name+"="+o.Expr.String())
	}
	return strings.Join(out, ", ")
}

func TestParse(t *testing.T) {
	g := marketplaceGraph(t)
	tests := []struct {
		name, sql string
		class     string
		outs      string // name=expr, ...
		inputs    string // name:type, ...
		rows      string // literal input rows; "" for a parameterized query
		params    string // name:type, ...
		limit     int64
	}{
		{
			name: "reserved word table", sql: `SELECT full_name FROM user WHERE id = '50'`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8", rows: "50", limit: -1,
		},
		{
			name: "qualified column on bare reserved table, integer for str key", sql: `SELECT user.full_name FROM user WHERE user.id = 123`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8", rows: "123", limit: -1,
		},
		{
			name: "fully qualified table", sql: `select email from fletch.features."user" where id in ('1', '2', '3')`,
			class: "user", outs: "email=_.email", inputs: "id:utf8", rows: "1; 2; 3", limit: -1,
		},
		{
			name: "schema qualified, alias", sql: `SELECT u.first_name AS f FROM features.user u WHERE u.id = 'a'`,
			class: "user", outs: "f=_.first_name", inputs: "id:utf8", rows: "a", limit: -1,
		},
		{
			name: "star expands scalar features and windows", sql: `SELECT * FROM "user" WHERE id = 'x'`,
			class:  "user",
			outs:   "id=_.id, created_at=_.created_at, first_name=_.first_name, last_name=_.last_name, email=_.email, full_name=_.full_name, review_count__604800__=_.review_count__604800__, review_count__2592000__=_.review_count__2592000__, review_count__5184000__=_.review_count__5184000__",
			inputs: "id:utf8", rows: "x", limit: -1,
		},
		{
			name: "windows by FQN and by label", sql: `SELECT review_count__604800__, "review_count[30d]" FROM user WHERE id = 'x'`,
			class: "user", outs: "review_count__604800__=_.review_count__604800__, review_count[30d]=_.review_count[30d]", inputs: "id:utf8", rows: "x", limit: -1,
		},
		{
			name: "has-one dotted paths", sql: `SELECT "item.title", "user.full_name" AS who, review.star_rating FROM review WHERE id = 7`,
			class: "review", outs: "item.title=_.item.title, who=_.user.full_name, star_rating=_.star_rating", inputs: "id:int64", rows: "7", limit: -1,
		},
		{
			name: "functions and named output", sql: `SELECT lower(full_name), jaccard_similarity(lower(full_name), lower(email)) AS name_email_sim FROM user WHERE id = '1'`,
			class: "user", outs: `lower=F.lower(_.full_name), name_email_sim=F.jaccard_similarity(F.lower(_.full_name), F.lower(_.email))`, inputs: "id:utf8", rows: "1", limit: -1,
		},
		{
			name: "named arguments", sql: `SELECT jaccard_similarity(a => first_name, b => last_name) AS s FROM user WHERE id = '1'`,
			class: "user", outs: `s=F.jaccard_similarity(a=_.first_name, b=_.last_name)`, inputs: "id:utf8", rows: "1", limit: -1,
		},
		{
			name: "arithmetic, comparison, boolean, concat", sql: `SELECT star_rating * 2 + 1 AS a, -star_rating AS b, star_rating >= 4 AND NOT star_rating = 5 AS c, "user.first_name" || ' ' || "user.last_name" AS d, 2 ^ 3 AS e FROM review WHERE id = 1`,
			class:  "review",
			outs:   `a=((_.star_rating * 2) + 1), b=-_.star_rating, c=((_.star_rating >= 4) and not (_.star_rating == 5)), d=((_.user.first_name + " ") + _.user.last_name), e=(2 ** 3)`,
			inputs: "id:int64", rows: "1", limit: -1,
		},
		{
			name: "CASE and literals", sql: `SELECT CASE WHEN star_rating >= 4 THEN 'good' WHEN star_rating = 3 THEN NULL ELSE 'bad' END AS verdict FROM review WHERE id = 1`,
			class: "review", outs: `verdict=F.when((_.star_rating >= 4)).then("good").F.when((_.star_rating == 3)).then(None).otherwise("bad")`, inputs: "id:int64", rows: "1", limit: -1,
		},
		{
			name: "simple CASE, casts of constants", sql: `SELECT CASE star_rating WHEN 5 THEN 1.5 ELSE CAST('2' AS float) END AS x, '7'::int AS y, TRUE AS z FROM review WHERE id = 1`,
			class: "review", outs: `x=F.when((_.star_rating == 5)).then(1.5).otherwise(2), y=7, z=True`, inputs: "id:int64", rows: "1", limit: -1,
		},
		{
			name: "derived key from its parts", sql: `SELECT price_diff FROM user_item WHERE user_id = '50' AND item_id = '200'`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", rows: "50, 200", limit: -1,
		},
		{
			name: "derived key, parts in the other order, integers", sql: `SELECT price_diff FROM "UserItem" WHERE item_id = 200 AND user_id = 50`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", rows: "50, 200", limit: -1,
		},
		{
			name: "row-wise IN over the key parts", sql: `SELECT price_diff FROM user_item WHERE (user_id, item_id) IN (('1', '2'), ('3', '4'))`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", rows: "1, 2; 3, 4", limit: -1,
		},
		{
			name: "IN with one part broadcast", sql: `SELECT price_diff FROM user_item WHERE user_id = 'u' AND item_id IN ('1', '2')`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", rows: "u, 1; u, 2", limit: -1,
		},
		{
			name: "as_of literal", sql: `SELECT star_rating FROM review WHERE id IN (1, 2) AND __as_of__ = '2026-01-01T00:00:00Z'`,
			class: "review", outs: "star_rating=_.star_rating", inputs: "id:int64, __as_of__:timestamp[us, tz=UTC]", rows: "1, 2026-01-01T00:00:00Z; 2, 2026-01-01T00:00:00Z", limit: -1,
		},
		{
			name: "as_of timestamp literal with space and no zone", sql: `SELECT star_rating FROM review WHERE __as_of__ = TIMESTAMP '2026-03-04 05:06:07.5' AND id = '12'`,
			class: "review", outs: "star_rating=_.star_rating", inputs: "id:int64, __as_of__:timestamp[us, tz=UTC]", rows: "12, 2026-03-04T05:06:07.5Z", limit: -1,
		},
		{
			name: "question mark parameters", sql: `SELECT full_name FROM user WHERE id = ? AND __as_of__ = ?`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8, __as_of__:timestamp[us, tz=UTC]", params: "id:utf8, __as_of__:timestamp[us, tz=UTC]", limit: -1,
		},
		{
			name: "dollar parameters in any order", sql: `SELECT price_diff FROM user_item WHERE item_id = $2 AND user_id = $1`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", params: "user_id:utf8, item_id:utf8", limit: -1,
		},
		{
			name: "parameter and literal mixed", sql: `SELECT price_diff FROM user_item WHERE user_id = 'u' AND item_id = ?`,
			class: "user_item", outs: "price_diff=_.price_diff", inputs: "user_id:utf8, item_id:utf8", params: "item_id:utf8", limit: -1,
		},
		{
			name: "limit", sql: `SELECT full_name FROM user WHERE id IN ('1','2','3') LIMIT 2`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8", rows: "1; 2; 3", limit: 2,
		},
		{
			name: "limit zero", sql: `SELECT full_name FROM user WHERE id = '1' LIMIT 0`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8", rows: "1", limit: 0,
		},
		{
			name: "string literal that looks like a keyword is untouched", sql: `SELECT full_name FROM user WHERE id = 'user'`,
			class: "user", outs: "full_name=_.full_name", inputs: "id:utf8", rows: "user", limit: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			st, err := Parse(g, tt.sql)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if st.Class.Table != tt.class {
				t.Errorf("class = %s, want %s", st.Class.Table, tt.class)
			}
			if got := outputs(st.Outputs); got != tt.outs {
				t.Errorf("outputs:\n got %s\nwant %s", got, tt.outs)
			}
			if got := fields(st.Inputs); got != tt.inputs {
				t.Errorf("inputs = %s, want %s", got, tt.inputs)
			}
			if got := fields(st.ParamSchema().Fields()); got != tt.params {
				t.Errorf("params = %s, want %s", got, tt.params)
			}
			if st.Limit != tt.limit {
				t.Errorf("limit = %d, want %d", st.Limit, tt.limit)
			}
			if tt.params != "" {
				return
			}
			rec, err := st.LiteralInputs(mem)
			if err != nil {
				t.Fatalf("LiteralInputs: %v", err)
			}
			defer rec.Release()
			if got := rows(rec); got != tt.rows {
				t.Errorf("rows = %q, want %q", got, tt.rows)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	g := marketplaceGraph(t)
	tests := []struct {
		name, sql string
		kind      statement.ErrorKind
		pos       string // line:col, "" when none
		msg       string // substring
	}{
		{"unknown table", `SELECT id FROM usr WHERE id = '1'`, statement.InvalidInput, "1:16", `unknown table "usr" (did you mean "user"?)`},
		{"a NUL byte", "SELECT id FROM user WHERE id = '1'\x00 OR 1=1", statement.InvalidInput, "1:35", `NUL byte`},
		{"unknown column", `SELECT full_nme FROM user WHERE id = '1'`, statement.InvalidInput, "1:8", `unknown column "full_nme" of table user (did you mean "full_name"?)`},
		{"unknown column on a second line", "SELECT id,\n       emial\nFROM user WHERE id = '1'", statement.InvalidInput, "2:8", `(did you mean "email"?)`},
		{"position after a quoted keyword", `SELECT user.full_nam FROM user WHERE id = '1'`, statement.InvalidInput, "1:8", `(did you mean "full_name"?)`},
		{"unknown has-one column", `SELECT "item.titel" FROM review WHERE id = 1`, statement.InvalidInput, "1:8", `unknown column "titel" of table item (did you mean "title"?)`},
		{"path through a scalar", `SELECT "star_rating.x" FROM review WHERE id = 1`, statement.InvalidInput, "1:8", `review.star_rating is not a relation`},
		{"syntax error", "SELECT id FROM user\nWHERE id = = 3", statement.InvalidInput, "2:12", `syntax error at or near "="`},
		{"unknown schema", `SELECT id FROM feature.user WHERE id = '1'`, statement.InvalidInput, "1:16", `unknown schema "feature": the only schema is "features" (did you mean "features"?)`},
		{"unknown catalog", `SELECT id FROM other.features.user WHERE id = '1'`, statement.InvalidInput, "1:16", `unknown catalog "other"`},
		{"no where", `SELECT id FROM user`, statement.InvalidInput, "", `missing WHERE: a fletch query's WHERE names its input rows`},
		{"non-key column", `SELECT id FROM user WHERE email = 'a@b'`, statement.InvalidInput, "1:27", `email is not a key column of user`},
		{"unknown where column", `SELECT id FROM user WHERE idd = '1'`, statement.InvalidInput, "1:27", `(did you mean "id"?)`},
		{"or", `SELECT id FROM user WHERE id = '1' OR id = '2'`, statement.InvalidInput, "1:36", `OR and NOT are not allowed in WHERE`},
		{"range", `SELECT id FROM review WHERE id > 3`, statement.InvalidInput, "1:32", `unsupported condition (operator >)`},
		{"invalid int key", `SELECT id FROM review WHERE id = 'abc'`, statement.InvalidInput, "1:34", `"abc" is not a valid integer for id (int64)`},
		{"float for str key", `SELECT id FROM user WHERE id = 1.5`, statement.InvalidInput, "1:32", `1.5 is not a valid string for id`},
		{"bad timestamp", `SELECT id FROM user WHERE id = '1' AND __as_of__ = 'yesterday'`, statement.InvalidInput, "1:52", `is not a valid timestamp`},
		{"null key", `SELECT id FROM user WHERE id = NULL`, statement.InvalidInput, "1:32", `id = NULL names no row`},
		{"missing key part", `SELECT id FROM user_item WHERE user_id = '1'`, statement.InvalidInput, "", `(missing item_id)`},
		{"key and its parts", `SELECT id FROM user_item WHERE id = 'a-b' AND user_id = 'a'`, statement.InvalidInput, "1:32", `user_item.id is derived from user_id and item_id`},
		// The features need the parts, which a derived key cannot give back.
		{"derived key by the key itself", `SELECT price_diff FROM user_item WHERE id = '50-200'`, statement.InvalidInput, "1:40", `name the rows by those columns: WHERE user_id = <value> AND item_id = <value>`},
		{"two IN lists", `SELECT id FROM user_item WHERE user_id IN ('1','2') AND item_id IN ('3','4')`, statement.InvalidInput, "1:57", `only one IN list`},
		{"column twice", `SELECT id FROM user WHERE id = '1' AND id = '2'`, statement.InvalidInput, "1:40", `id is named twice`},
		{"parameter in IN list", `SELECT id FROM user WHERE id IN (?, ?)`, statement.InvalidInput, "1:34", `parameters are not allowed in an IN list`},
		{"parameter gap", `SELECT id FROM user WHERE id = $2`, statement.InvalidInput, "", `parameter $1 is not used`},
		{"parameter in select list", `SELECT ? FROM user WHERE id = '1'`, statement.InvalidInput, "1:8", `parameters are only allowed in WHERE`},
		{"mixed parameter styles", `SELECT id FROM user_item WHERE user_id = ? AND item_id = $1`, statement.InvalidInput, "", `either ? or $n`},
		{"offset", `SELECT id FROM user WHERE id = '1' LIMIT 1 OFFSET 2`, statement.InvalidInput, "1:51", `OFFSET is not supported`},
		{"join", `SELECT id FROM user JOIN review ON true WHERE id = '1'`, statement.Unsupported, "1:16", `joins and subqueries are not supported`},
		{"order by", `SELECT id FROM user WHERE id = '1' ORDER BY id`, statement.Unsupported, "1:45", `ORDER BY`},
		{"aggregate", `SELECT count(*) FROM user WHERE id = '1'`, statement.Unsupported, "1:8", `aggregates and window functions`},
		{"insert", `INSERT INTO user VALUES (1)`, statement.Unsupported, "1:1", `fletch is read-only`},
		{"update", `UPDATE user SET email = 'x' WHERE id = '1'`, statement.Unsupported, "1:1", `fletch is read-only`},
		{"two statements", `SELECT id FROM user WHERE id = '1'; SELECT 1`, statement.InvalidInput, "1:36", `one statement per query`},
		{"no from", `SELECT 1`, statement.InvalidInput, "", `missing FROM`},
		{"star with a column of a relation", `SELECT item.* FROM review WHERE id = 1`, statement.Unsupported, "1:8", `item.* is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(g, tt.sql)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error", tt.sql)
			}
			var pe *statement.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, want *statement.Error", err, err)
			}
			if pe.Kind != tt.kind {
				t.Errorf("kind = %d, want %d (%v)", pe.Kind, tt.kind, err)
			}
			gotPos := ""
			if pe.Pos.Line > 0 {
				gotPos = pe.Pos.String()
			}
			if gotPos != tt.pos {
				t.Errorf("pos = %q, want %q (%v)", gotPos, tt.pos, err)
			}
			if !strings.Contains(pe.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", pe.Error(), tt.msg)
			}
		})
	}
}

func TestBindInputs(t *testing.T) {
	g := marketplaceGraph(t)
	tests := []struct {
		name   string
		sql    string
		params func(mem memory.Allocator) arrow.RecordBatch
		rows   string
		err    string
	}{
		{
			name: "int parameters for a str key, literal broadcast",
			sql:  `SELECT price_diff FROM user_item WHERE user_id = 'u' AND item_id = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				return record(mem, arrow.Field{Name: "p", Type: arrow.PrimitiveTypes.Int32}, "[1, 2, 3]")
			},
			rows: "u, 1; u, 2; u, 3",
		},
		{
			name: "string parameters for an int key",
			sql:  `SELECT star_rating FROM review WHERE id = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				return record(mem, arrow.Field{Name: "id", Type: arrow.BinaryTypes.String}, `["10", "20"]`)
			},
			rows: "10; 20",
		},
		{
			name: "an invalid string for an int key names the field",
			sql:  `SELECT star_rating FROM review WHERE id = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				return record(mem, arrow.Field{Name: "key", Type: arrow.BinaryTypes.String}, `["10", "x"]`)
			},
			err: `parameter 1 (field "key", for id)`,
		},
		{
			name: "a float for a str key is refused",
			sql:  `SELECT full_name FROM user WHERE id = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				return record(mem, arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Float64}, `[1.5]`)
			},
			err: `parameter 1 (field "x", for id) is float64; expected utf8`,
		},
		{
			name: "as_of in seconds without zone",
			sql:  `SELECT full_name FROM user WHERE id = ? AND __as_of__ = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{
					{Name: "id", Type: arrow.BinaryTypes.String},
					{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Second}},
				}, nil))
				defer b.Release()
				b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
				b.Field(1).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{0, 86400}, nil)
				return b.NewRecordBatch()
			},
			rows: "a, 1970-01-01T00:00:00Z; b, 1970-01-02T00:00:00Z",
		},
		{
			name: "wrong number of columns",
			sql:  `SELECT full_name FROM user WHERE id = ?`,
			params: func(mem memory.Allocator) arrow.RecordBatch {
				b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{
					{Name: "id", Type: arrow.BinaryTypes.String}, {Name: "extra", Type: arrow.BinaryTypes.String},
				}, nil))
				defer b.Release()
				return b.NewRecordBatch()
			},
			err: `the parameter batch has 2 column(s), the query has 1 parameter(s)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			st, err := Parse(g, tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			params := tt.params(mem)
			defer params.Release()
			rec, err := st.BindInputs(context.Background(), mem, params)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || statement.KindOf(err) != statement.InvalidInput {
					t.Fatalf("err = %v, want InvalidInput containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rec.Release()
			if !rec.Schema().Equal(arrow.NewSchema(st.Inputs, nil)) {
				t.Errorf("schema %s, want inputs %s", rec.Schema(), fields(st.Inputs))
			}
			if got := rows(rec); got != tt.rows {
				t.Errorf("rows = %q, want %q", got, tt.rows)
			}
		})
	}
}

func record(mem memory.Allocator, f arrow.Field, js string) arrow.RecordBatch {
	arr, _, err := array.FromJSON(mem, f.Type, strings.NewReader(js))
	if err != nil {
		panic(err)
	}
	defer arr.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{f}, nil), []arrow.Array{arr}, int64(arr.Len()))
}
