package planner_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"

	"github.com/fletch-engine/fletch/features"
	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/operators/pyworker/pyworkertest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/statement"
	"github.com/fletch-engine/fletch/stores/duckdb"
)

// pyRepo has resolvers that run in the Python workers: over a looked-up
// feature (name_hash), over a has-one path (loud), slow on demand (nap);
// one compiled to expressions (ratio, features/pysym) whose exceptions are
// reported the same way; and an expression over a Python output (tagged).
const pyRepo = `import hashlib
import os
import time

from chalk import online
from chalk.features import features, DataFrame, _


@features
class Account:
    id: int
    name: str | None
    balance: float
    score: float
    name_hash: str | None
    ratio: float | None
    tagged: str = _.name_hash + "#"
    nap: int | None
    payments: DataFrame[Payment]


@features
class Payment:
    id: int
    account_id: Account.id
    account: Account
    amount: float
    loud: str | None


@online
def name_hash(name: Account.name) -> Account.name_hash:
    return hashlib.sha256(name.encode()).hexdigest()


@online
def ratio(balance: Account.balance, score: Account.score) -> Account.ratio:
    return balance / (balance - 20) * score


@online
def loud(name: Payment.account.name, amount: Payment.amount) -> Payment.loud:
    if "FLETCH_TEST_CALLS" in os.environ:
        with open(os.environ["FLETCH_TEST_CALLS"], "a") as f:
            f.write("%r\n" % amount)
    return "%s paid %.2f" % (name.upper(), amount)


@online
def nap(id: Account.id) -> Account.nap:
    if id < 0:
        with open(os.environ["FLETCH_TEST_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    return id
`

func pyFixture(t *testing.T) (*features.Graph, *duckdb.Source) {
	t.Helper()
	return repoWithDuckDB(t, map[string]string{
		"accounts.py":  pyRepo,
		"accounts.sql": "-- resolves: Account\n-- source: db\nselect id, name, balance, score from accounts\n",
		"payments.sql": "-- resolves: Payment\n-- source: db\nselect id, account_id, amount from payments\n",
	},
		"CREATE TABLE accounts (id BIGINT, name VARCHAR, balance DOUBLE, score DOUBLE)",
		"INSERT INTO accounts VALUES (1, 'ada', 10, 0.5), (2, 'bøb', 20, 0.25), (3, NULL, 30, 0.75), (4, '', -1e300, 2)",
		"CREATE TABLE payments (id BIGINT, account_id BIGINT, amount DOUBLE)",
		"INSERT INTO payments VALUES (1, 1, 5), (2, 1, 7.125), (3, 2, 1), (4, 3, 2), (5, 9, 3)",
	)
}

// pyEngine is an engine over the fixture whose workers use the test's
// CPython; it is closed when the test ends.
func pyEngine(t *testing.T, g *features.Graph, db *duckdb.Source, mem memory.Allocator, cfg pyworker.Config) *planner.Engine {
	t.Helper()
	if cfg.Python == "" {
		cfg.Python = pyworkertest.Python(t)
	}
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, mem, planner.WithPython(cfg))
	t.Cleanup(e.Close)
	return e
}

func runPy(t *testing.T, e *planner.Engine, class string, partial bool, ids []int64, outs ...string) (*planner.Result, error) {
	t.Helper()
	mem := memory.NewGoAllocator()
	in := accountInputs(mem, ids...)
	defer in.Release()
	st := &statement.Statement{Class: e.Graph().Class(class), Inputs: in.Schema().Fields()}
	for _, o := range outs {
		st.Outputs = append(st.Outputs, ref(o))
	}
	plan, err := e.Prepare(st)
	if err != nil {
		return nil, err
	}
	return plan.Run(context.Background(), in, planner.RunOptions{Partial: partial})
}

// pyReference computes, in CPython, what the fixture's resolvers answer
// for the accounts' rows (the same literal data as the DuckDB tables).
func pyReference(t *testing.T, script string) [][]any {
	t.Helper()
	out, err := exec.Command(pyworkertest.Python(t), "-c", script).Output()
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	var rows [][]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// The features of Python resolvers answer what CPython computes; a row the
// function raises for is null and reported with its rows in a partial run,
// and the query's error otherwise; an expression over a Python output
// follows it.
func TestPythonResolverAnswers(t *testing.T) {
	g, db := pyFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := pyEngine(t, g, db, mem, pyworker.Config{})
	ids := []int64{1, 2, 3, 4, 9}
	res, err := runPy(t, e, "account", true, ids, "name_hash", "ratio", "tagged", "name")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	want := pyReference(t, `import hashlib, json
rows = {1: ("ada", 10.0, 0.5), 2: ("bøb", 20.0, 0.25), 3: (None, 30.0, 0.75), 4: ("", -1e300, 2.0), 9: (None, None, None)}
out = [[], [], []]
for id in [1, 2, 3, 4, 9]:
    name, balance, score = rows[id]
    try:
        h = hashlib.sha256(name.encode()).hexdigest()
    except Exception:
        h = None
    out[0].append(h)
    out[2].append(None if h is None else h + "#")
    try:
        out[1].append(balance / (balance - 20) * score)
    except Exception:
        out[1].append(None)
print(json.dumps(out))`)
	got := cells(res.Record)
	for i, name := range []string{"name_hash", "ratio", "tagged"} {
		if !reflect.DeepEqual(jsonish(got[i]), want[i]) {
			t.Errorf("%s = %v, want %v", name, got[i], want[i])
		}
	}
	// The worker's exceptions are reported as the compiled resolvers' are.
	raised := "AttributeError: 'NoneType' object has no attribute 'encode' (name_hash, line " + pyLine("return hashlib") + ")"
	wantErrs := []planner.OutputError{
		{Output: 0, Resolver: "name_hash", Kind: statement.InvalidInput, Rows: []int{2, 4}, Message: raised},
		// ratio is an expression: id 9 has no balance (a float, not
		// optional), so ratio is not called for it (null, no error).
		{Output: 1, Resolver: "ratio", Kind: statement.InvalidInput, Rows: []int{1},
			Message: "ZeroDivisionError: float division by zero (ratio, line 38)"},
		{Output: 2, Resolver: "name_hash", Kind: statement.InvalidInput, Rows: []int{2, 4}, Message: raised},
	}
	if !reflect.DeepEqual(res.Errors, wantErrs) {
		t.Errorf("errors\n%+v\nwant\n%+v", res.Errors, wantErrs)
	}

	// Not partial: the first row's exception is the query's error.
	_, err = runPy(t, e, "account", false, ids, "name_hash")
	if want := "output name_hash: Python resolver name_hash raised for account.name_hash in 2 of 5 rows; the first, row 2: " + raised; err == nil || err.Error() != want || statement.KindOf(err) != statement.InvalidInput {
		t.Errorf("a run that is not partial: %v, want %s", err, want)
	}
	_, err = runPy(t, e, "account", false, ids, "ratio")
	if want := "Python resolver ratio raised for account.ratio in 1 of 5 rows; the first, row 1: ZeroDivisionError: float division by zero (ratio, line 38)"; err == nil || !strings.HasSuffix(err.Error(), want) || statement.KindOf(err) != statement.InvalidInput {
		t.Errorf("a run that is not partial: %v, want %s", err, want)
	}
}

// pyAt is the file:line of text in pyRepo.
func pyAt(text string) string { return "accounts.py:" + pyLine(text) }

// pyLine is the line of text in pyRepo.
func pyLine(text string) string {
	return strconv.Itoa(strings.Count(pyRepo[:strings.Index(pyRepo, text)], "\n") + 1)
}

// jsonish turns Go values into what JSON decodes them as.
func jsonish(vs []any) []any {
	data, _ := json.Marshal(vs)
	var out []any
	_ = json.Unmarshal(data, &out)
	return out
}

// A parameter may be a has-one path: the related row's feature gathered
// to the calling rows.
func TestPythonResolverHasOneInput(t *testing.T) {
	g, db := pyFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := pyEngine(t, g, db, mem, pyworker.Config{})
	res, err := runPy(t, e, "payment", true, []int64{2, 3, 1, 4}, "loud")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	want := pyReference(t, `import json
rows = [("ada", 7.125), ("bøb", 1.0), ("ada", 5.0), (None, 2.0)]
out = []
for name, amount in rows:
    try:
        out.append("%s paid %.2f" % (name.upper(), amount))
    except Exception:
        out.append(None)
print(json.dumps([out]))`)
	if got := cells(res.Record); !reflect.DeepEqual(jsonish(got[0]), want[0]) {
		t.Errorf("loud = %v, want %v", got[0], want[0])
	}
	if len(res.Errors) != 1 || !reflect.DeepEqual(res.Errors[0].Rows, []int{3}) {
		t.Errorf("errors %+v, want row 3's", res.Errors)
	}
	// A resolver of the related class runs for its distinct rows; its
	// exceptions are reported at the input rows that read them.
	rel, err := runPy(t, e, "payment", true, []int64{2, 3, 1, 4, 5}, "account.name_hash")
	if err != nil {
		t.Fatal(err)
	}
	defer rel.Release()
	if len(rel.Errors) != 1 || !reflect.DeepEqual(rel.Errors[0].Rows, []int{3, 4}) || rel.Errors[0].Resolver != "name_hash" {
		t.Errorf("errors of a related row's resolver %+v, want payments 4 and 5 (accounts 3 and 9)", rel.Errors)
	}
	if plan, err := e.Prepare(&statement.Statement{Class: g.Class("payment"), Inputs: []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, Outputs: []statement.Output{ref("loud")}}); err != nil ||
		!strings.Contains(plan.Explain(), "column loud <- python loud(name=account.name, amount=amount) [accounts.py, accounts.py:") { // then why it needs Python

		t.Errorf("explain:\n%s", plan.Explain())
	}
}

// A row whose non-optional input is missing (no such payment: no amount)
// is never sent to Python: its output is null, with no error and no call.
func TestPythonResolverSkipsMissingRows(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FLETCH_TEST_CALLS", calls)
	g, db := pyFixture(t)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	e := pyEngine(t, g, db, mem, pyworker.Config{})
	for _, tc := range []struct {
		ids   []int64
		want  []any
		calls string
	}{
		{[]int64{1, 99, 3, 98}, []any{"ADA paid 5.00", nil, "BØB paid 1.00", nil}, "5.0\n1.0\n"},
		{[]int64{99, 98}, []any{nil, nil}, ""},
	} {
		os.Remove(calls)
		res, err := runPy(t, e, "payment", true, tc.ids, "loud")
		if err != nil {
			t.Fatal(err)
		}
		got := cells(res.Record)[0]
		errs := res.Errors
		res.Release()
		data, _ := os.ReadFile(calls)
		if !reflect.DeepEqual(got, tc.want) || len(errs) != 0 || string(data) != tc.calls {
			t.Errorf("payments %v: loud %v, errors %+v, calls %q; want %v, none, %q", tc.ids, got, errs, data, tc.want, tc.calls)
		}
	}
}

// Killing a worker during a query fails the features of that resolver for
// that query (the other outputs are answered); the next query succeeds.
func TestPythonWorkerKilledMidQuery(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("FLETCH_TEST_PIDFILE", pidfile)
	g, db := pyFixture(t)
	e := pyEngine(t, g, db, nil, pyworker.Config{Workers: 1})
	type answer struct {
		res *planner.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := runPy(t, e, "account", true, []int64{1, -1}, "name", "nap")
		done <- answer{res, err}
	}()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile(pidfile)
		pid, _ = strconv.Atoi(string(data))
	}
	if pid == 0 {
		t.Fatal("the slow resolver never ran")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.res.Release()
	if len(a.res.Errors) != 1 || a.res.Errors[0].Output != 1 || a.res.Errors[0].Resolver != "nap" || a.res.Errors[0].Rows != nil ||
		!strings.Contains(a.res.Errors[0].Message, "Python resolver nap: the Python worker died during the call (signal: killed)") {
		t.Errorf("errors %+v, want nap's worker death alone", a.res.Errors)
	}
	if got := cells(a.res.Record); got[0][0] != "ada" || got[1][0] != nil {
		t.Errorf("answer %v: want ada's name and a null nap", got)
	}
	res, err := runPy(t, e, "account", true, []int64{1, 2}, "nap")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if got := cells(res.Record); len(res.Errors) != 0 || !reflect.DeepEqual(got[0], []any{int64(1), int64(2)}) {
		t.Errorf("the next query: %v %+v", got, res.Errors)
	}
}

// Without a usable Python, the features of Python resolvers are a clear
// error naming the resolver and why it needs Python; the rest serves.
func TestPythonUnavailable(t *testing.T) {
	g, db := pyFixture(t)
	e := pyEngine(t, g, db, nil, pyworker.Config{Python: "/no/such/python3"})
	_, err := runPy(t, e, "account", false, []int64{1}, "tagged")
	want := filepath.Join(g.Dir, pyAt("def name_hash")) + ":1: account.name_hash comes from the Python resolver name_hash, which runs in Python (accounts.py:33:12: name hashlib (a global, an import or a builtin the interpreter does not know)), and Python is not available: python3 cannot be started (no such file or directory); set python.executable in fletch.yaml"
	if err == nil || !strings.HasSuffix(err.Error(), want) || statement.KindOf(err) != statement.Unsupported {
		t.Errorf("got %v\nwant %s", err, want)
	}
	res, err := runPy(t, e, "account", false, []int64{1, 3}, "name", "balance")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if got := cells(res.Record); !reflect.DeepEqual(got, [][]any{{"ada", nil}, {10.0, 30.0}}) {
		t.Errorf("the rest of the repository: %v", got)
	}
	if errs := e.CheckPython(); len(errs) != 3 || !strings.Contains(errs[0].Error(), "Python resolver name_hash runs in Python") {
		t.Errorf("CheckPython: %v", errs)
	}
}

// Close stops the workers and every goroutine that talked to them.
func TestPythonCloseLeavesNothing(t *testing.T) {
	g, db := pyFixture(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := planner.NewEngine(g, &countingSource{db: db, calls: map[string]int{}}, nil, planner.WithPython(pyworker.Config{Python: pyworkertest.Python(t), Workers: 2}))
	res, err := runPy(t, e, "account", true, []int64{1, 2}, "nap", "name_hash")
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	e.Close()
	_, err = runPy(t, e, "account", false, []int64{1}, "nap")
	if !errors.Is(err, pyworker.ErrClosed) && (err == nil || !strings.Contains(err.Error(), "closed")) {
		t.Errorf("a query after Close: %v, want the pool's closed error", err)
	}
}
