package endpoint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
