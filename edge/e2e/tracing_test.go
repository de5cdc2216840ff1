package e2e

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace/noop"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"natter/shared/config"
	"natter/shared/tracing"
)

// otlpSpan is one span an OTLP receiver got.
type otlpSpan struct {
	service, name, trace, id, parent string
}

// otlpReceiver is an in-process OTLP/HTTP trace endpoint (POST /v1/traces,
// protobuf), keeping every span it is sent.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []otlpSpan
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg coltrace.ExportTraceServiceRequest
	if err != nil || req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &msg) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.spans = append(r.spans, otlpSpan{service, s.Name, hex.EncodeToString(s.TraceId),
					hex.EncodeToString(s.SpanId), hex.EncodeToString(s.ParentSpanId)})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// TestTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, one msg.send through the edge
// is one trace: the edge's span, the function's under it (the context crossed NATS
// in the request headers), its SQL statements and its push under that, exported to
// an OTLP receiver.
func TestTracing(t *testing.T) {
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	stop, err := tracing.Setup(context.Background(), config.Tracing{Endpoint: srv.URL, SampleRatio: 1}, "natter-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	if !tracing.On() {
		t.Fatal("tracing.On() is false after Setup")
	}
	// The stack opens MySQL and Redis after Setup: they are wrapped.
	s := start(t)
	alice, bob := s.user(t, "tralice"), s.user(t, "trbob")
	a := s.device(t, alice, "a1")
	b := s.device(t, bob, "b1")
	befriend(t, a, b, bob.id)
	sendText(t, a, bob.id, "traced-1", "hello through every hop")
	nextMsg(t, b)

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stop(sctx); err != nil { // flushes the batcher
		t.Fatal(err)
	}
	rcv.mu.Lock()
	spans := append([]otlpSpan(nil), rcv.spans...)
	rcv.mu.Unlock()

	var edge otlpSpan
	for _, sp := range spans {
		if sp.name == "edge msg.send" {
			edge = sp
		}
	}
	if edge.trace == "" {
		t.Fatalf("no edge msg.send span among %d spans", len(spans))
	}
	var fn otlpSpan
	var sqlSpans, deliver int
	for _, sp := range spans {
		if sp.trace != edge.trace {
			continue
		}
		switch {
		case sp.name == "msg.send":
			fn = sp
		case strings.HasPrefix(sp.name, "sql."):
			sqlSpans++
		case sp.name == "deliver msg.new":
			deliver++
		}
		t.Logf("trace %s: %s (%s) parent %s", sp.trace[:8], sp.name, sp.service, sp.parent)
	}
	if fn.id == "" || fn.parent != edge.id {
		t.Errorf("the function's msg.send span %+v is not a child of the edge's %+v", fn, edge)
	}
	if sqlSpans == 0 {
		t.Error("no SQL span in the msg.send trace")
	}
	if deliver != 1 {
		t.Errorf("%d deliver msg.new spans in the trace, want 1", deliver)
	}
	for _, sp := range spans {
		if sp.trace == edge.trace && sp.name != "edge msg.send" && sp.parent == "" {
			t.Errorf("span %s in the trace has no parent", sp.name)
		}
	}
}
