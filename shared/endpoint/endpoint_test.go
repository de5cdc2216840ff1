package endpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
	"natter/shared/wire"
)

type echoReq struct {
	Text string `json:"text"`
	N    int    `json:"n"`
}

func (r *echoReq) Validate() error {
	if r.N < 0 {
		return errors.New("n must not be negative")
	}
	return nil
}

type echoResp struct {
	Text string `json:"text"`
	User int64  `json:"user"`
	Req  string `json:"req"`
}

// TestAdapter runs the adapter through a real NATS server: decoding, validation,
// access, caller headers, error mapping and panics, all bound to real ops of the
// table (msg.send is a user op, account.register a public one).
func TestAdapter(t *testing.T) {
	e := testenv.Start(t)
	handler := func(_ context.Context, c endpoint.Caller, r echoReq) (echoResp, error) {
		switch r.Text {
		case "panic":
			panic("boom")
		case "forbidden":
			return echoResp{}, imerr.New(imerr.Forbidden, "not yours")
		case "db":
			return echoResp{}, errors.New("connection refused to 10.0.0.1:3306")
		}
		return echoResp{Text: r.Text, User: c.UserID, Req: c.RequestID}, nil
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{Timeout: time.Second},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler), endpoint.Handle("account.register", handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	user := endpoint.Caller{UserID: 7, RequestID: "r-1"}

	tests := []struct {
		name    string
		op      string
		c       endpoint.Caller
		data    string
		want    imerr.Code
		message string // part of the client-visible message
	}{
		{"ok", "msg.send", user, `{"text":"hi"}`, "", ""},
		{"empty body", "msg.send", user, ``, "", ""},
		{"malformed JSON", "msg.send", user, `{"text":`, imerr.BadRequest, "invalid JSON"},
		{"wrong type", "msg.send", user, `{"n":"x"}`, imerr.BadRequest, `field "n"`},
		{"validation", "msg.send", user, `{"n":-1}`, imerr.BadRequest, "negative"},
		{"no caller on a user op", "msg.send", endpoint.Caller{}, `{}`, imerr.Unauthorized, ""},
		{"no caller on a public op", "account.register", endpoint.Caller{}, `{"text":"hi"}`, "", ""},
		{"handler error", "msg.send", user, `{"text":"forbidden"}`, imerr.Forbidden, "not yours"},
		{"internal error hides its cause", "msg.send", user, `{"text":"db"}`, imerr.Internal, "internal error"},
		{"panic", "msg.send", user, `{"text":"panic"}`, imerr.Internal, "internal error"},
		{"too large", "msg.send", user, `{"text":"` + strings.Repeat("x", wire.MaxFrame) + `"}`, imerr.TooLarge, ""},
		{"unknown op", "msg.nope", user, `{}`, imerr.NotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := endpoint.Request(ctx, e.NC, tt.op, tt.c, []byte(tt.data))
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("got %v (%s), want %q", err, out, tt.want)
			}
			if err != nil {
				if !strings.Contains(imerr.From(err).Message, tt.message) || strings.Contains(imerr.From(err).Message, "10.0.0.1") {
					t.Fatalf("message %q, want it to contain %q and no internals", imerr.From(err).Message, tt.message)
				}
				return
			}
			if tt.name == "ok" && string(out) != `{"text":"hi","user":7,"req":"r-1"}` {
				t.Fatalf("reply %s", out)
			}
		})
	}
}

// TestInFlight checks that one process handles requests of one op concurrently
// (micro alone would serve them one at a time), never more than InFlightPerOp of
// one op at once while other ops still get slots, and that Stop waits for those
// in flight: each is answered.
func TestInFlight(t *testing.T) {
	e := testenv.Start(t)
	const inFlight, calls = 4, 12 // inFlight: per op; the process allows 6
	var running, peak atomic.Int64
	release := make(chan struct{})
	handler := func(ctx context.Context, _ endpoint.Caller, r echoReq) (echoResp, error) {
		if r.Text == "quick" {
			return echoResp{Text: r.Text}, nil
		}
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return echoResp{Text: r.Text}, nil
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{InFlight: 6, InFlightPerOp: inFlight, Timeout: 5 * time.Second},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler), endpoint.Handle("account.register", handler)})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := endpoint.Call[echoResp](ctx, e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{Text: fmt.Sprint(i)})
			errs <- err
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	for running.Load() < inFlight && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a fifth to start, were the bound broken
	if got := running.Load(); got != inFlight {
		t.Fatalf("%d requests running at once, want %d", got, inFlight)
	}
	// The flooded op holds 4 of the process's 6 slots: another op still runs.
	qctx, qcancel := context.WithTimeout(context.Background(), time.Second)
	_, err = endpoint.Call[echoResp](qctx, e.NC, "account.register", endpoint.Caller{}, echoReq{Text: "quick"})
	qcancel()
	if err != nil {
		t.Fatalf("another op while one is flooded: %v", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while requests were in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != inFlight {
		t.Fatalf("peak %d in flight, want %d", p, inFlight)
	}
	// The requests running at Stop were answered; the ones still queued in NATS
	// were drained and answered too (the connection stays open here).
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("request lost at Stop: %v", err)
		}
	}
}

// TestMicroProtocol asks the server what `nats micro ping|info|stats` ask, on
// micro's subjects, and decodes the answers into micro's types: every service
// answers with its version, every op is listed, and the stats count each
// request, each error and the time the handler really took.
func TestMicroProtocol(t *testing.T) {
	e := testenv.Start(t)
	const work = 30 * time.Millisecond
	handler := func(_ context.Context, _ endpoint.Caller, r echoReq) (echoResp, error) {
		time.Sleep(work)
		if r.Text == "no" {
			return echoResp{}, imerr.New(imerr.Forbidden, "not yours")
		}
		return echoResp{Text: r.Text}, nil
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{Version: "1.2.3"},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler), endpoint.Handle("msg.history", handler), endpoint.Handle("account.register", handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() { // concurrent: the time counted is each request's, not the subscription's
			defer wg.Done()
			text := "yes"
			if i < 3 {
				text = "no"
			}
			_, _ = endpoint.Call[echoResp](t.Context(), e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{Text: text})
		}()
	}
	wg.Wait()

	pings := gather[micro.Ping](t, e.NC, "$SRV.PING")
	if len(pings) != 2 {
		t.Fatalf("%d services answered PING, want 2: %+v", len(pings), pings)
	}
	for _, p := range pings {
		if p.Version != "1.2.3" || p.ID == "" || p.Type != micro.PingResponseType {
			t.Fatalf("ping %+v", p)
		}
	}
	infos := gather[micro.Info](t, e.NC, "$SRV.INFO.im-message")
	if len(infos) != 1 || len(infos[0].Endpoints) != 2 || infos[0].Endpoints[0].Subject != "im.v1.msg.send" || infos[0].Endpoints[0].QueueGroup != "im-message" {
		t.Fatalf("info %+v", infos)
	}
	stats := gather[micro.Stats](t, e.NC, "$SRV.STATS.im-message."+infos[0].ID)
	if len(stats) != 1 {
		t.Fatalf("stats %+v", stats)
	}
	send := stats[0].Endpoints[0]
	if send.Name != "msg_send" || send.NumRequests != 10 || send.NumErrors != 3 || !strings.Contains(send.LastError, "not yours") ||
		send.AverageProcessingTime < work || send.ProcessingTime < 10*work {
		t.Fatalf("msg.send stats %+v", send)
	}
	if h := stats[0].Endpoints[1]; h.NumRequests != 0 {
		t.Fatalf("msg.history stats %+v", h)
	}
}

// gather collects every answer to a request on subj that arrives within 300ms.
func gather[T any](t *testing.T, nc *nats.Conn, subj string) []T {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subj, inbox, nil); err != nil {
		t.Fatal(err)
	}
	var out []T
	for {
		m, err := sub.NextMsg(300 * time.Millisecond)
		if err != nil {
			return out
		}
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("%s answered %s: %v", subj, m.Data, err)
		}
		out = append(out, v)
	}
}

// TestDeadline: a request is not started once its caller's deadline has passed,
// whether it came late or waited for a slot, and its time runs from its arrival.
func TestDeadline(t *testing.T) {
	e := testenv.Start(t)
	var started atomic.Int64
	release := make(chan struct{})
	handler := func(ctx context.Context, _ endpoint.Caller, r echoReq) (echoResp, error) {
		started.Add(1)
		if r.Text == "hold" {
			<-release
		}
		return echoResp{Text: r.Text}, nil
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{InFlight: 1, InFlightPerOp: 1, Timeout: 5 * time.Second},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	// A deadline already past: not started.
	msg := &nats.Msg{Subject: "im.v1.msg.send", Data: []byte(`{}`), Header: endpoint.Caller{UserID: 1}.Headers()}
	msg.Header.Set(wire.HeaderDeadline, fmt.Sprint(time.Now().Add(-time.Second).UnixMilli()))
	if _, err := e.NC.RequestMsg(msg, 300*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("expired request answered: %v", err)
	}
	// One request holds the only slot; the next gives up after 100ms while waiting.
	held := make(chan error, 1)
	go func() {
		_, err := endpoint.Call[echoResp](t.Context(), e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{Text: "hold"})
		held <- err
	}()
	for started.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = endpoint.Call[echoResp](ctx, e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{Text: "late"})
	cancel()
	if imerr.CodeOf(err) != imerr.Unavailable {
		t.Fatalf("late request: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the late one had its slot by now
	if n := started.Load(); n != 1 {
		t.Fatalf("%d handlers started, want 1: the late request ran after its caller gave up", n)
	}
}

// TestPanicStack: a panic answers internal and its stack reaches the log.
func TestPanicStack(t *testing.T) {
	e := testenv.Start(t)
	var logs syncBuffer
	handler := func(context.Context, endpoint.Caller, echoReq) (echoResp, error) { panic("boom") }
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.New(&logs), nil, endpoint.Config{},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	_, err = endpoint.Call[echoResp](t.Context(), e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{})
	if imerr.CodeOf(err) != imerr.Internal {
		t.Fatalf("got %v", err)
	}
	if out := logs.String(); !strings.Contains(out, `"panic":"boom"`) || !strings.Contains(out, "endpoint_test.go") {
		t.Fatalf("log lacks the panic and its stack:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReplyOverMaxPayload: an answer NATS would refuse is an internal error at
// once, not a timeout.
func TestReplyOverMaxPayload(t *testing.T) {
	e := testenv.Start(t)
	handler := func(context.Context, endpoint.Caller, echoReq) (echoResp, error) {
		return echoResp{Text: strings.Repeat("x", int(e.NC.MaxPayload()))}, nil
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{},
		[]endpoint.Endpoint{endpoint.Handle("msg.send", handler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := endpoint.Call[echoResp](ctx, e.NC, "msg.send", endpoint.Caller{UserID: 1}, echoReq{}); imerr.CodeOf(err) != imerr.Internal {
		t.Fatalf("got %v, want internal", err)
	}
}
