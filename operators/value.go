package operators

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// GoValue returns row i of a as the Go value database/sql drivers give for
// the same SQL value: nil, int64, float64, string, bool, time.Time (UTC),
// []any for lists and map[string]any for structs. It is for tests and
// tools comparing Arrow results with SQL references, not for hot paths.
func GoValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.Timestamp:
		return a.Value(i).ToTime(a.DataType().(*arrow.TimestampType).Unit).UTC()
	case *array.Date32:
		return a.Value(i).ToTime()
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		out := []any{}
		for j := lo; j < hi; j++ {
			out = append(out, GoValue(a.ListValues(), int(j)))
		}
		return out
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := make(map[string]any, st.NumFields())
		for k, f := range st.Fields() {
			m[f.Name] = GoValue(a.Field(k), i)
		}
		return m
	}
	return a.ValueStr(i)
}
