package flight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/fletch-engine/fletch/examples/marketplace/markettest"
	"github.com/fletch-engine/fletch/planner"
)

// TestTracedQuery serves the marketplace with tracing on (an in-memory
// exporter) and runs a SQL query whose users have reviews (a has-many):
// the spans form the query's tree — the call, the run
// and its stages (the frames, each resolver's fetch, the has-many) — all
// in the trace the caller's traceparent names (parse and plan spans when
// DoGet parsed and planned: not when its GetFlightInfo had, the caches
// answering), which is also the trace id
// echoed to the caller and written on the query's log line. The answer is
// checked against DuckDB. Without a traceparent the trace is a new one,
// and the echoed and logged id is still the span's; a query the sampler
// drops exports nothing and still gets a W3C trace id.
func TestTracedQuery(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	logged := captureLog(t)

	exp := tracetest.NewInMemoryExporter()
	ratio := 1.0
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(ratioSampler{&ratio})))
	defer tp.Shutdown(context.Background())
	db := marketplaceDB(t)
	engine := planner.NewEngine(marketplace(t), sources{"marketplace": db}, mem, planner.WithTracerProvider(tp))
	cl := serve(t, NewServer(engine, Options{Mem: mem, Expressions: pyExprs(engine.Graph()), Now: func() time.Time { return e2eNow }, TracerProvider: tp}))

	// The reference: the same rows computed by DuckDB (the mean of the
	// reviews a user wrote up to the query's time).
	rows, err := db.DB().Query(`SELECT k.hid, u.first_name || ' ' || u.last_name,
		(SELECT avg(r.star_rating) FROM marketplace_reviews r WHERE r.user_hid = k.hid AND r.created_at <= ?)
		FROM (VALUES (0, 'u5'), (1, 'u1'), (2, 'nobody')) k(ord, hid) LEFT JOIN marketplace_users u ON u.hid = k.hid AND u.created_at <= ? ORDER BY k.ord`, e2eNow, e2eNow)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range markettest.Rows(t, rows) {
		var cells []string
		for _, c := range r {
			if c == nil {
				cells = append(cells, "(null)")
			} else {
				cells = append(cells, fmt.Sprint(c))
			}
		}
		want = append(want, strings.Join(cells, "|"))
	}
	query := func(md ...string) (echoed string) {
		t.Helper()
		exp.Reset()
		logged.Reset()
		ctx := metadata.AppendToOutgoingContext(context.Background(), md...)
		info, err := cl.Execute(ctx, `SELECT id, full_name, average_rating_given FROM user WHERE id IN ('u5', 'u1', 'nobody')`)
		if err != nil {
			t.Fatal(err)
		}
		var header metadata.MD
		rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket, grpc.Header(&header))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rdr.Next() {
			got = append(got, resultRows([]arrow.RecordBatch{rdr.RecordBatch()})...)
		}
		if err := rdr.Err(); err != nil {
			t.Fatal(err)
		}
		rdr.Release()
		compareRows(t, got, want)
		if h := header.Get(TraceHeader); len(h) == 1 {
			echoed = h[0]
		}
		return echoed
	}

	// Under the caller's trace.
	echoed := query("traceparent", w3cParent)
	if echoed != w3cID {
		t.Errorf("echoed trace id %q, want the traceparent's %s", echoed, w3cID)
	}
	spans := exp.GetSpans()
	tree := spanTree(spans)
	t.Logf("spans:\n%s", tree)
	for _, sp := range spans {
		if id := sp.SpanContext.TraceID().String(); id != w3cID {
			t.Errorf("span %q in trace %s, want %s", sp.Name, id, w3cID)
		}
	}
	root := spans[len(spans)-1] // the call's span ends last
	if root.Name != "query sql" || root.Parent.SpanID().String() != "00f067aa0ba902b7" || !root.Parent.IsRemote() {
		t.Errorf("root span %q with parent %s, want query sql under the traceparent's span:\n%s", root.Name, root.Parent.SpanID(), tree)
	}
	// GetFlightInfo read and planned the text; DoGet, traced, found both
	// in the caches: no span for either.
	if strings.Contains(tree, "query sql > parse sql\n") || strings.Contains(tree, "query sql > plan\n") {
		t.Errorf("DoGet of a text its GetFlightInfo planned: want no parse or plan span:\n%s", tree)
	}
	for _, want := range []string{
		"query sql > run", // the root frame's span: its stages nest in it
		"query sql > run > fetch users [source marketplace]",
		"query sql > run > fetch reviews [source marketplace]",
		"query sql > run > has-many review",
		"query sql > run > frame review",
	} {
		if !strings.Contains(tree, want+"\n") {
			t.Errorf("no span %s in the tree:\n%s", want, tree)
		}
	}
	if id := loggedTrace(t, logged); id != w3cID {
		t.Errorf("the query's log line names trace %q, want %s", id, w3cID)
	}

	// A ticket of a text the server never read: DoGet parses and plans
	// it, each a span.
	exp.Reset()
	tkt, err := statementTicket(ticketSQL, []byte(`SELECT full_name FROM user WHERE id = 'u5'`))
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(metadata.AppendToOutgoingContext(context.Background(), "traceparent", w3cParent), &arrowflight.Ticket{Ticket: tkt})
	if err != nil {
		t.Fatal(err)
	}
	for rdr.Next() {
	}
	rdr.Release()
	tree = spanTree(exp.GetSpans())
	for _, want := range []string{"query sql > parse sql", "query sql > plan", "query sql > run > fetch users [source marketplace]"} {
		if !strings.Contains(tree, want+"\n") {
			t.Errorf("DoGet of a new text: no span %s in the tree:\n%s", want, tree)
		}
	}

	// A new trace: its id is the one echoed and logged.
	echoed = query()
	spans = exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no spans without a traceparent")
	}
	if id := spans[0].SpanContext.TraceID().String(); echoed != id || loggedTrace(t, logged) != id {
		t.Errorf("span trace %s, echoed %q, logged %q: want one id", id, echoed, loggedTrace(t, logged))
	}

	// Not sampled: no span exported, a W3C trace id all the same.
	ratio = 0
	echoed = query()
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans of a query the sampler dropped", n)
	}
	if len(echoed) != 32 || echoed != loggedTrace(t, logged) {
		t.Errorf("unsampled query: echoed %q, logged %q; want one 32-hex-digit trace id", echoed, loggedTrace(t, logged))
	}
}

// ratioSampler samples *ratio of the traces: the test changes it between
// queries.
type ratioSampler struct{ ratio *float64 }

func (s ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.TraceIDRatioBased(*s.ratio).ShouldSample(p)
}

func (s ratioSampler) Description() string { return "ratioSampler" }

// spanTree prints each span as the path of names from its root, a line
// each, sorted; a frame or has-many stage is named with its class.
func spanTree(spans tracetest.SpanStubs) string {
	byID := map[string]tracetest.SpanStub{}
	for _, sp := range spans {
		byID[sp.SpanContext.SpanID().String()] = sp
	}
	name := func(sp tracetest.SpanStub) string {
		if sp.Name == "frame" || sp.Name == "has-many" {
			for _, a := range sp.Attributes {
				if a.Key == attribute.Key("fletch.class") {
					return sp.Name + " " + a.Value.AsString()
				}
			}
		}
		return sp.Name
	}
	var lines []string
	for _, sp := range spans {
		path := name(sp)
		for p, ok := byID[sp.Parent.SpanID().String()]; ok; p, ok = byID[p.Parent.SpanID().String()] {
			path = name(p) + " > " + path
		}
		lines = append(lines, path)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// loggedTrace is the trace_id of the "query" line of the log.
func loggedTrace(t *testing.T, logged *bytes.Buffer) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "query" {
			return fmt.Sprint(rec["trace_id"])
		}
	}
	t.Fatalf("no query line logged:\n%s", logged.String())
	return ""
}
