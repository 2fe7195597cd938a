package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/operators/pyworker/pyworkertest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// BenchmarkPythonFeature is a whole query of the SQL-resolved name beside
// the same query with name_hash, which the worker pool computes from it
// (hashlib): what a Python resolver adds to a query, at 1 and 10,000 rows.
func BenchmarkPythonFeature(b *testing.B) {
	g, db := repoWithDuckDB(b, map[string]string{
		"accounts.py":  pyRepo,
		"accounts.sql": "-- resolves: Account\n-- source: db\nselect id, name, balance, score from accounts\n",
	},
		"CREATE TABLE accounts AS SELECT i AS id, 'name-' || i AS name, i::DOUBLE AS balance, 1.0 AS score FROM range(10000) t(i)",
	)
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, nil,
		planner.WithPython(pyworker.Config{Python: pyworkertest.Python(b), Workers: 2}))
	defer e.Close()
	for _, n := range []int{1, 10000} {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(i)
		}
		in := accountInputs(memory.DefaultAllocator, ids...)
		for _, outs := range [][]string{{"name"}, {"name", "name_hash"}} {
			st := &statement.Statement{Class: g.Class("account"), Inputs: in.Schema().Fields()}
			for _, o := range outs {
				st.Outputs = append(st.Outputs, ref(o))
			}
			plan, err := e.Prepare(st)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("rows=%d/outputs=%s", n, strings.Join(outs, "+")), func(b *testing.B) {
				for range 4 { // the workers started and the module imported
					runOnce(b, plan, in)
				}
				for b.Loop() {
					runOnce(b, plan, in)
				}
			})
		}
		in.Release()
	}
}

func runOnce(b *testing.B, plan *planner.Plan, in arrow.RecordBatch) {
	res, err := plan.Run(context.Background(), in, planner.RunOptions{})
	if err != nil {
		b.Fatal(err)
	}
	res.Release()
}
