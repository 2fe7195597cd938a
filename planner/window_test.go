package planner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
)

// TestWindowBoundedOnBothSides: a window that compares a datetime other
// than the event time with _.chalk_window keeps `now - w < t <= now`
// (DESIGN.md §4): a transaction settled after the query's time is not in
// its windows (it was counted), checked against DuckDB over 400 generated
// transactions, and `fletch plan` prints the filters it runs.
func TestWindowBoundedOnBothSides(t *testing.T) {
	g, db := repoWithDuckDB(t, map[string]string{
		"txns.py": `from chalk.features import features, DataFrame, _, windowed, Windowed, FeatureTime
from datetime import datetime

@features
class Account:
    id: int
    txns: "DataFrame[Txn]"
    settled: Windowed[int] = windowed("1d", "7d", expression=_.txns[_.settled_at > _.chalk_window].count())

@features
class Txn:
    id: int
    account_id: Account.id
    ts: FeatureTime
    settled_at: datetime
`,
		"accounts.sql": "-- resolves: Account\n-- source: db\nselect id from accounts\n",
		"txns.sql":     "-- resolves: Txn\n-- source: db\nselect id, account_id, ts, settled_at from txns\n",
	},
		"CREATE TABLE accounts AS SELECT i AS id FROM range(1, 9) t(i)",
		`CREATE TABLE txns AS SELECT i AS id, i % 8 + 1 AS account_id,
			TIMESTAMPTZ '2026-01-10 00:00:00+00' - to_minutes((i * 7919) % 20160) + to_hours(24) AS ts,
			TIMESTAMPTZ '2026-01-10 00:00:00+00' - to_minutes((i * 104729) % 14400) + to_hours(36) AS settled_at
		FROM range(1, 401) t(i)`,
	)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := planner.NewEngine(g, markettest.OneSource{Src: db}, mem)
	in := accountInputs(mem, 1, 2, 3, 4, 5, 6, 7, 8)
	defer in.Release()
	st := &statement.Statement{Class: g.Class("account"), Inputs: in.Schema().Fields(),
		Outputs: []statement.Output{ref("settled__86400__"), ref("settled__604800__")}}
	p, err := e.Prepare(st)
	if err != nil {
		t.Fatal(err)
	}
	if plan := p.Explain(); !strings.Contains(plan, "txn.ts <= row time") ||
		!strings.Contains(plan, "over rows where (settled_at > row time - 1d) and (settled_at <= row time)") ||
		!strings.Contains(plan, "over rows where (settled_at > row time - 7d) and (settled_at <= row time)") {
		t.Errorf("the plan does not print the filters it runs:\n%s", plan)
	}
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	res, err := p.Run(context.Background(), in, planner.RunOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	rows, err := db.DB().Query(`SELECT a.id,
			count(t.id) FILTER (WHERE t.ts <= $1 AND t.settled_at > $1 - INTERVAL 1 DAY AND t.settled_at <= $1),
			count(t.id) FILTER (WHERE t.ts <= $1 AND t.settled_at > $1 - INTERVAL 7 DAY AND t.settled_at <= $1),
			count(t.id) FILTER (WHERE t.ts <= $1 AND t.settled_at > $1)
		FROM accounts a LEFT JOIN txns t ON t.account_id = a.id GROUP BY a.id ORDER BY a.id`, now)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	future := 0
	for r := 0; rows.Next(); r++ {
		var id, day, week, later int64
		if err := rows.Scan(&id, &day, &week, &later); err != nil {
			t.Fatal(err)
		}
		future += int(later)
		gd, gw := res.Record.Column(0).(*array.Int64).Value(r), res.Record.Column(1).(*array.Int64).Value(r)
		if gd != day || gw != week {
			t.Errorf("account %d: settled 1d, 7d = %d, %d; DuckDB %d, %d", id, gd, gw, day, week)
		}
	}
	if future == 0 {
		t.Fatal("no transaction is settled after the query's time: the test checks nothing")
	}
}
