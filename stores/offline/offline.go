// Package offline is the offline store's write side: a Logger that takes
// the feature values queries computed (stores.ComputedValues) without ever
// blocking them, and writes them in batches to a table of Postgres (COPY)
// or DuckDB (appender) — the history point-in-time training sets are built
// from. docs/STORES.md ("The offline store") documents the table.
//
// It knows feature values by class, key and name, never plans or feature
// definitions: the planner decides what is logged.
package offline

import (
	"context"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fletch-engine/fletch/stores"
)

// DefaultTable is the log's table when the configuration names none.
const DefaultTable = "fletch_feature_log"

// Row is one logged value: a row of the log's table.
type Row struct {
	Class   string
	Key     string // the entity key as text (integers in decimal)
	Feature string // fully qualified: user.review_count__604800__
	// Value is the value as JSON (value.go); nil for null.
	Value    []byte
	Observed time.Time
	TraceID  string
}

// Sink writes batches of rows to the log's table.
type Sink interface {
	Write(ctx context.Context, rows []Row) error
	Close() error
}

// Options tune a Logger.
type Options struct {
	// Queue bounds the logged batches (one per class per query) waiting
	// to be written; beyond it they are dropped. Default 1024.
	Queue int
	// BatchRows is how many rows one write gathers at most from what is
	// queued. Default 50,000.
	BatchRows int
	// WriteTimeout bounds one write. Default 30s.
	WriteTimeout time.Duration
	// WarnEvery is the least time between two warnings about dropped or
	// failed values. Default 1m.
	WarnEvery time.Duration
}

// Logger is a stores.OfflineLog over a Sink: a bounded queue drained by
// one writer, which takes everything queued (up to BatchRows) into each
// write, so batches grow with the load instead of writes piling up.
type Logger struct {
	sink Sink
	opts Options
	jobs chan *stores.ComputedValues
	done chan struct{}

	mu      sync.RWMutex // guards closed against Log racing Close
	closed  bool
	pending sync.WaitGroup

	written, dropped, failed atomic.Int64
	warnMu                   sync.Mutex
	lastWarn                 time.Time
}

var _ stores.OfflineLog = (*Logger)(nil)

// NewLogger starts a logger writing to sink; Close stops it and closes
// sink.
func NewLogger(sink Sink, opts Options) *Logger {
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = 50_000
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.WarnEvery <= 0 {
		opts.WarnEvery = time.Minute
	}
	l := &Logger{sink: sink, opts: opts, jobs: make(chan *stores.ComputedValues, opts.Queue), done: make(chan struct{})}
	go l.loop()
	return l
}

// Log queues v, or drops it when the queue is full or the logger closed.
func (l *Logger) Log(v *stores.ComputedValues) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.closed {
		l.pending.Add(1)
		select {
		case l.jobs <- v:
			return
		default:
			l.pending.Done()
		}
	}
	l.dropped.Add(size(v))
	v.Release()
	l.warn("offline store: dropping computed values: the write queue is full")
}

// Flush waits until everything logged so far is written or failed.
func (l *Logger) Flush() { l.pending.Wait() }

// Stats returns the logger's counters.
func (l *Logger) Stats() stores.OfflineStats {
	return stores.OfflineStats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Close writes what is queued, stops the writer and closes the sink.
func (l *Logger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.jobs)
	l.mu.Unlock()
	<-l.done
	return l.sink.Close()
}

func (l *Logger) loop() {
	defer close(l.done)
	for v := range l.jobs {
		batch, n := []*stores.ComputedValues{v}, size(v)
	gather:
		for n < int64(l.opts.BatchRows) {
			select {
			case w, ok := <-l.jobs:
				if !ok {
					break gather
				}
				batch, n = append(batch, w), n+size(w)
			default:
				break gather
			}
		}
		l.write(batch, n)
	}
}

func (l *Logger) write(batch []*stores.ComputedValues, n int64) {
	defer func() {
		for _, v := range batch {
			v.Release()
			l.pending.Done()
		}
	}()
	rows := make([]Row, 0, n)
	var err error
	for _, v := range batch {
		if rows, err = appendRows(rows, v); err != nil {
			break
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), l.opts.WriteTimeout)
		err = l.sink.Write(ctx, rows)
		cancel()
	}
	if err != nil {
		l.failed.Add(n)
		l.warn("offline store: writing %d computed values: %v", n, err)
		return
	}
	l.written.Add(n)
}

// warn logs at most once per WarnEvery, with the counters so far: a
// store that is down must not flood the log.
func (l *Logger) warn(format string, args ...any) {
	l.warnMu.Lock()
	defer l.warnMu.Unlock()
	if now := time.Now(); now.Sub(l.lastWarn) >= l.opts.WarnEvery {
		l.lastWarn = now
		s := l.Stats()
		log.Printf(format+" (so far: %d written, %d dropped, %d failed)", append(args, s.Written, s.Dropped, s.Failed)...)
	}
}

// size is how many values v holds: rows with a null key are not logged.
func size(v *stores.ComputedValues) int64 {
	return int64(v.Keys.Len()-v.Keys.NullN()) * v.Values.NumCols()
}
