package operators

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestConcat(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	rec := func(js string) arrow.RecordBatch {
		r, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, `[]`},
		{"one", []string{`[{"k": 1, "s": "a"}]`}, `[{"k":1,"s":"a"}]`},
		{"in order, nulls kept", []string{`[{"k": 1, "s": "a"}, {"k": null, "s": "b"}]`, `[]`, `[{"k": 3, "s": null}]`},
			`[{"k":1,"s":"a"},{"k":null,"s":"b"},{"k":3,"s":null}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var recs []arrow.RecordBatch
			for _, js := range tt.in {
				recs = append(recs, rec(js))
			}
			got, err := Concat(mem, schema, recs)
			for _, r := range recs {
				r.Release()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Release()
			js, err := got.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if strings.ReplaceAll(string(js), "\n", "") != tt.want || !got.Schema().Equal(schema) {
				t.Errorf("Concat = %s (%s), want %s", js, got.Schema(), tt.want)
			}
		})
	}
}
