package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers checks the data flow of docs/DESIGN's layout with the go
// command itself: transport → front end → statement → planner → operators
// → stores. Each package below must not depend (directly or not) on what
// it must not know; a new import that breaks the layering fails here.
func TestLayers(t *testing.T) {
	const mod = "github.com/fletch-engine/fletch/"
	for _, c := range []struct {
		pkg       string
		forbidden []string
	}{
		// The transport parses nothing and links no definition parser.
		{"flight", []string{"features/pyload", "github.com/tree-sitter/"}},
		// The front ends never import each other, nor execution.
		{"sql", []string{"substrait", "native", "planner", "relational", "flight", "features/pyload"}},
		{"substrait", []string{"sql", "native", "planner", "flight", "features/pyload"}},
		{"native", []string{"sql", "substrait", "planner", "flight", "features/pyload", "github.com/tree-sitter/"}},
		{"statement", []string{"sql", "substrait", "native", "planner", "flight", "stores"}},
		// SQL over features runs statements with the planner: no transport,
		// no front end, no source driver.
		{"relational", []string{"flight", "sql", "substrait", "native", "features/pyload", "config", "stores/duckdb", "stores/postgres", "github.com/pganalyze/"}},
		// The planner knows no transport and no front end.
		{"planner", []string{"flight", "sql", "substrait", "native", "relational", "features/pyload", "config"}},
		// Operators know nothing of feature definitions.
		{"operators/...", []string{"features", "planner", "statement", "stores"}},
		{"stores/...", []string{"planner", "flight", "statement", "config"}},
		// The console shows the graph and runs queries in-process: no
		// transport, no configuration, no source driver, no definition parser.
		{"console", []string{"flight", "config", "features/pyload", "stores/duckdb", "stores/postgres", "stores/redis", "stores/dynamodb", "github.com/tree-sitter/"}},
		// Tiles read definitions and talk to sources: no plan, no front end.
		{"tiles", []string{"planner", "flight", "sql", "substrait", "native", "statement", "config", "features/pyload"}},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", mod+c.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", c.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range c.forbidden {
				full := f
				if !strings.Contains(f, ".") {
					full = mod + f
				}
				if dep == full || strings.HasPrefix(dep, strings.TrimSuffix(full, "/")+"/") {
					t.Errorf("%s depends on %s", c.pkg, dep)
				}
			}
		}
	}
}
