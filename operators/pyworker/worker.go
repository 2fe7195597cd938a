package pyworker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// worker is one slot of the pool: a process, started on demand and again
// after it died. A call holds the worker (taken from Pool.idle); mu guards
// proc against Close, which stops workers whether or not they are in a call.
type worker struct {
	pool *Pool
	id   int
	mu   sync.Mutex
	proc *process // nil: not running
}

// process is one running worker program.
type process struct {
	cmd  *exec.Cmd
	req  *os.File // the worker's fd 3
	resp *os.File // the worker's fd 4
	rd   *bufio.Reader
	out  *tail
	done chan struct{} // closed when the process has ended
	exit error         // cmd.Wait's, after done
}

// ensure starts w's process unless it runs.
func (w *worker) ensure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.pool.closing:
		return ErrClosed
	default:
	}
	if w.proc != nil {
		select {
		case <-w.proc.done: // died between calls: start another
			w.proc.close()
			w.proc = nil
		default:
			return nil
		}
	}
	pr, err := w.pool.start(w.id)
	if err != nil {
		return err
	}
	w.proc = pr
	return nil
}

// start runs the worker program and waits for it to say it is ready.
func (p *Pool) start(id int) (*process, error) {
	python := filepath.Base(p.cfg.Python)
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	cmd := exec.Command(p.cfg.Python, "-c", workerSource, p.cfg.Dir)
	cmd.Dir = p.cfg.Dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.ExtraFiles = []*os.File{reqR, respW}
	out := &tail{prefix: fmt.Sprintf("python worker %d: ", id)}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a kill also ends what the resolver
	// started; WaitDelay bounds Wait when such a child keeps the output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return nil, fmt.Errorf("%w: %s cannot be started (%v); set python.executable in fletch.yaml", ErrUnavailable, python, unwrapExec(err))
	}
	pr := &process{cmd: cmd, req: reqW, resp: respR, rd: bufio.NewReaderSize(respR, 1<<16), out: out, done: make(chan struct{})}
	go func() {
		pr.exit = cmd.Wait()
		close(pr.done)
	}()
	var hello struct {
		Ready   bool
		Python  string
		Pyarrow string
	}
	err = pr.exchange(context.Background(), startTimeout, func() error {
		h, _, err := readFrame(pr.rd)
		if err != nil {
			return err
		}
		return json.Unmarshal(h, &hello)
	})
	if err != nil || !hello.Ready {
		pr.kill()
		msg := pr.out.last()
		if msg == "" {
			msg = fmt.Sprint(err)
		}
		return nil, fmt.Errorf("%w: the worker program did not start with %s: %s", ErrUnavailable, python, msg)
	}
	return pr, nil
}

// unwrapExec drops the path from exec's errors: errors reach clients,
// which must not see the server's paths.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exchange runs talk (reads and writes on pr's pipes) until it ends, the
// timeout passes or ctx ends; then it kills pr, which ends talk.
func (pr *process) exchange(ctx context.Context, timeout time.Duration, talk func() error) error {
	done := make(chan error, 1)
	go func() { done <- talk() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		pr.kill()
		<-done
		return ErrTimeout
	case <-ctx.Done():
		pr.kill()
		<-done
		return ctx.Err()
	}
}

// kill ends pr at once and waits for it.
func (pr *process) kill() {
	select {
	case <-pr.done: // reaped: its pid may be another process's now
	default:
		_ = syscall.Kill(-pr.cmd.Process.Pid, syscall.SIGKILL)
	}
	pr.close()
	<-pr.done
}

// close closes the parent's ends of the pipes (a read or write blocked on
// them returns).
func (pr *process) close() {
	pr.req.Close()
	pr.resp.Close()
}

// stop ends w's process: it is asked to exit (its requests end) and killed
// if it has not within a second.
func (w *worker) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	pr := w.proc
	if pr == nil {
		return
	}
	w.proc = nil
	pr.req.Close()
	select {
	case <-pr.done:
		pr.resp.Close()
	case <-time.After(time.Second):
		pr.kill()
	}
}

// drop forgets pr after a failed call (it was killed or died).
func (w *worker) drop(pr *process) {
	pr.kill()
	w.mu.Lock()
	if w.proc == pr {
		w.proc = nil
	}
	w.mu.Unlock()
}

// call runs fn over in in w's process.
func (w *worker) call(ctx context.Context, fn *Function, in arrow.RecordBatch) (*Result, error) {
	w.mu.Lock()
	pr := w.proc
	w.mu.Unlock()
	if pr == nil {
		return nil, ErrClosed
	}
	req, err := encodeCall(fn, in)
	if err != nil {
		return nil, err
	}
	var header []byte
	var streams [][]byte
	err = pr.exchange(ctx, w.pool.cfg.Timeout, func() error {
		if _, err := pr.req.Write(req); err != nil {
			return err
		}
		header, streams, err = readFrame(pr.rd)
		return err
	})
	switch {
	case errors.Is(err, ErrTimeout):
		w.drop(pr)
		return nil, fmt.Errorf("%w after %s (the worker was stopped)", ErrTimeout, w.pool.cfg.Timeout)
	case ctx.Err() != nil:
		w.drop(pr)
		return nil, ctx.Err()
	case err != nil:
		w.drop(pr)
		select {
		case <-w.pool.closing:
			return nil, ErrClosed
		default:
		}
		return nil, fmt.Errorf("%w during the call (%s)%s", ErrWorkerDied, exitText(pr.exit), lastLine(pr.out))
	}
	var ans struct{ Error string }
	if err := json.Unmarshal(header, &ans); err != nil {
		w.drop(pr)
		return nil, fmt.Errorf("the Python worker answered %q: %v", header, err)
	}
	if ans.Error != "" {
		return nil, &CallError{Msg: ans.Error}
	}
	if len(streams) != 1 {
		w.drop(pr)
		return nil, fmt.Errorf("the Python worker answered %d batches, not 1", len(streams))
	}
	return w.pool.decode(fn, streams[0], in.NumRows())
}

// CallError is a call that failed as a whole in Python: the module does
// not import, the function does not exist.
type CallError struct{ Msg string }

func (e *CallError) Error() string { return e.Msg }

func exitText(err error) string {
	if err == nil {
		return "exited"
	}
	return err.Error()
}

func lastLine(t *tail) string {
	if s := t.last(); s != "" {
		return ": " + s
	}
	return ""
}

// encodeCall is the request frame of a call.
func encodeCall(fn *Function, in arrow.RecordBatch) ([]byte, error) {
	if len(fn.Params) != int(in.NumCols()) {
		return nil, fmt.Errorf("%s has %d parameters, the batch %d columns", fn.Name, len(fn.Params), in.NumCols())
	}
	names := make([]string, len(fn.Outputs))
	for i, f := range fn.Outputs {
		names[i] = f.Name
	}
	header, err := json.Marshal(map[string]any{"file": filepath.ToSlash(fn.File), "function": fn.Name, "outputs": names})
	if err != nil {
		return nil, err
	}
	var rows, schema bytes.Buffer
	iw := ipc.NewWriter(&rows, ipc.WithSchema(in.Schema()))
	if err := iw.Write(in); err != nil {
		return nil, err
	}
	if err := iw.Close(); err != nil {
		return nil, err
	}
	if err := ipc.NewWriter(&schema, ipc.WithSchema(arrow.NewSchema(fn.Outputs, nil))).Close(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	writeFrame(&b, header, rows.Bytes(), schema.Bytes())
	return b.Bytes(), nil
}

// decode reads the answer batch: the outputs, then the __error__ column.
func (p *Pool) decode(fn *Function, stream []byte, rows int64) (*Result, error) {
	rd, err := ipc.NewReader(bytes.NewReader(stream), ipc.WithAllocator(p.mem))
	if err != nil {
		return nil, fmt.Errorf("reading the Python worker's answer: %w", err)
	}
	defer rd.Release()
	if !rd.Next() {
		return nil, fmt.Errorf("reading the Python worker's answer: no batch (%v)", rd.Err())
	}
	rec := rd.RecordBatch()
	n := len(fn.Outputs)
	if int(rec.NumCols()) != n+1 || rec.NumRows() != rows {
		return nil, fmt.Errorf("the Python worker answered %d columns of %d rows, not %d of %d", rec.NumCols(), rec.NumRows(), n+1, rows)
	}
	for i, f := range fn.Outputs {
		if !arrow.TypeEqual(rec.Column(i).DataType(), f.Type) {
			return nil, fmt.Errorf("the Python worker answered %s as %s, not %s", f.Name, rec.Column(i).DataType(), f.Type)
		}
	}
	errs, ok := rec.Column(n).(*array.String)
	if !ok {
		return nil, fmt.Errorf("the Python worker answered errors as %s", rec.Column(n).DataType())
	}
	res := &Result{Record: array.NewRecordBatch(arrow.NewSchema(fn.Outputs, nil), rec.Columns()[:n], rows)}
	for i := 0; i < errs.Len(); i++ {
		if errs.IsValid(i) {
			res.Errors = append(res.Errors, RowError{Row: i, Message: errs.Value(i)})
		}
	}
	return res, nil
}

// A frame is a 4-byte big-endian length and a JSON header, a 4-byte count
// of Arrow IPC streams, and each stream as an 8-byte length and its bytes
// (worker.py speaks the other side).
func writeFrame(b *bytes.Buffer, header []byte, streams ...[]byte) {
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(len(header)))
	b.Write(n[:4])
	b.Write(header)
	binary.BigEndian.PutUint32(n[:4], uint32(len(streams)))
	b.Write(n[:4])
	for _, s := range streams {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		b.Write(n[:])
		b.Write(s)
	}
}

// maxFrame bounds what a length prefix may claim, so that a corrupt
// answer (a resolver writing to fd 4) fails instead of allocating it.
const maxFrame = 1 << 34

func readFrame(r *bufio.Reader) (header []byte, streams [][]byte, err error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:4]); err != nil {
		return nil, nil, err
	}
	header = make([]byte, binary.BigEndian.Uint32(n[:4]))
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(r, n[:4]); err != nil {
		return nil, nil, err
	}
	count := binary.BigEndian.Uint32(n[:4])
	if count > 16 {
		return nil, nil, fmt.Errorf("a frame of %d streams", count)
	}
	for range count {
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return nil, nil, err
		}
		size := binary.BigEndian.Uint64(n[:])
		if size > maxFrame {
			return nil, nil, fmt.Errorf("a stream of %d bytes", size)
		}
		s := make([]byte, size)
		if _, err := io.ReadFull(r, s); err != nil {
			return nil, nil, err
		}
		streams = append(streams, s)
	}
	return header, streams, nil
}

// tail logs a worker's output (its prints, its tracebacks) line by line
// and keeps the last line, which says why a worker did not start or died.
type tail struct {
	prefix string
	mu     sync.Mutex
	buf    []byte
	lastLn string
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 1<<16 && bytes.IndexByte(t.buf, '\n') < 0 {
		t.buf = append(t.buf, '\n') // a line that never ends is logged in pieces
	}
	for {
		i := bytes.IndexByte(t.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(t.buf[:i]), "\r")
		t.buf = t.buf[i+1:]
		if strings.TrimSpace(line) != "" {
			t.lastLn = line
			log.Print(t.prefix, line)
		}
	}
	return len(p), nil
}

func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := strings.TrimSpace(string(t.buf)); s != "" {
		return s
	}
	return t.lastLn
}
