// Package tracing wires OpenTelemetry: spans from the edge through NATS (W3C trace
// context in the request headers) into each function, its SQL and Redis calls and
// its pushes, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set. Without
// it the global provider stays OpenTelemetry's no-op one: spans are not recorded,
// nothing is injected into headers, and SQL and Redis are not wrapped at all.
package tracing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"natter/shared/config"
)

// Setup installs a tracer provider exporting to c.Endpoint for service (the
// binary: natter-edge, natter-functions) as the global one, with the W3C trace
// context propagator. With no endpoint it does nothing. The returned function
// flushes and stops the exporter.
func Setup(ctx context.Context, c config.Tracing, service string) (func(context.Context) error, error) {
	if c.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(c.Endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// On reports whether Setup installed an exporting provider (what decides whether
// SQL and Redis clients are wrapped).
func On() bool {
	_, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	return ok
}

// tracer comes from the global provider, which forwards to whatever Setup
// installs later; fetching it once keeps the no-op path free of lookups.
var tracer = otel.Tracer("natter")

// Tracer is natter's tracer.
func Tracer() trace.Tracer { return tracer }

// Inject writes ctx's trace context into h (a NATS request's or push's headers).
func Inject(ctx context.Context, h nats.Header) {
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier(h))
}

// Extract returns ctx with the trace context h carries.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, headerCarrier(h))
}

// TraceID is ctx's trace id for logs, or "" outside a recorded trace.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

type headerCarrier nats.Header

func (h headerCarrier) Get(k string) string { return nats.Header(h).Get(k) }
func (h headerCarrier) Set(k, v string)     { nats.Header(h).Set(k, v) }
func (h headerCarrier) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}
