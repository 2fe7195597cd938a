package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestJSClient runs the JavaScript client's tests (node --test) against the
// demo server. npm installs with its cache in <repo>/.cache/npm; the Flight
// service definitions are generated from arrow-go's descriptors first.
func TestJSClient(t *testing.T) {
	need(t, "node")
	need(t, "npm")
	root := repoRoot(t)
	dir := filepath.Join(root, "clients/js")
	runTool(t, dir, os.Environ(), "npm", "install", "--no-audit", "--no-fund", "--cache", filepath.Join(root, ".cache/npm"))
	runTool(t, root, os.Environ(), "go", "run", "./clients/js/gen", "-o", "clients/js/.gen/flight.pb")

	// The expected rows, by DuckDB SQL (userReference's columns).
	var bulk, offline []spineRow
	for i := range 300 {
		bulk = append(bulk, spineRow{fmt.Sprint((i*389)%1100 + 1), anchor})
	}
	bulk = append(bulk, spineRow{"nobody", anchor}, spineRow{"50", anchor})
	for i, k := range []string{"50", "1", "50", "33", "nobody", "1000", "1"} {
		offline = append(offline, spineRow{k, anchor.Add(-time.Duration(i*37) * time.Hour)})
	}
	type refCase struct {
		IDs   []string `json:"ids"`
		Times []string `json:"times,omitempty"`
		Rows  [][]any  `json:"rows"`
	}
	mk := func(rows []spineRow, withTimes bool) refCase {
		c := refCase{Rows: userReferenceOf(t, rows, !withTimes)}
		for _, r := range rows {
			c.IDs = append(c.IDs, r.key)
			if withTimes {
				c.Times = append(c.Times, r.at.Format(time.RFC3339))
			}
		}
		return c
	}
	// The SQL statement's __as_of__ makes its rows point in time (offline).
	sql := mk(bulk[:5], true)
	// offlineQuery with planner_options aligned: review_count's
	// materialized windows as served, B(t - w) <= created_at <= t.
	aligned := mk(offline, true)
	aligned.Rows = userReferenceOf(t, offline, true)
	ref := map[string]any{"now": anchor.Format(time.RFC3339), "bulk": mk(bulk, false), "offline": mk(offline, true), "sql": sql, "aligned": aligned}
	b, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	refPath := filepath.Join(workDir, "reference.json")
	if err := os.WriteFile(refPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, dir, append(os.Environ(), "FLETCH_URL=grpc://"+addr, "FLETCH_REFERENCE_JSON="+refPath), "node", "--test", "test/")
}
