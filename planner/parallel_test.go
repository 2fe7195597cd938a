package planner_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores"
)

// waitingSource answers after wait, unless its context ends first: then it
// says so on cancelled and returns the context's error, as a database
// driver does.
type waitingSource struct {
	db        stores.Source
	wait      time.Duration
	cancelled chan error
}

func (s *waitingSource) Close() error { return nil }

func (s *waitingSource) Fetch(ctx context.Context, mem memory.Allocator, req stores.FetchRequest) (arrow.RecordBatch, error) {
	select {
	case <-ctx.Done():
		s.cancelled <- ctx.Err()
		return nil, ctx.Err()
	case <-time.After(s.wait):
		return s.db.Fetch(ctx, mem, req)
	}
}

// twoSources names the DuckDB database "db" and the waiting source "slow".
type twoSources struct {
	db   stores.Source
	slow *waitingSource
}

func (s twoSources) Source(name string) (stores.Source, error) {
	if name == "slow" {
		return s.slow, nil
	}
	return s.db, nil
}

// siblingFixture is an account whose name comes from a DuckDB query that
// fails ("db") and whose score from the waiting source: two lookups of one
// frame, run side by side.
func siblingFixture(t *testing.T, wait time.Duration) (*planner.Engine, *waitingSource) {
	t.Helper()
	g, db := repoWithDuckDB(t, map[string]string{
		"accounts.py": "from chalk.features import features\n\n@features\nclass Account:\n    id: int\n    name: str | None\n    score: float | None\n",
		"names.sql":   "-- resolves: Account\n-- source: db\nselect id, cast(error('the names table is gone') as varchar) as name from accounts\n",
		"scores.sql":  "-- resolves: Account\n-- source: slow\nselect id, score from accounts\n",
	},
		"CREATE TABLE accounts (id BIGINT, score DOUBLE)",
		"INSERT INTO accounts VALUES (1, 0.5), (2, 0.25)",
	)
	slow := &waitingSource{db: db, wait: wait, cancelled: make(chan error, 1)}
	return planner.NewEngine(g, twoSources{db: db, slow: slow}, nil), slow
}

func runSiblings(t *testing.T, ctx context.Context, e *planner.Engine, opts planner.RunOptions) (*planner.Result, error) {
	t.Helper()
	in := accountInputs(memory.DefaultAllocator, 1, 2)
	defer in.Release()
	plan, err := e.Prepare(&statement.Statement{Class: e.Graph().Class("account"), Inputs: in.Schema().Fields(), Outputs: []statement.Output{ref("name"), ref("score")}})
	if err != nil {
		t.Fatal(err)
	}
	return plan.Run(ctx, in, opts)
}

// A failing source query cancels the one running beside it, and the run
// fails at once with the failing query's error, not the sibling's
// cancellation.
func TestFailingStageCancelsSiblings(t *testing.T) {
	e, slow := siblingFixture(t, time.Hour)
	// Ends the waiting source should the run never cancel it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res *planner.Result
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := runSiblings(t, ctx, e, planner.RunOptions{})
		done <- outcome{res, err}
	}()
	var got outcome
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the run did not return within 10s of its source failing: its sibling was not cancelled")
	}
	if got.err == nil {
		got.res.Release()
		t.Fatal("the run succeeded, want the failing source's error")
	}
	if errors.Is(got.err, context.Canceled) || statement.KindOf(got.err) != statement.SourceFailure || !strings.Contains(got.err.Error(), "the names table is gone") {
		t.Errorf("the run failed with %v (%T), want the names resolver's SourceFailure", got.err, got.err)
	}
	select {
	case err := <-slow.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the sibling's context ended with %v, want Canceled", err)
		}
	default:
		t.Error("the sibling's source query never saw its context cancelled")
	}
	t.Logf("failed after %v", time.Since(start))
}

// A partial run's failing source does not fail the run, so it cancels
// nothing: the sibling still answers.
func TestPartialFailureCancelsNoSibling(t *testing.T) {
	e, slow := siblingFixture(t, 200*time.Millisecond)
	res, err := runSiblings(t, context.Background(), e, planner.RunOptions{Partial: true})
	if err != nil {
		t.Fatalf("a partial run: %v", err)
	}
	defer res.Release()
	if want := [][]any{{nil, nil}, {0.5, 0.25}}; !equalCells(cells(res.Record), want) {
		t.Errorf("values %v, want %v", cells(res.Record), want)
	}
	if len(res.Errors) != 1 || res.Errors[0].Output != 0 || res.Errors[0].Resolver != "names" {
		t.Errorf("errors %+v, want output 0 (names)", res.Errors)
	}
	select {
	case err := <-slow.cancelled:
		t.Errorf("the sibling was cancelled (%v) though the partial run goes on", err)
	default:
	}
}
