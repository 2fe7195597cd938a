// Package markettest is what tests across fletch share to run the
// marketplace example: one generated DuckDB database and loaded feature
// graph per test process, a single-source resolver map, and rows of a SQL
// reference query as Go values. It is for tests only: it fails the test
// instead of returning errors.
package markettest

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/features"
	// Register the loaders of the example's .py and .sql files.
	_ "github.com/fletch-engine/fletch/features/pyload"
	_ "github.com/fletch-engine/fletch/features/sqlload"
	"github.com/fletch-engine/fletch/stores"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// Seed is the generator seed of Fixture's data.
const Seed = 7

var (
	once  sync.Once
	src   *duckdb.Source
	graph *features.Graph
	err   error
)

// Fixture returns the marketplace generated with Seed into an in-memory
// DuckDB and the example's feature graph, made once per test process.
// Callers read the database and must not change it.
func Fixture(t testing.TB) (*duckdb.Source, *features.Graph) {
	t.Helper()
	once.Do(func() {
		if src, err = duckdb.Open(""); err != nil {
			return
		}
		if err = marketplace.Generate(context.Background(), src.DB(), marketplace.Options{Seed: Seed}); err != nil {
			return
		}
		graph, err = features.Load(Dir())
	})
	if err != nil {
		t.Fatal(err)
	}
	return src, graph
}

// Dir is the folder of the example's feature repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// OneSource answers every resolver's source name with Src.
type OneSource struct{ Src stores.Source }

// Source returns Src whatever the name.
func (o OneSource) Source(string) (stores.Source, error) { return o.Src, nil }

// Rows reads every row of rows as Go values (as database/sql scans them
// into any) and closes it.
func Rows(t testing.TB, rows *sql.Rows) [][]any {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
