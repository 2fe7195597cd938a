package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool returns the path of a tool the test drives, skipping the test
// when it is missing (failing under CI, which must never skip silently).
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: CI must run this test", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return path
}

// TestJDBC runs clients/java's JUnit tests (the Arrow Flight SQL JDBC
// driver, as a BI tool uses it) against the demo server, with reference
// rows computed here with DuckDB SQL.
func TestJDBC(t *testing.T) {
	mvn := needTool(t, "mvn")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"50", "1", "nobody", "9", "1000"}
	var rows []spineRow
	for _, k := range keys {
		rows = append(rows, spineRow{k, anchor})
	}
	var expected []string
	for _, r := range userReference(t, rows) {
		// id, full_name, review_count[30d] as JDBC's getString prints them.
		cells := []string{fmt.Sprint(r[0]), `\N`, fmt.Sprint(r[3])}
		if r[1] != nil {
			cells[1] = fmt.Sprint(r[1])
		}
		expected = append(expected, strings.Join(cells, "\t"))
	}

	// SQL for BI tools: the queries and their reference rows as getString
	// prints them (numbers compared as numbers there).
	var bi []string
	for _, q := range biQueries() {
		rec := []string{q.query}
		for _, r := range referenceRows(t, q.want) {
			cells := make([]string, len(r))
			for i, v := range r {
				cells[i] = `\N`
				switch v := v.(type) {
				case nil:
				case time.Time: // dates (at midnight), else timestamps as Timestamp.toString prints them
					if v = v.UTC(); v.Equal(v.Truncate(24 * time.Hour)) {
						cells[i] = v.Format(time.DateOnly)
					} else if cells[i] = v.Format("2006-01-02 15:04:05.999999999"); !strings.Contains(cells[i], ".") {
						cells[i] += ".0"
					}
				default:
					cells[i] = fmt.Sprint(v)
				}
			}
			rec = append(rec, strings.Join(cells, "\t"))
		}
		bi = append(bi, strings.Join(rec, "\x1f"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-Dmaven.repo.local="+filepath.Join(root, ".cache", "m2"), "test")
	cmd.Dir = filepath.Join(root, "clients", "java")
	cmd.Env = append(os.Environ(),
		"FLETCH_FLIGHT_ADDR="+addr,
		"FLETCH_AS_OF="+anchor.UTC().Format(time.RFC3339),
		"FLETCH_EXPECTED="+strings.Join(expected, "\n"),
		"FLETCH_BI="+strings.Join(bi, "\x1e"),
		// A token for servers that want one (the demo does not).
		"FLETCH_TOKEN="+os.Getenv("FLETCH_TOKEN"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mvn test: %v\n%s", err, out)
	}
	// -q prints nothing on success; the reports say how many ran.
	reports, _ := filepath.Glob(filepath.Join(cmd.Dir, "target", "surefire-reports", "*.txt"))
	for _, r := range reports {
		if b, err := os.ReadFile(r); err == nil {
			t.Logf("%s", b)
		}
	}
}
