// Package e2e drives natter end to end: real WebSocket and HTTP clients talk to an
// in-process edge, which reaches the real functions over a real NATS server, which
// store into real MySQL and Redis (shared/testenv).
package e2e

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/loadtest/client"
	"natter/shared/testenv"
)

type stack struct {
	env  *testenv.Env
	ws   string // ws://.../ws
	base string // http://...
}

func start(t *testing.T) *stack {
	t.Helper()
	// Tests register and log in many users from one address: no per-address limit.
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{})
	return &stack{env: st.Env, ws: st.WS, base: st.Base}
}

var userSeq atomic.Int64

// user is a registered account; devices log in separately.
type user struct {
	id   int64
	name string
}

func (s *stack) user(t *testing.T, prefix string) user {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, userSeq.Add(1))
	id, err := client.Register(ctx(t), s.base, name, "password-123")
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return user{id: id, name: name}
}

func (s *stack) login(t *testing.T, u user, device string) client.Tokens {
	t.Helper()
	tok, err := client.Login(ctx(t), s.base, u.name, "password-123", device)
	if err != nil {
		t.Fatalf("login %s/%s: %v", u.name, device, err)
	}
	return tok
}

// device logs u in on device and opens a WebSocket.
func (s *stack) device(t *testing.T, u user, device string) *client.Client {
	t.Helper()
	return s.dial(t, s.login(t, u, device).AccessToken)
}

func (s *stack) dial(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx(t), client.Options{URL: s.ws, Token: token})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func call[Resp any](t *testing.T, c *client.Client, op string, data any) Resp {
	t.Helper()
	var r Resp
	if err := c.Call(ctx(t), op, data, &r); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return r
}

// befriend makes a and b friends through their devices.
func befriend(t *testing.T, a, b *client.Client, bID int64) {
	t.Helper()
	req := call[struct {
		RequestID int64 `json:"request_id"`
	}](t, a, "friend.request", map[string]any{"to": bID, "message": "hi"})
	call[struct{}](t, b, "friend.respond", map[string]any{"request_id": req.RequestID, "accept": true})
}
