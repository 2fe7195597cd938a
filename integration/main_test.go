package integration

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/fletch-engine/fletch/examples/marketplace"
	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
)

// The demo server every test talks to, started once by TestMain.
var (
	bin     string    // the built fletch binary
	workDir string    // scratch folder of the whole run
	demoDir string    // `fletch demo --dir`
	addr    string    // host:port the demo serves on
	anchor  time.Time // the demo data's "now" (its log says the day)
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run exists so the deferred cleanup (stopping the demo, removing the
// scratch folder) runs before os.Exit.
func run(m *testing.M) int {
	var err error
	workDir, err = os.MkdirTemp("", "fletch-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	bin = filepath.Join(workDir, "fletch")
	build := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", bin, "../cmd/fletch")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building fletch: %v\n%s", err, out)
		return 1
	}
	demoDir = filepath.Join(workDir, "demo")
	stop, err := startDemo()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// freePort returns a port nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var demoDay = regexp.MustCompile(`events up to (\d{4}-\d{2}-\d{2})`)

// startDemo runs `fletch demo` and waits until it logs "serving" and its
// port accepts connections. stop ends it (SIGTERM, then SIGKILL).
func startDemo() (stop func(), err error) {
	addr, err = freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "demo", "--dir", demoDir, "--listen", addr)
	// The demo dies with this process even if a test panics past TestMain's
	// deferred stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var log lockedBuffer
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if strings.Contains(line, "serving") {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
		close(exited)
	}()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	fail := func(why string) (func(), error) {
		stop()
		return nil, fmt.Errorf("fletch demo %s\nstdout:\n%s\nstderr:\n%s", why, log.String(), stderr.String())
	}
	select {
	case <-ready:
	case <-exited:
		return fail("exited before serving")
	case <-time.After(60 * time.Second):
		return fail("did not log \"serving\" within 60s")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fail("logged \"serving\" but " + addr + " refuses connections")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := demoDay.FindStringSubmatch(log.String())
	if m == nil {
		return fail("did not say which day its data ends on")
	}
	if anchor, err = time.Parse("2006-01-02", m[1]); err != nil {
		return fail(err.Error())
	}
	return stop, nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fletch runs the binary with args and returns its stdout, stderr and
// exit error.
func fletch(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

var (
	refOnce sync.Once
	refDB   *sql.DB
	refErr  error
)

// reference is the database the expected values are computed on: the
// demo's own file opened read-only when DuckDB lets a second process in,
// else the same data generated here (deterministic for the same anchor).
func reference(t *testing.T) *sql.DB {
	t.Helper()
	refOnce.Do(func() {
		path := filepath.Join(demoDir, "marketplace.duckdb")
		db, err := sql.Open("duckdb", path+"?access_mode=read_only")
		if err == nil {
			err = db.Ping()
		}
		if err == nil {
			refDB = db
			return
		}
		if db != nil {
			db.Close()
		}
		fmt.Fprintf(os.Stderr, "integration: the demo's database cannot be opened beside the server (%v); generating the same data in memory\n", err)
		if refDB, refErr = sql.Open("duckdb", ""); refErr != nil {
			return
		}
		refDB.SetMaxOpenConns(1) // one in-memory database, one connection
		refErr = marketplace.Generate(context.Background(), refDB, marketplace.Options{Anchor: anchor})
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refDB
}

// referenceRows runs query and returns its rows as Go values.
func referenceRows(t *testing.T, query string, args ...any) [][]any {
	t.Helper()
	rows, err := reference(t).Query(query, args...)
	if err != nil {
		t.Fatalf("reference query: %v\n%s", err, query)
	}
	return markettest.Rows(t, rows)
}

// sqlTime is t as a DuckDB TIMESTAMPTZ literal.
func sqlTime(t time.Time) string {
	return "TIMESTAMPTZ '" + t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") + "'"
}

// generateDuckDB generates the marketplace data (at anchor) into a DuckDB
// file at path.
func generateDuckDB(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	err = marketplace.Generate(context.Background(), db, marketplace.Options{Anchor: anchor})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
}
