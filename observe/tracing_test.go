package observe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP trace receiver: what it was sent, by span name and
// service name.
type collector struct {
	coltrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []string
	services []string
}

func (c *collector) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.services = append(c.services, a.Value.GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans = append(c.spans, sp.Name)
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// TestTracerProviderExports sends a span through NewTracerProvider to a
// real OTLP receiver, over each protocol: gRPC (the collector service) and
// HTTP (protobuf posted to /v1/traces).
func TestTracerProviderExports(t *testing.T) {
	col := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(gs, col)
	go gs.Serve(lis)
	defer gs.Stop()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		col.Export(r.Context(), &req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	defer hs.Close()

	for _, tt := range []struct{ protocol, endpoint string }{
		{"grpc", "http://" + lis.Addr().String()},
		{"http", hs.URL},
	} {
		ctx := context.Background()
		tp, err := NewTracerProvider(ctx, Tracing{Endpoint: tt.endpoint, Protocol: tt.protocol, SampleRatio: 1, ServiceName: "shop-" + tt.protocol})
		if err != nil {
			t.Fatal(err)
		}
		_, sp := tp.Tracer("test").Start(ctx, "query "+tt.protocol)
		sp.End()
		if err := tp.Shutdown(ctx); err != nil { // sends what the batcher holds
			t.Fatalf("%s: %v", tt.protocol, err)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if got := col.spans; len(got) != 2 || got[0] != "query grpc" || got[1] != "query http" {
		t.Errorf("received spans %q", got)
	}
	if got := col.services; len(got) != 2 || got[0] != "shop-grpc" || got[1] != "shop-http" {
		t.Errorf("received services %q", got)
	}
	if _, err := NewTracerProvider(context.Background(), Tracing{Endpoint: "http://x", Protocol: "zipkin"}); err == nil {
		t.Error("an unknown protocol was taken")
	}
}
