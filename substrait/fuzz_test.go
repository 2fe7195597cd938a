package substrait

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	pb "github.com/substrait-io/substrait-protobuf/go/substraitpb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fletch-engine/fletch/sql"
	"github.com/fletch-engine/fletch/statement"
)

// TestJSONPlans reads the hand-written plans of testdata as another
// producer (DuckDB's substrait extension, which names extensions by URI)
// prints them.
func TestJSONPlans(t *testing.T) {
	g := marketplace(t)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	got, err := ParseJSON(g, read("duckdb_in_list.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := sql.Parse(g, `SELECT first_name, last_name FROM user WHERE id IN ('1', '2', '3')`)
	if err != nil {
		t.Fatal(err)
	}
	if d, w := describe(t, got), describe(t, want); d != w {
		t.Errorf("plan:\n %s\nSQL:\n %s", d, w)
	}

	_, err = ParseJSON(g, read("unsupported_like.json"))
	const name = "https://github.com/substrait-io/substrait/blob/main/extensions/functions_string.yaml#like:str_str"
	if statement.KindOf(err) != statement.Unsupported || !strings.Contains(err.Error(), name) {
		t.Errorf("LIKE = %v, want Unsupported naming %s", err, name)
	}
	// The same plan in protobuf: the legacy URI comes from unknown fields.
	var p pb.Plan
	if err := protojson.Unmarshal(read("unsupported_like.json"), &p); err == nil {
		t.Fatal("protojson read the legacy extensionUris: the test no longer covers unknown fields")
	}
	bin := legacyProto(t, read("unsupported_like.json"))
	if _, err := Parse(g, bin); !strings.Contains(err.Error(), name) {
		t.Errorf("LIKE in protobuf = %v, want the URI %s", err, name)
	}
}

// legacyProto encodes a JSON plan of the pre-URN specification as its
// producer would: the current messages lack the URI fields, so they are
// appended as the raw fields they were (Plan field 1, extension function
// field 1).
func legacyProto(t testing.TB, js []byte) []byte {
	t.Helper()
	var p pb.Plan
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &p); err != nil {
		t.Fatal(err)
	}
	r := newReader(nil, &p)
	r.legacyJSONURIs(js)
	var raw []byte
	anchors := map[string]uint64{}
	for anchor, f := range r.funcs {
		if f.urn == "" {
			continue
		}
		if _, ok := anchors[f.urn]; !ok {
			anchors[f.urn] = uint64(len(anchors) + 1)
			var uri []byte
			uri = appendVarintField(uri, legacyURIAnchor, anchors[f.urn])
			uri = appendBytesField(uri, legacyURI, []byte(f.urn))
			raw = appendBytesField(raw, legacyPlanURIs, uri)
		}
		for _, d := range p.GetExtensions() {
			if ef := d.GetExtensionFunction(); ef != nil && ef.GetFunctionAnchor() == anchor {
				ef.ProtoReflect().SetUnknown(appendVarintField(nil, legacyFuncURI, anchors[f.urn]))
			}
		}
	}
	p.ProtoReflect().SetUnknown(raw)
	data, err := proto.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// seeds are plans of every relation and expression the reader knows,
// encoded, for the fuzzer to mutate.
func seeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, name := range []string{"duckdb_in_list.json", "unsupported_like.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, legacyProto(t, data))
	}
	return out
}

// FuzzParse feeds arbitrary bytes to Parse: it must return a statement or a
// planner error of the caller's kind (InvalidInput, Unsupported), never
// panic, and a statement's input rows must build.
func FuzzParse(f *testing.F) {
	g := marketplace(f)
	for _, s := range seeds(f) {
		f.Add(s)
	}
	for _, tt := range sameAsSQLPlans {
		f.Add(tt.plan(newBuilder(f)))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Parse(g, data)
		if err != nil {
			var pe *statement.Error
			if !errors.As(err, &pe) || (pe.Kind != statement.InvalidInput && pe.Kind != statement.Unsupported) {
				t.Fatalf("error %v (%T, kind %d), want an InvalidInput or Unsupported planner error", err, err, statement.KindOf(err))
			}
			return
		}
		if len(st.Params) > 0 {
			return
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		rec, err := st.LiteralInputs(mem)
		if err != nil {
			t.Fatalf("a statement without parameters has no input rows: %v", err)
		}
		rec.Release()
	})
}
