// Package pyworkertest finds the CPython that tests run resolvers and
// reference computations with: the repository's virtual environment, which
// clients/python/setup.sh makes (scripts/test runs it first) and which has
// pyarrow.
package pyworkertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Python returns the path of the repository's .venv/bin/python. Without
// it the test is skipped, except in CI, where it fails: CI never skips
// silently.
func Python(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
	python := filepath.Join(dir, ".venv", "bin", "python")
	if err := exec.Command(python, "-c", "import pyarrow").Run(); err != nil {
		msg := python + " with pyarrow is needed (run clients/python/setup.sh): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return python
}
