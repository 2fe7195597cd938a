package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// otlpCollector is an OTLP/gRPC trace receiver keeping the names of the
// spans it was sent, by trace id, and the services that sent them.
type otlpCollector struct {
	coltrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    map[string][]string
	services map[string]bool
}

func (c *otlpCollector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.services[a.Value.GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				id := hex.EncodeToString(sp.TraceId)
				c.spans[id] = append(c.spans[id], sp.Name)
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func (c *otlpCollector) trace(id string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans[id])
}

// TestServeExportsTraces serves the marketplace with server.tracing
// pointing at an OTLP receiver started here: a SQL query sent with a W3C
// traceparent is answered as DuckDB answers it, its trace id comes back in
// x-fletch-trace-id, and the receiver gets the query's spans (the call, its
// parse, plan, run and the resolver fetches) in that trace, from the
// configured service.
func TestServeExportsTraces(t *testing.T) {
	col := &otlpCollector{spans: map[string][]string{}, services: map[string]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(gs, col)
	go gs.Serve(lis)
	defer gs.Stop()

	dir := t.TempDir()
	copyRepo(t, filepath.Join(demoDir, "marketplace"), dir)
	data := filepath.Join(dir, "marketplace.duckdb")
	generateDuckDB(t, data)
	yaml := fmt.Sprintf("sources:\n  marketplace:\n    kind: duckdb\n    path: %q\nserver:\n  tracing:\n    otlp_endpoint: http://%s\n    service_name: shop-features\n", data, lis.Addr())
	if err := os.WriteFile(filepath.Join(dir, "fletch.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServeProcess(t, dir, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cl := dial(t, srv.addr, mem)

	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	info, err := cl.Execute(ctx, `SELECT id, full_name, average_rating_given FROM user WHERE id IN ('50', '1') AND __as_of__ = '`+anchor.Format(time.RFC3339)+`'`)
	if err != nil {
		t.Fatal(err)
	}
	var header metadata.MD
	_, got := fetch(t, ctx, cl, info, grpc.Header(&header))
	want := referenceRows(t, `WITH s(i, id) AS (VALUES (0, '50'), (1, '1'))
		SELECT s.id, u.first_name || ' ' || u.last_name,
			(SELECT avg(r.star_rating) FROM marketplace_reviews r WHERE r.user_hid = s.id AND r.created_at <= `+sqlTime(anchor)+`)
		FROM s LEFT JOIN marketplace_users u ON u.hid = s.id AND u.created_at <= `+sqlTime(anchor)+` ORDER BY s.i`)
	compareRows(t, []string{"id", "full_name", "average_rating_given"}, got, want)
	if h := header.Get("x-fletch-trace-id"); len(h) != 1 || h[0] != traceID {
		t.Errorf("x-fletch-trace-id %q, want the traceparent's %s", h, traceID)
	}

	// The batcher sends within 5 s.
	deadline := time.Now().Add(20 * time.Second)
	var spans []string
	for ; time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if spans = col.trace(traceID); slices.Contains(spans, "query sql") {
			break
		}
	}
	joined := strings.Join(spans, ", ")
	for _, name := range []string{"query sql", "run", "frame", "fetch users [source marketplace]", "fetch reviews [source marketplace]", "has-many"} {
		if !slices.Contains(spans, name) {
			t.Errorf("no span %q in the trace: %s\n%s", name, joined, srv.log.String())
		}
	}
	col.mu.Lock()
	if !col.services["shop-features"] {
		t.Errorf("services %v, want shop-features", col.services)
	}
	col.mu.Unlock()
}
