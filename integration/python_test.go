package integration

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fletch-engine/fletch/examples/marketplace"
)

var (
	refFileOnce sync.Once
	refFile     string
	refFileErr  error
)

// referenceFile is a DuckDB file holding the demo's data, generated again
// here (the demo's own file is locked by the server): the clients' tests
// compute their expected values on it with DuckDB SQL.
func referenceFile(t *testing.T) string {
	t.Helper()
	refFileOnce.Do(func() {
		path := filepath.Join(workDir, "reference.duckdb")
		db, err := sql.Open("duckdb", path)
		if err != nil {
			refFileErr = err
			return
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		if refFileErr = marketplace.Generate(context.Background(), db, marketplace.Options{Anchor: anchor}); refFileErr == nil {
			refFile = path
		}
	})
	if refFileErr != nil {
		t.Fatal(refFileErr)
	}
	return refFile
}

// repoRoot is the repository's top folder (the tests run in integration/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// need skips a test whose tool is missing, except in CI, where a missing
// tool is a failure (CI must never skip silently).
func need(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
}

// clientEnv is what the clients' test suites read: the server and the
// reference. PYTHONPATH puts this repository's Python SDK first: a
// worktree's .venv may be another checkout's, installed editable there.
func clientEnv(t *testing.T) []string {
	return append(os.Environ(),
		"PYTHONPATH="+filepath.Join(repoRoot(t), "clients/python"),
		"FLETCH_URL=grpc://"+addr,
		"FLETCH_NOW="+anchor.Format(time.RFC3339),
		"FLETCH_REFERENCE_DB="+referenceFile(t),
	)
}

// runTool runs a client's test command in dir, streaming its output into
// the test log.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("%s %v:\n%s", name, args, out)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
}

// TestPythonClient runs the Python client's pytest suite (the native query
// and the ADBC acceptance) against the demo server. clients/python/setup.sh
// makes <repo>/.venv first (fast when already done).
func TestPythonClient(t *testing.T) {
	need(t, "python3")
	root := repoRoot(t)
	runTool(t, root, os.Environ(), "bash", filepath.Join(root, "clients/python/setup.sh"))
	runTool(t, filepath.Join(root, "clients/python"), clientEnv(t),
		filepath.Join(root, ".venv/bin/python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
}
