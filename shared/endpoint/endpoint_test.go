package endpoint_test

import (
	"context"
	"errors"
	"strings"
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
	srv, err := endpoint.Serve(context.Background(), e.NC, zerolog.Nop(), nil, endpoint.Config{Instances: 2, Timeout: time.Second},
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
