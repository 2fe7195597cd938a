package flight

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/planner"
	"github.com/fletch-engine/fletch/stores/offline"
)

const (
	w3cID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	w3cParent = "00-" + w3cID + "-00f067aa0ba902b7-01"
)

func TestRequestTraceID(t *testing.T) {
	long := strings.Repeat("a", MaxTraceID+1)
	for _, tt := range []struct {
		name string
		md   metadata.MD // nil: no metadata on the context at all
		want string
		err  string // part of the InvalidArgument message; "" is no error
	}{
		{name: "no metadata"},
		{name: "absent", md: metadata.Pairs("authorization", "Bearer x")},
		{name: "x-fletch-trace-id", md: metadata.Pairs(TraceHeader, "req-42"), want: "req-42"},
		{name: "x-fletch-trace-id, upper-case key", md: metadata.MD{"X-Fletch-Trace-Id": {"req-42"}}, want: "req-42"},
		{name: "x-fletch-trace-id repeated: the first", md: metadata.Pairs(TraceHeader, "one", TraceHeader, "two"), want: "one"},
		{name: "x-fletch-trace-id empty", md: metadata.Pairs(TraceHeader, "")},
		{name: "x-fletch-trace-id of MaxTraceID bytes", md: metadata.Pairs(TraceHeader, long[1:]), want: long[1:]},
		{name: "x-fletch-trace-id too long", md: metadata.Pairs(TraceHeader, long), err: "is 129 bytes long; at most 128"},
		{name: "x-fletch-trace-id not ASCII", md: metadata.Pairs(TraceHeader, "caf\xc3\xa9"), err: "byte 0xc3 at offset 3"},
		{name: "x-fletch-trace-id with a control byte", md: metadata.Pairs(TraceHeader, "a\tb"), err: "byte 0x09 at offset 1"},
		{name: "traceparent", md: metadata.Pairs("traceparent", w3cParent), want: w3cID},
		{name: "traceparent of a later version with more fields", md: metadata.Pairs("traceparent", "01-"+w3cID+"-00f067aa0ba902b7-01-extra"), want: w3cID},
		{name: "both: x-fletch-trace-id wins", md: metadata.Pairs("traceparent", w3cParent, TraceHeader, "req-42"), want: "req-42"},
		{name: "both, x-fletch-trace-id empty", md: metadata.Pairs("traceparent", w3cParent, TraceHeader, ""), want: w3cID},
		{name: "traceparent upper-case hex", md: metadata.Pairs("traceparent", strings.ToUpper(w3cParent))},
		{name: "traceparent version ff", md: metadata.Pairs("traceparent", "ff"+w3cParent[2:])},
		{name: "traceparent version 00 with more fields", md: metadata.Pairs("traceparent", w3cParent+"-extra")},
		{name: "traceparent later version, no dash after flags", md: metadata.Pairs("traceparent", "01"+w3cParent[2:]+"x")},
		{name: "traceparent zero trace id", md: metadata.Pairs("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")},
		{name: "traceparent zero parent id", md: metadata.Pairs("traceparent", "00-"+w3cID+"-0000000000000000-01")},
		{name: "traceparent short", md: metadata.Pairs("traceparent", "00-"+w3cID[:31]+"-00f067aa0ba902b7-01")},
		{name: "traceparent misplaced dash", md: metadata.Pairs("traceparent", "00-"+w3cID+"0-0f067aa0ba902b7-01")},
		{name: "traceparent non-hex", md: metadata.Pairs("traceparent", "00-"+w3cID[:31]+"g-00f067aa0ba902b7-01")},
		{name: "traceparent twice", md: metadata.Pairs("traceparent", w3cParent, "traceparent", w3cParent)},
		{name: "traceparent garbage", md: metadata.Pairs("traceparent", "hello")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tt.md)
			}
			got, err := requestTraceID(ctx)
			if tt.err != "" {
				if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.err) || !strings.Contains(st.Message(), TraceHeader) {
					t.Fatalf("error %v, want InvalidArgument naming %s and saying %q", err, TraceHeader, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("requestTraceID = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestRequestTraceIDAllocs holds the hot path to its promise: a request
// naming no trace costs no allocation.
func TestRequestTraceIDAllocs(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer x", "user-agent", "grpc-go"))
	if n := testing.AllocsPerRun(100, func() { _, _ = requestTraceID(ctx) }); n != 0 {
		t.Errorf("%v allocations reading an absent trace id", n)
	}
}

// TestTraceIDInOfflineLog runs each query path of a server with an
// offline log (DuckDB) over a real connection, and reads the log: each
// request's rows carry the trace id it named, or the one echoed to it.
func TestTraceIDInOfflineLog(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	db := marketplaceDB(t)
	sink, err := offline.OpenDuckDB(context.Background(), db.DB(), "feature_log")
	if err != nil {
		t.Fatal(err)
	}
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem, planner.WithOfflineLog(offline.NewLogger(sink, offline.Options{})))
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow }}))

	// Each case asks for keys no other case asks for; full_name logs
	// first_name, last_name and full_name.
	const names = "user.first_name,user.full_name,user.last_name"
	for _, tt := range []struct {
		name   string
		md     []string
		keys   []string
		run    func(ctx context.Context, keys []string) (header metadata.MD, err error)
		want   string // "" is the id echoed in the header
		logged string // the features logged for each key
	}{
		{"statement", []string{TraceHeader, "req-statement"}, []string{"u1", "u2"}, statementRun(cl), "req-statement", names},
		{"statement without a trace id", nil, []string{"u3"}, statementRun(cl), "", names},
		{"prepared, traceparent", []string{"traceparent", w3cParent}, []string{"u4", "u5", "u6"}, preparedRun(cl, mem), w3cID, names},
		{"substrait, both headers", []string{"traceparent", w3cParent, TraceHeader, "req-substrait"}, []string{"u7"}, substraitRun(t, cl), "req-substrait", "user.first_name,user.last_name"},
		{"native", []string{TraceHeader, "req-native"}, []string{"u8", "u9"}, nativeRun(cl, mem), "req-native", names},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(), tt.md...)
			header, err := tt.run(ctx, tt.keys)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if header != nil {
				echoed := header.Get(TraceHeader)
				if len(echoed) != 1 || echoed[0] == "" || (want != "" && echoed[0] != want) {
					t.Fatalf("response header %s = %q, want %q", TraceHeader, echoed, want)
				}
				want = echoed[0]
			}
			engine.Flush()
			rows, err := db.DB().Query(`SELECT entity_key || ':' || string_agg(feature, ',' ORDER BY feature) FROM feature_log WHERE trace_id = ? GROUP BY entity_key ORDER BY entity_key`, want)
			if err != nil {
				t.Fatal(err)
			}
			var got, exp []string
			for _, r := range markettest.Rows(t, rows) {
				got = append(got, r[0].(string))
			}
			for _, k := range tt.keys {
				exp = append(exp, k+":"+tt.logged)
			}
			if strings.Join(got, " ") != strings.Join(exp, " ") {
				t.Errorf("logged under %q:\n got %s\nwant %s", want, got, exp)
			}
		})
	}

	// An id that cannot be logged fails the query, whatever its path.
	ctx := metadata.AppendToOutgoingContext(context.Background(), TraceHeader, strings.Repeat("x", MaxTraceID+1))
	for name, run := range map[string]func(context.Context, []string) (metadata.MD, error){
		"statement": statementRun(cl), "prepared": preparedRun(cl, mem), "native": nativeRun(cl, mem),
	} {
		if _, err := run(ctx, []string{"u10"}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), TraceHeader) {
			t.Errorf("%s with a too long trace id: %v, want InvalidArgument naming %s", name, err, TraceHeader)
		}
	}
}

// readHeader reads every endpoint of info and returns the response header.
func readHeader(ctx context.Context, cl *flightsql.Client, info *arrowflight.FlightInfo, err error) (metadata.MD, error) {
	if err != nil {
		return nil, err
	}
	var header metadata.MD
	for _, ep := range info.Endpoint {
		rdr, err := cl.DoGet(ctx, ep.Ticket, grpc.Header(&header))
		if err != nil {
			return nil, err
		}
		for rdr.Next() {
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			return nil, err
		}
	}
	return header, nil
}

func inList(keys []string) string { return "('" + strings.Join(keys, "', '") + "')" }

func statementRun(cl *flightsql.Client) func(context.Context, []string) (metadata.MD, error) {
	return func(ctx context.Context, keys []string) (metadata.MD, error) {
		info, err := cl.Execute(ctx, `SELECT full_name FROM user WHERE id IN `+inList(keys))
		return readHeader(ctx, cl, info, err)
	}
}

// preparedRun binds the keys in two parameter batches: one request, one
// trace id for both runs.
func preparedRun(cl *flightsql.Client, mem memory.Allocator) func(context.Context, []string) (metadata.MD, error) {
	return func(ctx context.Context, keys []string) (metadata.MD, error) {
		stmt, err := cl.Prepare(ctx, `SELECT full_name FROM user WHERE id = ?`)
		if err != nil {
			return nil, err
		}
		defer stmt.Close(ctx)
		half := (len(keys) + 1) / 2
		b1, b2 := stringBatch(mem, "id", keys[:half]...), stringBatch(mem, "id", keys[half:]...)
		defer b1.Release()
		defer b2.Release()
		rdr, err := array.NewRecordReader(b1.Schema(), []arrow.RecordBatch{b1, b2})
		if err != nil {
			return nil, err
		}
		defer rdr.Release()
		stmt.SetRecordReader(rdr)
		info, err := stmt.Execute(ctx)
		return readHeader(ctx, cl, info, err)
	}
}

func substraitRun(t *testing.T, cl *flightsql.Client) func(context.Context, []string) (metadata.MD, error) {
	return func(ctx context.Context, keys []string) (metadata.MD, error) {
		var opts []string
		for _, k := range keys {
			opts = append(opts, strLit(k))
		}
		plan := substraitPlan(t, userPlan(equalFn, `{"singularOrList": {"value": `+idField+`, "options": [`+strings.Join(opts, ", ")+`]}}`))
		info, err := cl.ExecuteSubstrait(ctx, plan)
		return readHeader(ctx, cl, info, err)
	}
}

// nativeRun checks the log, not the echo: native reads the answer for the
// caller, whose header is nil here.
func nativeRun(cl *flightsql.Client, mem memory.Allocator) func(context.Context, []string) (metadata.MD, error) {
	return func(ctx context.Context, keys []string) (metadata.MD, error) {
		in := stringBatch(mem, "user.id", keys...)
		defer in.Release()
		a, err := exchange(ctx, mem, cl, `{"query": {"outputs": ["full_name"]}}`, in.Schema(), in)
		if err != nil {
			return nil, err
		}
		a.release()
		return nil, nil
	}
}

// TestTraceIDWithoutOfflineLog: without an offline log the id still
// names the query's log lines, so it is read (a bad one is refused, as
// with a log) and echoed.
func TestTraceIDWithoutOfflineLog(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	srv, _ := e2eServer(t, mem)
	cl := serve(t, srv)
	ctx := metadata.AppendToOutgoingContext(context.Background(), TraceHeader, "req-7")
	header, err := statementRun(cl)(ctx, []string{"u1"})
	if err != nil || strings.Join(header.Get(TraceHeader), ",") != "req-7" {
		t.Errorf("header %v, %v; want %s: req-7", header, err, TraceHeader)
	}
	ctx = metadata.AppendToOutgoingContext(context.Background(), TraceHeader, strings.Repeat("x", MaxTraceID+1))
	if _, err := statementRun(cl)(ctx, []string{"u1"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a too long trace id: %v, want InvalidArgument", err)
	}
}
