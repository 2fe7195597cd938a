package functions

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDocs keeps docs/FUNCTIONS.md equal to the registry's rendering;
// FLETCH_UPDATE_DOCS=1 rewrites it.
func TestDocs(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "FUNCTIONS.md")
	want := Default().Markdown()
	if os.Getenv("FLETCH_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date: run FLETCH_UPDATE_DOCS=1 go test -tags duckdb_arrow ./operators/functions -run TestDocs", path)
	}
	if n := len(Default().Names()); n < 100 {
		t.Errorf("only %d functions registered", n)
	}
}
