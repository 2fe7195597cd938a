package stores_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/stores"
)

func fromJSON(t *testing.T, mem memory.Allocator, dt arrow.DataType, js string) arrow.Array {
	t.Helper()
	a, _, err := array.FromJSON(mem, dt, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A truncated encoding is an error or reads as missing, never as a value.
func TestCodecRejectsTruncatedValues(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, c := range []struct {
		dt arrow.DataType
		js string
	}{
		{arrow.ListOf(arrow.BinaryTypes.String), `[["abc", "de"]]`},
		{arrow.PrimitiveTypes.Int64, `[-300]`},
		{arrow.PrimitiveTypes.Float64, `[1.5]`},
		{arrow.FixedWidthTypes.Boolean, `[true]`},
		{arrow.FixedWidthTypes.Date32, `["2024-05-01"]`},
		{arrow.BinaryTypes.String, `["abc"]`},
	} {
		a := fromJSON(t, mem, c.dt, c.js)
		enc, err := stores.AppendValue(nil, a, 0, time.Unix(1, 0))
		a.Release()
		if err != nil {
			t.Fatal(err)
		}
		want := arrow.NewSchema([]arrow.Field{{Name: "v", Type: c.dt, Nullable: true}}, nil)
		for n := range len(enc) {
			vb, err := stores.NewValuesBuilder(mem, want, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := vb.PutValue(0, 0, enc[:n]); err == nil {
				got := vb.Finish()
				if got.Values.Column(0).IsValid(0) || got.Observed[0].IsValid(0) {
					t.Errorf("%s: %d of %d bytes read as %v observed %v", c.dt, n, len(enc), got.Values.Column(0), got.Observed[0])
				}
				got.Release()
			}
			vb.Release()
		}
	}
}

// Encoded values sort bytewise by observation time, whatever the value:
// the conditional writes of the DynamoDB store rely on it.
func TestEncodingsSortByObservationTime(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	values := fromJSON(t, mem, arrow.BinaryTypes.String, `["", "zzz", null, "\u00ff"]`)
	defer values.Release()
	times := []time.Time{
		time.UnixMicro(-1 << 62), time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMicro(-1),
		time.UnixMicro(0), time.UnixMicro(1), time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 5, 1, 12, 0, 0, 1000, time.UTC), time.UnixMicro(1<<62 - 1),
	}
	for i, ti := range times {
		for j, tj := range times {
			for vi := range values.Len() {
				a, err := stores.AppendValue(nil, values, vi, ti)
				if err != nil {
					t.Fatal(err)
				}
				got, err := stores.ObservedAt(a)
				if err != nil || !got.Equal(ti) {
					t.Errorf("ObservedAt(encoding at %v) = %v, %v", ti, got, err)
				}
				upper := stores.AppendObserved(nil, tj.Add(time.Microsecond))
				if below := bytes.Compare(a, upper) < 0; below != (i <= j) {
					t.Errorf("value %d observed %v < bound of %v: %v, want %v", vi, ti, tj, below, i <= j)
				}
				for vj := range values.Len() {
					b, _ := stores.AppendValue(nil, values, vj, tj)
					if c := bytes.Compare(a, b); i != j && (c < 0) != (i < j) {
						t.Errorf("value %d at %v vs value %d at %v: compare %d", vi, ti, vj, tj, c)
					}
				}
			}
		}
	}
}
