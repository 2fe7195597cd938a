package coerce_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators/coerce"
)

func TestPlain(t *testing.T) {
	naive := &arrow.TimestampType{Unit: arrow.Microsecond}
	utc := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.StringView}
	for _, c := range []struct {
		in, want, wantUTC arrow.DataType
	}{
		{arrow.BinaryTypes.StringView, arrow.BinaryTypes.String, arrow.BinaryTypes.String},
		{arrow.BinaryTypes.BinaryView, arrow.BinaryTypes.Binary, arrow.BinaryTypes.Binary},
		{dict, arrow.BinaryTypes.String, arrow.BinaryTypes.String},
		{naive, naive, utc},
		{utc, utc, utc},
		{arrow.ListOf(arrow.BinaryTypes.StringView), arrow.ListOf(arrow.BinaryTypes.String), arrow.ListOf(arrow.BinaryTypes.String)},
		{arrow.StructOf(arrow.Field{Name: "t", Type: naive, Nullable: true}), arrow.StructOf(arrow.Field{Name: "t", Type: naive, Nullable: true}), arrow.StructOf(arrow.Field{Name: "t", Type: utc, Nullable: true})},
		{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64},
	} {
		if got := coerce.Plain(c.in, false); !arrow.TypeEqual(got, c.want) {
			t.Errorf("Plain(%s, false) = %s, want %s", c.in, got, c.want)
		}
		if got := coerce.Plain(c.in, true); !arrow.TypeEqual(got, c.wantUTC) {
			t.Errorf("Plain(%s, true) = %s, want %s", c.in, got, c.wantUTC)
		}
	}
}

// Record shares the columns already right, retags a timestamp whose zone
// alone differs, and converts the rest.
func TestRecord(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	naive := &arrow.TimestampType{Unit: arrow.Microsecond}
	sv := array.NewStringViewBuilder(mem)
	sv.AppendValues([]string{"a", "bé"}, nil)
	ts := array.NewTimestampBuilder(mem, naive)
	ts.AppendValues([]arrow.Timestamp{1, 2}, []bool{true, false})
	ib := array.NewInt64Builder(mem)
	ib.AppendValues([]int64{7, 8}, nil)
	cols := []arrow.Array{sv.NewArray(), ts.NewArray(), ib.NewArray()}
	sv.Release()
	ts.Release()
	ib.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.StringView}, {Name: "t", Type: naive}, {Name: "i", Type: arrow.PrimitiveTypes.Int64}}, nil), cols, 2)
	for _, c := range cols {
		c.Release()
	}
	defer in.Release()
	fields := in.Schema().Fields()
	for i := range fields {
		fields[i].Type = coerce.Plain(fields[i].Type, true)
	}
	out, err := coerce.Record(mem, in, arrow.NewSchema(fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if s := out.Column(0).(*array.String); s.Value(0) != "a" || s.Value(1) != "bé" {
		t.Errorf("strings: %v", s)
	}
	if tc := out.Column(1).(*array.Timestamp); tc.DataType().(*arrow.TimestampType).TimeZone != "UTC" || tc.Value(0) != 1 || !tc.IsNull(1) {
		t.Errorf("timestamps: %v %v", tc.DataType(), tc)
	}
	if out.Column(2) != in.Column(2) {
		t.Error("the int64 column was copied, not shared")
	}
	if _, err := coerce.Record(mem, in, arrow.NewSchema(fields[:2], nil)); err == nil {
		t.Error("a schema of 2 columns for 3: no error")
	}
}
