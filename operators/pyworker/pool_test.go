package pyworker_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"

	"github.com/fletch-engine/fletch/operators/pyworker"
	"github.com/fletch-engine/fletch/operators/pyworker/pyworkertest"
)

// repoSrc is a feature repository in the seeds' style: chalk imports,
// classes that name each other before they are defined, `_` expressions,
// windowed features, and resolvers that need Python.
const repoSrc = `import hashlib
import os
import time
from datetime import datetime

import chalk.functions as F
from chalk import Windowed, online, windowed
from chalk.features import DataFrame, Features, FeatureTime, _, feature, features

from helpers import shout


@features(owner="ml@example.com")
class User:
    id: int
    email: str | None
    reviews: DataFrame[Review]
    full_name: str = _.first + " " + _.last
    review_count: Windowed[int] = windowed("7d", "30d", expression=_.reviews[_.at > _.chalk_window].count())
    sim: float = F.jaccard_similarity(a=F.lower(_.full_name), b=F.lower(_.email))
    stars: int = feature(min=1, max=5)
    email_hash: str
    a: int
    b: float
    c: bool
    d: str


@features
class Review:
    id: int
    at: FeatureTime
    user_id: User.id


@online
def email_hash(email: User.email) -> User.email_hash:
    return hashlib.sha256(email.encode()).hexdigest()


@online(tags=["x"])
def several(id: User.id) -> Features[User.a, User.b, User.c, User.d]:
    if id == 1:
        return User(a=1, b=1.5, c=True, d=shout("one"))
    if id == 2:
        return {"a": 2, "b": None, "c": False, "d": "two"}
    if id == 3:
        return (3, 3.25, None, "three")
    if id == 4:
        return User(a="not an int", b=4.0, c=True, d="four")
    if id == 6:
        return shout(None)
    return 1 // (id - id)


@online
def slow(id: User.id) -> User.a:
    if id < 0:
        with open(os.environ["FLETCH_TEST_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    return id * 10
`

const helpersSrc = `def shout(s):
    return s.upper() + "!"
`

func writeRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newPool(t testing.TB, cfg pyworker.Config, mem memory.Allocator) *pyworker.Pool {
	t.Helper()
	if cfg.Python == "" {
		cfg.Python = pyworkertest.Python(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = writeRepo(t, map[string]string{"features.py": repoSrc, "helpers.py": helpersSrc})
	}
	p := pyworker.New(cfg, mem)
	t.Cleanup(func() { p.Close() })
	return p
}

func strings1(mem memory.Allocator, vals []*string) arrow.RecordBatch {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(*v)
		}
	}
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "email", Type: arrow.BinaryTypes.String, Nullable: true}}, nil), []arrow.Array{col}, int64(len(vals)))
}

func ints(mem memory.Allocator, vals ...int64) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues(vals, nil)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil), []arrow.Array{col}, int64(len(vals)))
}

var (
	emailHash = &pyworker.Function{File: "features.py", Name: "email_hash", Params: []string{"email"},
		Outputs: []arrow.Field{{Name: "email_hash", Type: arrow.BinaryTypes.String, Nullable: true}}}
	several = &pyworker.Function{File: "features.py", Name: "several", Params: []string{"id"},
		Outputs: []arrow.Field{
			{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
			{Name: "c", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			{Name: "d", Type: arrow.BinaryTypes.String, Nullable: true}}}
	slow = &pyworker.Function{File: "features.py", Name: "slow", Params: []string{"id"},
		Outputs: []arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}}
)

// cpython runs script with the test's interpreter, the JSON of in on its
// stdin, and decodes the JSON it prints: the reference.
func cpython(t *testing.T, script string, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pyworkertest.Python(t), "-c", script)
	cmd.Stdin = strings.NewReader(string(data))
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatal(err)
	}
}

func ptr(s string) *string { return &s }

// A resolver calling hashlib answers what CPython computes, row by row;
// a row that raises (None has no encode) is that row's error, located in
// the repository's file.
func TestCallHashlib(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newPool(t, pyworker.Config{}, mem)
	emails := []*string{ptr("ada@example.com"), ptr(""), nil, ptr("zoë@例え.jp"), ptr(strings.Repeat("x", 10000))}
	in := strings1(mem, emails)
	defer in.Release()
	res, err := p.Call(context.Background(), emailHash, in)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Record.Release()

	var want []*string
	cpython(t, `import hashlib, json, sys
print(json.dumps([None if s is None else hashlib.sha256(s.encode()).hexdigest() for s in json.load(sys.stdin)]))`, emails, &want)
	got := res.Record.Column(0).(*array.String)
	for i, w := range want {
		switch {
		case w == nil && got.IsValid(i):
			t.Errorf("row %d: %q, want null", i, got.Value(i))
		case w != nil && (got.IsNull(i) || got.Value(i) != *w):
			t.Errorf("row %d: %v, want %q", i, got.ValueStr(i), *w)
		}
	}
	if len(res.Errors) != 1 || res.Errors[0].Row != 2 ||
		res.Errors[0].Message != "AttributeError: 'NoneType' object has no attribute 'encode' (email_hash, line "+lineOf(repoSrc, "return hashlib")+")" {
		t.Errorf("row errors %+v, want row 2's AttributeError at the return", res.Errors)
	}
}

// Several outputs come from a feature class instance, a dict or a tuple; a
// value the feature's type cannot hold and an exception are row errors (one
// raised in another file of the repository names it).
func TestCallSeveralOutputs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newPool(t, pyworker.Config{}, mem)
	in := ints(mem, 1, 2, 3, 4, 5, 6)
	defer in.Release()
	res, err := p.Call(context.Background(), several, in)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Record.Release()
	var rows []string
	for i := 0; i < int(res.Record.NumRows()); i++ {
		var cells []string
		for _, c := range res.Record.Columns() {
			cells = append(cells, c.ValueStr(i))
		}
		rows = append(rows, strings.Join(cells, " "))
	}
	want := []string{"1 1.5 true ONE!", "2 (null) false two", "3 3.25 (null) three", "(null) 4 true four", "(null) (null) (null) (null)", "(null) (null) (null) (null)"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	wantErrs := []pyworker.RowError{
		{Row: 3, Message: "returned 'not an int' for a, which is a int64"},
		{Row: 4, Message: "ZeroDivisionError: integer division or modulo by zero (several, line " + lineOf(repoSrc, "return 1 //") + ")"},
		{Row: 5, Message: "AttributeError: 'NoneType' object has no attribute 'upper' (several, helpers.py line 2)"},
	}
	if !slices.Equal(res.Errors, wantErrs) {
		t.Errorf("row errors %+v, want %+v", res.Errors, wantErrs)
	}
}

// A module that does not import fails the call as a whole, saying why.
func TestCallImportError(t *testing.T) {
	dir := writeRepo(t, map[string]string{"features.py": "import requests_that_do_not_exist\n\ndef f(x):\n    return x\n"})
	p := newPool(t, pyworker.Config{Dir: dir}, nil)
	in := ints(memory.DefaultAllocator, 1)
	defer in.Release()
	_, err := p.Call(context.Background(), &pyworker.Function{File: "features.py", Name: "f", Params: []string{"x"},
		Outputs: []arrow.Field{{Name: "y", Type: arrow.PrimitiveTypes.Int64}}}, in)
	var ce *pyworker.CallError
	if !errors.As(err, &ce) || ce.Msg != "importing features.py: ModuleNotFoundError: No module named 'requests_that_do_not_exist' (at features.py:1)" {
		t.Fatalf("got %v, want the import error", err)
	}
}

// startSlow starts a call that blocks in the worker, and returns once the
// worker runs it: its pid, and the call's error when it ends.
func startSlow(t *testing.T, p *pyworker.Pool, pidfile string) (int, <-chan error) {
	t.Helper()
	os.Remove(pidfile)
	done := make(chan error, 1)
	go func() {
		in := ints(memory.DefaultAllocator, -1)
		defer in.Release()
		res, err := p.Call(context.Background(), slow, in)
		if err == nil {
			res.Record.Release()
		}
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(pidfile)
		if err != nil || len(data) == 0 {
			continue
		}
		pid, err := strconv.Atoi(string(data))
		if err != nil {
			continue
		}
		return pid, done
	}
	t.Fatal("the slow call never started")
	return 0, nil
}

func callSlow(t *testing.T, p *pyworker.Pool, id int64) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := ints(mem, id)
	defer in.Release()
	res, err := p.Call(context.Background(), slow, in)
	if err != nil {
		t.Fatalf("the next call: %v", err)
	}
	defer res.Record.Release()
	if got := res.Record.Column(0).(*array.Int64).Value(0); got != id*10 {
		t.Errorf("the next call answered %d, want %d", got, id*10)
	}
}

// A worker killed during a call fails that call; the next call gets a new
// worker.
func TestWorkerKilledMidCall(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("FLETCH_TEST_PIDFILE", pidfile)
	p := newPool(t, pyworker.Config{Workers: 1}, nil)
	pid, done := startSlow(t, p, pidfile)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if !errors.Is(err, pyworker.ErrWorkerDied) || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("the call of a killed worker: %v, want ErrWorkerDied saying it was killed", err)
	}
	callSlow(t, p, 7)
}

// A call longer than the timeout fails; its worker is stopped and the next
// call runs in a new one.
func TestCallTimeout(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("FLETCH_TEST_PIDFILE", pidfile)
	// Long enough for the next call's new worker to import the module on
	// a loaded machine, short next to the call that hangs.
	p := newPool(t, pyworker.Config{Workers: 1, Timeout: 5 * time.Second}, nil)
	if err := p.Check(); err != nil { // the start is not the call's time
		t.Fatal(err)
	}
	pid, done := startSlow(t, p, pidfile)
	err := <-done
	if !errors.Is(err, pyworker.ErrTimeout) || err.Error() != "the Python call timed out after 5s (the worker was stopped)" {
		t.Fatalf("got %v, want the timeout", err)
	}
	if !gone(pid) {
		t.Errorf("the worker that timed out (pid %d) still runs", pid)
	}
	callSlow(t, p, 8)
}

// With every worker busy and the queue full, a call is refused at once.
func TestQueueFull(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("FLETCH_TEST_PIDFILE", pidfile)
	p := newPool(t, pyworker.Config{Workers: 1, Queue: 1, Timeout: time.Minute}, nil)
	pid, first := startSlow(t, p, pidfile)
	call := func(ctx context.Context, id int64) error {
		in := ints(memory.DefaultAllocator, id)
		defer in.Release()
		res, err := p.Call(ctx, slow, in)
		if err == nil {
			res.Record.Release()
		}
		return err
	}
	// One call waits in the queue (it retries while the probe below holds
	// the queue's place for a moment).
	queued := make(chan error, 1)
	go func() {
		for {
			if err := call(context.Background(), 5); !errors.Is(err, pyworker.ErrQueueFull) {
				queued <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !errors.Is(err, pyworker.ErrQueueFull); {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err = call(ctx, 6)
		cancel()
	}
	if !errors.Is(err, pyworker.ErrQueueFull) || err.Error() != "the Python workers are busy and their queue is full (1 workers, 1 waiting)" {
		t.Fatalf("a call beyond the queue: %v, want ErrQueueFull", err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if err := <-first; !errors.Is(err, pyworker.ErrWorkerDied) {
		t.Errorf("first call: %v", err)
	}
	if err := <-queued; err != nil {
		t.Errorf("the queued call: %v, want its answer once a worker was free", err)
	}
}

// No interpreter, or one without pyarrow, is a clear error that names
// neither the server's paths nor a Go error type.
func TestUnavailable(t *testing.T) {
	venv := pyworkertest.Python(t)
	noArrow := filepath.Join(t.TempDir(), "python-without-pyarrow")
	if err := os.WriteFile(noArrow, []byte("#!/bin/sh\nexec "+venv+" -S \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ python, want string }{
		{"/no/such/python3", "Python is not available: python3 cannot be started (no such file or directory); set python.executable in fletch.yaml"},
		{noArrow, "Python is not available: the worker program did not start with python-without-pyarrow: pyarrow is not installed for Python 3."},
	} {
		p := newPool(t, pyworker.Config{Python: tc.python}, nil)
		err := p.Check()
		if !errors.Is(err, pyworker.ErrUnavailable) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.python, err, tc.want)
		}
		in := ints(memory.DefaultAllocator, 1)
		if _, err := p.Call(context.Background(), slow, in); !errors.Is(err, pyworker.ErrUnavailable) {
			t.Errorf("%s: a call: %v, want ErrUnavailable", tc.python, err)
		}
		in.Release()
	}
}

// Close ends every worker process, busy or idle, and every goroutine the
// pool started; calls after it fail.
func TestCloseEndsWorkers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("FLETCH_TEST_PIDFILE", pidfile)
	p := newPool(t, pyworker.Config{Workers: 2}, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); callSlow(t, p, 3) }() // the other worker, idle after
	wg.Wait()
	busy, done := startSlow(t, p, pidfile)
	p.Close()
	if err := <-done; err == nil {
		t.Error("a call running at Close succeeded")
	}
	if !gone(busy) {
		t.Errorf("worker %d runs after Close", busy)
	}
	in := ints(memory.DefaultAllocator, 1)
	defer in.Release()
	if _, err := p.Call(context.Background(), slow, in); !errors.Is(err, pyworker.ErrClosed) {
		t.Errorf("a call after Close: %v, want ErrClosed", err)
	}
}

// lineOf is the line of src where text first appears.
func lineOf(src, text string) string {
	return strconv.Itoa(strings.Count(src[:strings.Index(src, text)], "\n") + 1)
}

// gone reports whether process pid has ended.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
