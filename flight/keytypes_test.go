package flight

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// keyColumn is the ids 7, 3, 7 and 19999 as a column of type dt (polars
// hands out string_view columns, JDBC int32 ones).
func keyColumn(mem memory.Allocator, dt arrow.DataType) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, id := range []int64{7, 3, 7, 19999} {
		switch b := b.(type) {
		case *array.Int64Builder:
			b.Append(id)
		case *array.Int32Builder:
			b.Append(int32(id))
		case *array.Uint16Builder:
			b.Append(uint16(id))
		case *array.StringBuilder:
			b.Append(fmt.Sprint(id))
		case *array.LargeStringBuilder:
			b.Append(fmt.Sprint(id))
		case *array.StringViewBuilder:
			b.Append(fmt.Sprint(id))
		}
	}
	return b.NewArray()
}

// TestIntKeyFromAnyColumnKind: a parameter (or native input) column of any
// string kind or integer width for an int key answers what an int64 column
// answers, and that is what DuckDB says. string_view was refused ("function
// 'cast_int64' has no kernel matching input types (string_view)").
func TestIntKeyFromAnyColumnKind(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, db := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()

	var want []string
	for _, id := range []int{7, 3, 7, 19999} {
		var stars int64
		if err := db.DB().QueryRow(`SELECT star_rating FROM marketplace_reviews WHERE id = ?`, id).Scan(&stars); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprint(stars))
	}
	stmt, err := cl.Prepare(ctx, `SELECT star_rating FROM review WHERE id = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close(ctx)
	for _, dt := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Uint16,
		arrow.BinaryTypes.String, arrow.BinaryTypes.LargeString, arrow.BinaryTypes.StringView} {
		col := keyColumn(mem, dt)
		batch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: dt, Nullable: true}}, nil), []arrow.Array{col}, int64(col.Len()))
		col.Release()

		stmt.SetParameters(batch)
		info, err := stmt.Execute(ctx)
		if err != nil {
			t.Errorf("prepared, %s ids: %v", dt, err)
		} else {
			_, recs := fetch(t, ctx, cl, info)
			if got := column(recs, 0); !slices.Equal(got, want) {
				t.Errorf("prepared, %s ids: %v, want %v", dt, got, want)
			}
			releaseAll(recs)
		}

		named := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "review.id", Type: dt, Nullable: true}}, nil), batch.Columns(), batch.NumRows())
		a, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["star_rating"]}}`, named.Schema(), named)
		if err != nil {
			t.Errorf("native, %s ids: %v", dt, err)
		} else {
			if got := column(a.recs, 0); !slices.Equal(got, want) {
				t.Errorf("native, %s ids: %v, want %v", dt, got, want)
			}
			a.release()
		}
		named.Release()
		batch.Release()
	}
	// A value that is no integer is refused, naming the row and the value.
	b := array.NewStringViewBuilder(mem)
	b.AppendValues([]string{"7", "seven"}, nil)
	col := b.NewArray()
	b.Release()
	batch := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.StringView}}, nil), []arrow.Array{col}, 2)
	col.Release()
	defer batch.Release()
	stmt.SetParameters(batch)
	if _, err := stmt.Execute(ctx); err == nil || !strings.Contains(err.Error(), `"seven"`) {
		t.Errorf("a non-integer id: %v, want an error naming it", err)
	}
}

// TestNativeNullKeys: a null key answers nulls, not the defaults of an
// entity without rows, and the summary names its row (across batches).
func TestNativeNullKeys(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := context.Background()
	batch := func(vals []string, valid []bool) arrow.RecordBatch {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.AppendValues(vals, valid)
		col := b.NewArray()
		defer col.Release()
		return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "user.id", Type: arrow.BinaryTypes.String, Nullable: true}}, nil), []arrow.Array{col}, int64(col.Len()))
	}
	first, second := batch([]string{"u1", ""}, []bool{true, false}), batch([]string{"", "nobody"}, []bool{false, true})
	defer first.Release()
	defer second.Release()
	a, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["review_count[7d]"]}}`, first.Schema(), first, second)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	// u1 has reviews or not; "nobody" is an entity without rows: 0.
	got := column(a.recs, 0)
	if len(got) != 4 || got[1] != "(null)" || got[2] != "(null)" || got[3] != "0" || !slices.Equal(a.summary.NullKeys, []int64{1, 2}) {
		t.Errorf("answers %v, null keys %v; want nulls at rows 1 and 2, 0 for nobody, null_keys [1 2]", got, a.summary.NullKeys)
	}
}
