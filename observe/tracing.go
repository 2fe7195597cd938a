package observe

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing configures the OpenTelemetry traces a server exports
// (fletch.yaml server.tracing, docs/OPERATIONS.md "Traces").
type Tracing struct {
	// Endpoint is the OTLP receiver's URL: http:// is plaintext, https://
	// TLS. With Protocol "http" a URL without a path posts to /v1/traces.
	Endpoint string
	// Protocol is "grpc" ("" too) or "http".
	Protocol string
	// SampleRatio is the fraction of queries traced when the caller's
	// traceparent does not decide (a sampled parent is always traced).
	SampleRatio float64
	// ServiceName and Version name the server in the spans' resource.
	ServiceName, Version string
}

// NewTracerProvider is a tracer provider exporting to t.Endpoint in
// batches, in the background: a receiver that is slow or down costs
// dropped spans, never a query's time. Shut it down to send what it holds.
func NewTracerProvider(ctx context.Context, t Tracing) (*sdktrace.TracerProvider, error) {
	exp, err := newExporter(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("server.tracing: %w", err)
	}
	return ExportingProvider(exp, t), nil
}

// ExportingProvider is NewTracerProvider's provider over any exporter
// (t.Endpoint and t.Protocol unused).
func ExportingProvider(exp sdktrace.SpanExporter, t Tracing) *sdktrace.TracerProvider {
	name := t.ServiceName
	if name == "" {
		name = "fletch"
	}
	res := resource.NewSchemaless(attribute.String("service.name", name), attribute.String("service.version", t.Version))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(Sampler(t.SampleRatio)),
	)
}

// Sampler follows the caller's sampling decision (its traceparent's flag)
// and samples ratio of the queries that come without one.
func Sampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

func newExporter(ctx context.Context, t Tracing) (*otlptrace.Exporter, error) {
	switch t.Protocol {
	case "", "grpc":
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(t.Endpoint))
	case "http":
		endpoint := t.Endpoint
		if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
			u.Path = "/v1/traces"
			endpoint = u.String()
		}
		return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	}
	return nil, fmt.Errorf("unknown protocol %q: want grpc or http", t.Protocol)
}
