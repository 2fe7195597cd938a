package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-engine/fletch/operators"
	"github.com/fletch-engine/fletch/stores/redis"
)

// shutdownOutputs are the user features each call of TestShutdownUnderLoad
// asks for, and their names in the offline log and the online store.
var shutdownOutputs = []struct{ output, feature string }{
	{"full_name", "full_name"},
	{"email", "email"},
	{"review_count[30d]", "review_count__2592000__"},
	{"average_rating_given", "average_rating_given"},
	{"total_spend[90d]", "total_spend__7776000__"},
}

// shutdownCached are the outputs the calls give a staleness: written back
// to the online store.
var shutdownCached = []int{0, 2, 4}

// shutdownCall is one native query of the load and its answer.
type shutdownCall struct {
	trace      string
	now        time.Time // the query's now: when its values are observed
	ids        []string
	start, end time.Time
	err        error
	types      []arrow.DataType // per output
	rows       [][]any          // per id: the outputs, then their hit flags
}

// TestShutdownUnderLoad serves the marketplace from DuckDB with Redis as
// the online store and a DuckDB offline log, keeps 8 clients querying, and
// sends SIGTERM while their calls run: every call started before it gets
// its whole answer, the server exits 0 well within --grace, and afterwards
// every value answered is in the offline log under its call's trace id,
// and every computed value of a cached feature is in Redis, from the last
// call that computed it.
//
// Each call has a now of its own, a minute after the previous call's, and
// a staleness of a second for the cached features: no call is answered
// from the store, so each writes back all its rows, and the value Redis
// keeps for a user is the one observed last — a write-back lost at
// shutdown leaves an older one. The server reaches Redis through a link
// that delays each request by 100ms, as a distant Redis would: on loopback
// the last write-backs land within microseconds, before the server closes
// its store even if nothing waited for them.
func TestShutdownUnderLoad(t *testing.T) {
	redisAddr := requireService(t, "FLETCH_TEST_REDIS")
	dir := t.TempDir()
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	data, logPath := filepath.Join(dir, "marketplace.duckdb"), filepath.Join(dir, "log.duckdb")
	generateDuckDB(t, data)
	prefix := fmt.Sprintf("fletch_it_shutdown_%d:", time.Now().UnixNano())
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %q\n"+
		"offline_store:\n  kind: duckdb\n  path: %q\n  table: feature_log\n"+
		"online_store:\n  kind: redis\n  addr: %s\n  prefix: %q\n", data, logPath, slowLink(t, redisAddr, 100*time.Millisecond), prefix)
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// The calls in flight end within a second; the write-backs queued
	// behind the slow link then take a few more. The server must be gone
	// well before the grace period, which only bounds the calls.
	const grace = 20 * time.Second
	srv := startServeProcess(t, dir, []string{"--grace", grace.String()})

	const clients, batch, users = 8, 50, 1000
	base := time.Now().UTC().Truncate(time.Second).Add(-24 * time.Hour)
	var (
		stopping atomic.Bool  // set just before SIGTERM: no call starts after it
		next     atomic.Int64 // numbers the calls
		mu       sync.Mutex
		calls    []*shutdownCall
		wg       sync.WaitGroup
	)
	for range clients {
		cl, err := flight.NewClientWithMiddleware(srv.addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopping.Load() {
				k := next.Add(1)
				c := &shutdownCall{trace: fmt.Sprintf("shutdown-%d", k), now: base.Add(time.Duration(k) * time.Minute)}
				for i := range batch {
					c.ids = append(c.ids, strconv.Itoa(int((k*batch+int64(i))%users)+1))
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				c.start = time.Now()
				c.err = c.run(cl)
				c.end = time.Now()
				if c.err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(time.Second)
	stopping.Store(true)
	sigterm := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	select {
	case <-srv.exited:
	case <-time.After(grace):
		t.Fatalf("fletch serve still runs %s after SIGTERM:\n%s", grace, srv.log.String())
	}
	exit := time.Since(sigterm)
	if srv.waitErr != nil {
		t.Fatalf("fletch serve exited after SIGTERM with %v:\n%s\n%s", srv.waitErr, srv.log.String(), srv.stderr.String())
	}
	inFlight := 0
	for _, c := range calls {
		if c.err != nil {
			t.Errorf("call %s (started %v before SIGTERM): %v", c.trace, sigterm.Sub(c.start), c.err)
		} else if c.end.After(sigterm) {
			inFlight++
		}
	}
	t.Logf("%d calls, %d of them answered after SIGTERM; the server exited %v after it:\n%s", len(calls), inFlight, exit.Round(time.Millisecond), srv.log.String())
	if t.Failed() {
		t.FailNow()
	}
	if inFlight == 0 {
		t.Fatal("no call was in flight when SIGTERM came: the test shows nothing")
	}
	for _, c := range calls {
		for r, row := range c.rows {
			for j := range shutdownOutputs {
				if hit := row[len(shutdownOutputs)+j]; hit != false {
					t.Fatalf("call %s: %s of user %s served from the online store (hit %v): each call should compute all", c.trace, shutdownOutputs[j].output, c.ids[r], hit)
				}
			}
		}
	}
	checkShutdownLog(t, logPath, calls)
	checkShutdownRedis(t, prefix, calls)
}

// slowLink forwards connections to target, holding each chunk a client
// sends for delay, until the test ends; it returns its address.
func slowLink(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go io.Copy(c, s)
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						time.Sleep(delay)
						if _, err := s.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						s.Close()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// run sends c as one native query (a DoExchange) and reads its answer.
func (c *shutdownCall) run(cl flight.Client) error {
	q := map[string]any{
		"class":     "user",
		"now":       c.now.Format(time.RFC3339Nano),
		"staleness": map[string]string{},
		"meta":      true,
	}
	var outputs []string
	for _, o := range shutdownOutputs {
		outputs = append(outputs, o.output)
	}
	for _, j := range shutdownCached {
		q["staleness"].(map[string]string)["user."+shutdownOutputs[j].feature] = "1s"
	}
	q["outputs"] = outputs
	cmd, err := json.Marshal(map[string]any{"query": q})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), traceHeader, c.trace))
	defer cancel()
	stream, err := cl.DoExchange(ctx)
	if err != nil {
		return err
	}
	mem := memory.DefaultAllocator
	b := array.NewStringBuilder(mem)
	b.AppendValues(c.ids, nil)
	ids := b.NewArray()
	b.Release()
	defer ids.Release()
	in := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), []arrow.Array{ids}, int64(len(c.ids)))
	defer in.Release()
	w := flight.NewRecordWriter(stream, ipc.WithSchema(in.Schema()))
	w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err := w.Write(in); err != nil {
		return fmt.Errorf("sending the inputs: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	rdr, err := flight.NewRecordReader(stream)
	if err != nil {
		return err
	}
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make([]any, rec.NumCols())
			for j, col := range rec.Columns() {
				row[j] = operators.GoValue(col, i)
			}
			c.rows = append(c.rows, row)
		}
	}
	if err := rdr.Err(); err != nil {
		return err
	}
	if len(c.rows) != len(c.ids) {
		return fmt.Errorf("%d rows answered for %d ids", len(c.rows), len(c.ids))
	}
	header, err := stream.Header()
	if err != nil {
		return err
	}
	if got := header.Get(traceHeader); len(got) != 1 || got[0] != c.trace {
		return fmt.Errorf("response header %s = %q, want %q", traceHeader, got, c.trace)
	}
	for j := range shutdownOutputs {
		c.types = append(c.types, rdr.Schema().Field(j).Type)
	}
	return nil
}

// checkShutdownLog checks that every cell the calls answered is in the
// offline log once, under its call's trace id, observed at the call's now,
// and that the log holds no other trace.
func checkShutdownLog(t *testing.T, path string, calls []*shutdownCall) {
	t.Helper()
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := readLog(t, db, "CAST(value AS VARCHAR)")
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 8 {
			t.Errorf(format, args...)
		}
	}
	for _, c := range calls {
		for r, id := range c.ids {
			for j, o := range shutdownOutputs {
				k := logCell{c.trace, "user", id, "user." + o.feature}
				l := log[k]
				answered := c.rows[r][j]
				switch {
				case l == nil:
					report("call %s: %s of user %s answered %v, not in the offline log", c.trace, o.feature, id, answered)
				case len(l.values) != 1:
					report("call %s: %s of user %s logged %d times: %v", c.trace, o.feature, id, len(l.values), l.values)
				case !matches(l.values[0], answered):
					report("call %s: %s of user %s logged %v, answered %v", c.trace, o.feature, id, l.values[0], answered)
				case !l.observed.Equal(c.now):
					report("call %s: %s of user %s logged as observed at %v, the call's now is %v", c.trace, o.feature, id, l.observed, c.now)
				}
			}
		}
	}
	if bad > 8 {
		t.Errorf("%d answered cells are not in the offline log as answered", bad)
	}
	traces := map[string]bool{}
	for _, c := range calls {
		traces[c.trace] = true
	}
	for k := range log {
		if !traces[k.trace] {
			t.Errorf("the offline log holds %v, under a trace id no call had", k)
			break
		}
	}
}

// checkShutdownRedis checks that Redis holds, for every user the calls
// answered, each cached feature as the last call that computed it (the
// latest now) answered it, observed at that call's now.
func checkShutdownRedis(t *testing.T, prefix string, calls []*shutdownCall) {
	t.Helper()
	type last struct {
		call *shutdownCall
		row  int
	}
	latest := map[string]last{}
	for _, c := range calls {
		for r, id := range c.ids {
			if l, ok := latest[id]; !ok || c.now.After(l.call.now) {
				latest[id] = last{c, r}
			}
		}
	}
	ctx := context.Background()
	store, err := redis.Open(ctx, redis.Options{Addrs: []string{requireService(t, "FLETCH_TEST_REDIS")}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	mem := memory.DefaultAllocator
	b := array.NewStringBuilder(mem)
	b.AppendValues(ids, nil)
	keys := b.NewArray()
	b.Release()
	defer keys.Release()
	var fields []arrow.Field
	for _, j := range shutdownCached {
		fields = append(fields, arrow.Field{Name: shutdownOutputs[j].feature, Type: calls[0].types[j], Nullable: true})
	}
	got, err := store.Get(ctx, mem, "user", keys, arrow.NewSchema(fields, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	var lost []string
	for i, id := range ids {
		l := latest[id]
		for f, j := range shutdownCached {
			obs := got.Observed[f].(*array.Timestamp)
			name := shutdownOutputs[j].feature
			switch {
			case obs.IsNull(i):
				lost = append(lost, fmt.Sprintf("%s of user %s: not stored (last computed by %s)", name, id, l.call.trace))
			case !obs.Value(i).ToTime(arrow.Microsecond).Equal(l.call.now):
				lost = append(lost, fmt.Sprintf("%s of user %s: stored as observed at %v, last computed by %s at %v", name, id, obs.Value(i).ToTime(arrow.Microsecond), l.call.trace, l.call.now))
			case !matches(operators.GoValue(got.Values.Column(f), i), l.call.rows[l.row][j]):
				lost = append(lost, fmt.Sprintf("%s of user %s: stored %v, %s answered %v", name, id, operators.GoValue(got.Values.Column(f), i), l.call.trace, l.call.rows[l.row][j]))
			}
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d write-backs of %d users did not reach Redis, e.g.:\n%s", len(lost), len(ids), strings.Join(lost[:min(len(lost), 8)], "\n"))
	}
}
