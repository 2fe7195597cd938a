// Package pyworker runs Python resolvers that fletch cannot compile to
// expressions: a pool of CPython worker processes, each importing the
// repository's modules and calling the resolver's function row by row over
// an Arrow batch sent through a pipe. It is the fallback, not the fast
// path (docs/PYTHON.md).
//
// It knows processes, pipes and Arrow batches; it knows nothing of feature
// graphs or plans: a call names a file, a function, its parameters and the
// Arrow fields of its outputs.
package pyworker

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

//go:embed worker.py
var workerSource string

// Config configures a Pool. Zero values mean the defaults.
type Config struct {
	// Python is the interpreter: default <Dir>/.venv/bin/python when it
	// exists, else python3 on the PATH. It needs pyarrow.
	Python string
	// Workers is the number of worker processes (default 2).
	Workers int
	// Timeout bounds one call (default 10s): a worker that has not answered
	// by then is killed, and started again for the next call.
	Timeout time.Duration
	// Queue is how many calls may wait for a busy worker (default 64); a
	// call beyond that is refused at once (ErrQueueFull).
	Queue int
	// Dir is the repository's folder: the workers' working directory and
	// the first entry of their sys.path.
	Dir string
}

// The defaults of Config.
const (
	DefaultWorkers = 2
	DefaultTimeout = 10 * time.Second
	DefaultQueue   = 64
	// startTimeout bounds a worker's start (the interpreter and pyarrow
	// imported), apart from the calls' timeout.
	startTimeout = 30 * time.Second
)

// Errors of a call; Call's errors wrap them.
var (
	// ErrQueueFull: every worker is busy and the queue is full.
	ErrQueueFull = errors.New("the Python workers are busy and their queue is full")
	// ErrTimeout: the call did not end within Config.Timeout.
	ErrTimeout = errors.New("the Python call timed out")
	// ErrWorkerDied: the worker process ended during the call.
	ErrWorkerDied = errors.New("the Python worker died")
	// ErrUnavailable: no worker can start (no interpreter, no pyarrow).
	ErrUnavailable = errors.New("Python is not available")
	// ErrClosed: the pool was closed.
	ErrClosed = errors.New("the Python worker pool is closed")
)

// Function is what a call runs: File's function Name.
type Function struct {
	// File is the module's path, relative to Config.Dir (or absolute below it).
	File string
	Name string
	// Params are the function's parameter names, one input column each,
	// in the order of the input batch's columns.
	Params []string
	// Outputs are the features the function returns, as Arrow fields; a
	// single output is the return value, several are read from a feature
	// class instance, a dict or a tuple.
	Outputs []arrow.Field
}

// Result is a call's answer.
type Result struct {
	// Record has one column per output and one row per input row. A row
	// that failed is null in every output.
	Record arrow.RecordBatch
	// Errors are the rows whose call raised (or returned what the outputs
	// cannot hold), in row order.
	Errors []RowError
}

// RowError is one row's exception, as Python describes it, with the
// innermost line of the repository it was raised from.
type RowError struct {
	Row     int
	Message string
}

// Pool is a set of worker processes. It starts them on first use and
// restarts one that died; Close stops them all.
type Pool struct {
	cfg    Config
	mem    memory.Allocator
	tokens chan struct{} // one per call running or waiting: Workers+Queue
	idle   chan *worker  // the workers not in a call
	all    []*worker

	closeOnce sync.Once
	closing   chan struct{}

	checkOnce sync.Once
	checkErr  error
}

// New returns a pool for cfg; no process starts before the first call (or
// Check). mem allocates the answers' records (nil: the Go allocator).
func New(cfg Config, mem memory.Allocator) *Pool {
	if cfg.Python == "" {
		cfg.Python = DefaultPython(cfg.Dir)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	p := &Pool{cfg: cfg, mem: mem, tokens: make(chan struct{}, cfg.Workers+cfg.Queue),
		idle: make(chan *worker, cfg.Workers), closing: make(chan struct{})}
	for i := range cfg.Workers {
		w := &worker{pool: p, id: i}
		p.all = append(p.all, w)
		p.idle <- w
	}
	return p
}

// DefaultPython is the interpreter of a repository: its virtual
// environment's when it has one (.venv), else python3.
func DefaultPython(dir string) string {
	if dir != "" {
		venv := filepath.Join(dir, ".venv", "bin", "python")
		if _, err := os.Stat(venv); err == nil {
			return venv
		}
	}
	return "python3"
}

// Config returns the pool's configuration, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// Check starts one worker, once, and says whether it could: the error
// (wrapping ErrUnavailable) says what is missing. Later calls return the
// first answer.
func (p *Pool) Check() error {
	p.checkOnce.Do(func() {
		var w *worker
		select {
		case w = <-p.idle:
		case <-p.closing:
			p.checkErr = ErrClosed
			return
		}
		defer p.release(w)
		p.checkErr = w.ensure()
	})
	return p.checkErr
}

// Call runs fn over the rows of in (one column per parameter) in one
// worker. A row's exception is a RowError; the call as a whole fails when
// the worker cannot start, dies, times out, the queue is full, or ctx ends
// (the worker is then stopped: it cannot be interrupted otherwise).
func (p *Pool) Call(ctx context.Context, fn *Function, in arrow.RecordBatch) (*Result, error) {
	select {
	case p.tokens <- struct{}{}:
	default:
		return nil, fmt.Errorf("%w (%d workers, %d waiting)", ErrQueueFull, p.cfg.Workers, p.cfg.Queue)
	}
	defer func() { <-p.tokens }()
	var w *worker
	select {
	case w = <-p.idle:
	case <-p.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer p.release(w)
	if err := w.ensure(); err != nil {
		return nil, err
	}
	return w.call(ctx, fn, in)
}

// release gives w back, or stops it when the pool is closing.
func (p *Pool) release(w *worker) {
	select {
	case <-p.closing:
		w.stop()
	default:
	}
	p.idle <- w
}

// Close stops every worker: idle ones at once, busy ones too (their calls
// fail with ErrWorkerDied or ErrClosed), and waits for the processes and
// the goroutines reading their output to end. Calls after Close fail.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() { close(p.closing) })
	for _, w := range p.all {
		w.stop()
	}
	return nil
}
