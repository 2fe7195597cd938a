package functions

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestBind(t *testing.T) {
	r := Default()
	cases := []struct {
		name    string
		args    []arrow.DataType
		out     arrow.DataType
		wantErr string
	}{
		{"add", []arrow.DataType{tInt, tInt}, tInt, ""},
		{"add", []arrow.DataType{tInt, tFloat}, tFloat, ""},
		{"ADD", []arrow.DataType{arrow.PrimitiveTypes.Int32, tInt}, tInt, ""},
		{"add", []arrow.DataType{tStr, tStr}, tStr, ""},
		{"add", []arrow.DataType{arrow.Null, tFloat}, tFloat, ""},
		{"less", []arrow.DataType{tDate, tTs}, tBool, ""},
		{"equal", []arrow.DataType{arrow.BinaryTypes.LargeString, tStr}, tBool, ""},
		{"ad", []arrow.DataType{tInt, tInt}, nil, `unknown function "ad" (did you mean "add"?)`},
		{"add", []arrow.DataType{tStr, tInt}, nil, "add does not accept (utf8, int64); accepted: add(a: int, b: int) -> int; add(a: float, b: float) -> float; add(a: str, b: str) -> str"},
		{"not", []arrow.DataType{tInt}, nil, "not does not accept (int64)"},
		{"less", []arrow.DataType{tBool, tStr}, nil, "less does not accept (bool, utf8)"},
	}
	for _, c := range cases {
		b, err := r.Bind(c.name, c.args)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Bind(%s, %v): error %v, want %q", c.name, c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Bind(%s, %v): %v", c.name, c.args, err)
			continue
		}
		if !arrow.TypeEqual(b.Out, c.out) {
			t.Errorf("Bind(%s, %v) = %s, want %s", c.name, c.args, b.Out, c.out)
		}
	}
	if p := r.Params("add"); strings.Join(p, ",") != "a,b" {
		t.Errorf("Params(add) = %v", p)
	}
}
