package flight

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	pb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// specSqlInfoTypes reads the value type of every SqlInfo id from the
// comments of arrow-go's flightsql/types.go (copied from FlightSql.proto):
// the union type code each answer must have. Names map to ids through the
// generated enum.
func specSqlInfoTypes(t *testing.T) map[uint32]arrow.UnionTypeCode {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/apache/arrow-go/v18").Output()
	if err != nil {
		t.Fatalf("locating arrow-go: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "arrow", "flight", "flightsql", "types.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`^\s*SqlInfo\w+\s*=\s*SqlInfo\(pb\.SqlInfo_(\w+)\)`)
	kinds := []struct {
		re   *regexp.Regexp
		code arrow.UnionTypeCode
	}{ // in the union's order: string, bool, bigint, int32, string list, map
		{regexp.MustCompile(`(?i)string list`), 4},
		{regexp.MustCompile(`(?i)\bmap\b`), 5},
		{regexp.MustCompile(`(?i)boolean|- true:`), 1},
		{regexp.MustCompile(`(?i)int64`), 2},
		{regexp.MustCompile(`(?i)int32|bitmask|ordinal`), 3},
		{regexp.MustCompile(`(?i)string`), 0},
	}
	types := map[uint32]arrow.UnionTypeCode{}
	var comment strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "//") {
			comment.WriteString(trimmed + "\n")
			continue
		}
		if m := decl.FindStringSubmatch(line); m != nil {
			id, ok := pb.SqlInfo_value[m[1]]
			if !ok {
				t.Fatalf("types.go names SqlInfo_%s, which the enum lacks", m[1])
			}
			// The first sentence says what is retrieved.
			text := comment.String()
			found := false
			for _, k := range kinds {
				if k.re.MatchString(text) {
					types[uint32(id)], found = k.code, true
					break
				}
			}
			if !found {
				t.Fatalf("no value type in the comment of SqlInfo_%s:\n%s", m[1], text)
			}
		}
		comment.Reset()
	}
	if len(types) < 80 {
		t.Fatalf("read only %d SqlInfo ids from types.go", len(types))
	}
	return types
}

func TestSqlInfoComplete(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	spec := specSqlInfoTypes(t)

	info, err := cl.GetSqlInfo(ctx, nil) // empty: all of them
	if err != nil {
		t.Fatal(err)
	}
	schema, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	if !schema.Equal(schema_ref.SqlInfo) {
		t.Errorf("schema %s, want %s", schema, schema_ref.SqlInfo)
	}
	got := map[uint32]arrow.UnionTypeCode{}
	for _, r := range recs {
		ids, vals := r.Column(0).(*array.Uint32), r.Column(1).(*array.DenseUnion)
		for i := 0; i < ids.Len(); i++ {
			got[ids.Value(i)] = vals.TypeCode(i)
		}
	}
	for id := range pb.SqlInfo_name {
		code, ok := got[uint32(id)]
		if !ok {
			t.Errorf("SqlInfo %s (%d) is not answered", pb.SqlInfo_name[id], id)
			continue
		}
		want, ok := spec[uint32(id)]
		if id == int32(pb.SqlInfo_SQL_DEFAULT_TRANSACTION_ISOLATION) {
			// Deliberately int64: the JDBC driver reads it as a Long (see
			// sqlInfo).
			want = 2
		}
		if ok && code != want {
			t.Errorf("SqlInfo %s (%d) is answered as %s, the spec says %s", pb.SqlInfo_name[id], id,
				schema_ref.SqlInfo.Field(1).Type.(*arrow.DenseUnionType).Fields()[code].Name,
				schema_ref.SqlInfo.Field(1).Type.(*arrow.DenseUnionType).Fields()[want].Name)
		}
	}

	// ADBC asks for the server's transaction support by itself on connect,
	// and JDBC for lists of ids: every id can be asked for alone.
	info, err = cl.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerTransaction, flightsql.SqlInfoKeywords, flightsql.SqlInfoSupportsConvert})
	if err != nil {
		t.Fatal(err)
	}
	_, recs2 := fetch(t, ctx, cl, info)
	defer releaseAll(recs2)
	if n := recs2[0].NumRows(); n != 3 {
		t.Errorf("three ids asked, %d answered", n)
	}
}

func TestXdbcTypeInfo(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv := newTestServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	typeInfo := func(dt *int32) map[string]int32 {
		t.Helper()
		info, err := cl.GetXdbcTypeInfo(ctx, dt)
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if !schema.Equal(schema_ref.XdbcTypeInfo) {
			t.Errorf("schema %s, want %s", schema, schema_ref.XdbcTypeInfo)
		}
		out := map[string]int32{}
		for _, r := range recs {
			for i := 0; i < int(r.NumRows()); i++ {
				out[r.Column(0).(*array.String).Value(i)] = r.Column(1).(*array.Int32).Value(i)
			}
		}
		return out
	}
	// java.sql.Types codes, which XDBC data types are.
	javaTypes := map[string]int32{"BIGINT": -5, "BOOLEAN": -7, "DOUBLE": 8, "VARCHAR": 12, "DATE": 91, "TIMESTAMP WITH TIME ZONE": 93}
	all := typeInfo(nil)
	for name, code := range javaTypes {
		if all[name] != code {
			t.Errorf("type %s has data type %d, want %d", name, all[name], code)
		}
	}
	// Every scalar column of every table has a listed type of its name.
	for _, c := range srv.cur.Load().graph.Classes {
		for _, f := range TableSchema(c, func(string) bool { return true }).Fields() {
			name, _ := f.Metadata.GetValue(flightsql.TypeNameKey)
			if _, ok := all[name]; !ok && f.Type.ID() != arrow.LIST && f.Type.ID() != arrow.STRUCT {
				t.Errorf("%s.%s has TYPE_NAME %q, which GetXdbcTypeInfo does not list", c.Table, f.Name, name)
			}
		}
	}
	bigint := int32(-5)
	if got := typeInfo(&bigint); len(got) != 1 || got["BIGINT"] != -5 {
		t.Errorf("type info of BIGINT: %v", got)
	}
}

func TestColumnMetadata(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	table := "review"
	info, err := cl.GetTables(ctx, &flightsql.GetTablesOpts{TableNameFilterPattern: &table, IncludeSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	_, recs := fetch(t, ctx, cl, info)
	defer releaseAll(recs)
	if len(recs) != 1 || recs[0].NumRows() != 1 {
		t.Fatalf("GetTables(review): %v", recs)
	}
	ts, err := arrowflight.DeserializeSchema(recs[0].Column(4).(*array.Binary).Value(0), mem)
	if err != nil {
		t.Fatal(err)
	}
	// As marketplace.py declares them: `id: int`, `star_rating: int =
	// feature(..., description="1 to 5 stars")`, `created_at: FeatureTime`,
	// `review_body: str | None`.
	for _, tt := range []struct {
		col    string
		want   map[string]string
		absent []string
	}{
		{"id", map[string]string{flightsql.TypeNameKey: "BIGINT", flightsql.PrecisionKey: "19", flightsql.ScaleKey: "0", flightsql.IsSearchableKey: "1", flightsql.IsAutoIncrementKey: "0", flightsql.IsReadOnlyKey: "1",
			flightsql.CatalogNameKey: "fletch", flightsql.SchemaNameKey: "features", flightsql.TableNameKey: "review"}, []string{flightsql.RemarksKey}},
		{"star_rating", map[string]string{flightsql.TypeNameKey: "BIGINT", flightsql.RemarksKey: "1 to 5 stars", flightsql.IsSearchableKey: "1"}, nil},
		// A comment directly above a feature is its description (Chalk's rule).
		{"normalized_rating", map[string]string{flightsql.RemarksKey: "computed by the tutorial's get_normalized_rating resolver below"}, nil},
		// Has-one paths, with their class's owner and tags.
		{"item.title", map[string]string{flightsql.TypeNameKey: "VARCHAR", flightsql.TableNameKey: "review", flightsql.RemarksKey: "title of the item (item)"}, nil},
		{"user.full_name", map[string]string{flightsql.TypeNameKey: "VARCHAR", flightsql.RemarksKey: "full_name of the user (user); owner: ml-core@example.com; tags: marketplace"}, nil},
		{"created_at", map[string]string{flightsql.TypeNameKey: "TIMESTAMP WITH TIME ZONE", flightsql.ScaleKey: "6"}, nil},
		{"review_body", map[string]string{flightsql.TypeNameKey: "VARCHAR", flightsql.IsCaseSensitiveKey: "1"}, []string{flightsql.PrecisionKey}},
		{"is_positive", map[string]string{flightsql.TypeNameKey: "BOOLEAN"}, nil},
	} {
		idx := ts.FieldIndices(tt.col)
		if len(idx) != 1 {
			t.Errorf("review has no column %s: %s", tt.col, ts)
			continue
		}
		md := ts.Field(idx[0]).Metadata
		for k, v := range tt.want {
			if got, ok := md.GetValue(k); !ok || got != v {
				t.Errorf("review.%s %s = %q (present %v), want %q", tt.col, k, got, ok, v)
			}
		}
		for _, k := range tt.absent {
			if got, ok := md.GetValue(k); ok {
				t.Errorf("review.%s has %s = %q, want none", tt.col, k, got)
			}
		}
	}
}

func TestKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := serve(t, newTestServer(t, mem))
	ctx := context.Background()
	str := func(s string) *string { return &s }
	ref := func(table string) flightsql.TableRef { return flightsql.TableRef{Table: table} }

	rows := func(t *testing.T, info *arrowflight.FlightInfo, err error, want *arrow.Schema, cols ...int) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		schema, recs := fetch(t, ctx, cl, info)
		defer releaseAll(recs)
		if !schema.Equal(want) {
			t.Errorf("schema %s, want %s", schema, want)
		}
		var out []string
		for _, r := range recs {
			for i := 0; i < int(r.NumRows()); i++ {
				var cells []string
				for _, c := range cols {
					cells = append(cells, r.Column(c).ValueStr(i))
				}
				out = append(out, strings.Join(cells, " "))
			}
		}
		return strings.Join(out, ", ")
	}

	// The primary keys and foreign keys marketplace.py declares: `id` of
	// every class; `user_id: User.id`, `item_id: Item.id`, `seller_id:
	// Seller.id` in the classes that have them.
	for _, tt := range []struct {
		name string
		ref  flightsql.TableRef
		want string
	}{
		{"user", ref("user"), "fletch features user id 1 user_pkey"},
		{"user_item", ref("user_item"), "fletch features user_item id 1 user_item_pkey"},
		{"matching catalog and schema", flightsql.TableRef{Catalog: str("fletch"), DBSchema: str("features"), Table: "item"}, "fletch features item id 1 item_pkey"},
		{"other catalog", flightsql.TableRef{Catalog: str("main"), Table: "item"}, ""},
		{"no schema", flightsql.TableRef{DBSchema: str(""), Table: "item"}, ""},
		{"unknown table", ref("usr"), ""},
	} {
		t.Run("primary keys "+tt.name, func(t *testing.T) {
			info, err := cl.GetPrimaryKeys(ctx, tt.ref)
			if got := rows(t, info, err, schema_ref.PrimaryKeys, 0, 1, 2, 3, 4, 5); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}

	keyCols := []int{2, 3, 6, 7, 8, 11, 12} // pk table, column, fk table, column, sequence, rules
	for _, tt := range []struct {
		name string
		call func() (*arrowflight.FlightInfo, error)
		want string
	}{
		{"imported by review", func() (*arrowflight.FlightInfo, error) { return cl.GetImportedKeys(ctx, ref("review")) },
			"item id review item_id 1 3 3, user id review user_id 1 3 3"},
		{"imported by item_price", func() (*arrowflight.FlightInfo, error) { return cl.GetImportedKeys(ctx, ref("item_price")) },
			"item id item_price item_id 1 3 3, user id item_price user_id 1 3 3"},
		{"imported by user", func() (*arrowflight.FlightInfo, error) { return cl.GetImportedKeys(ctx, ref("user")) }, ""},
		{"exported by user", func() (*arrowflight.FlightInfo, error) { return cl.GetExportedKeys(ctx, ref("user")) },
			"user id item_price user_id 1 3 3, user id review user_id 1 3 3, user id user_item user_id 1 3 3"},
		{"exported by seller", func() (*arrowflight.FlightInfo, error) { return cl.GetExportedKeys(ctx, ref("seller")) },
			"seller id item seller_id 1 3 3"},
		{"exported by an unknown table", func() (*arrowflight.FlightInfo, error) { return cl.GetExportedKeys(ctx, ref("sellers")) }, ""},
		{"cross reference", func() (*arrowflight.FlightInfo, error) {
			return cl.GetCrossReference(ctx, ref("item"), ref("user_item"))
		},
			"item id user_item item_id 1 3 3"},
		{"cross reference the wrong way", func() (*arrowflight.FlightInfo, error) {
			return cl.GetCrossReference(ctx, ref("user_item"), ref("item"))
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info, err := tt.call()
			if got := rows(t, info, err, schema_ref.ImportedExportedKeysAndCrossReference, keyCols...); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
