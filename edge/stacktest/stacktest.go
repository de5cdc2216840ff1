// Package stacktest starts the whole of natter in-process for a test: real
// services (shared/testenv), every function domain (functions/fntest) and an edge
// behind an httptest server. End-to-end tests and the load tool's smoke tests use it.
package stacktest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/functions/fntest"
	"natter/shared/auth"
	"natter/shared/testenv"
)

// Stack is one running natter.
type Stack struct {
	Env  *testenv.Env
	Base string // http://127.0.0.1:port (the first edge)
	WS   string // ws://127.0.0.1:port/ws (the first edge)

	signer *auth.Signer
}

// Edge is one edge of a stack.
type Edge struct {
	Base, WS string
	GW       *gateway.Gateway
	NC       *nats.Conn // its own connection: closing it is the edge losing NATS
	Srv      *httptest.Server
}

// Start runs a stack until tb ends; cfg tunes the edge (zero: defaults).
func Start(tb testing.TB, cfg gateway.Config, fo fntest.Options) *Stack {
	tb.Helper()
	e := testenv.Start(tb)
	s := &Stack{Env: e, signer: fntest.Start(tb, e, fo)}
	first := s.AddEdge(tb, cfg)
	s.Base, s.WS = first.Base, first.WS
	return s
}

// AddEdge starts one more edge on the stack's NATS until tb ends.
func (s *Stack) AddEdge(tb testing.TB, cfg gateway.Config) *Edge {
	tb.Helper()
	nc := s.Env.Connect(tb)
	gw, err := gateway.New(cfg, gateway.Deps{NC: nc, Signer: s.signer, AdminSigner: fntest.OperatorSigner(tb), Log: zerolog.Nop(), AccessTTL: fntest.AuthConfig.AccessTTL})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	return &Edge{Base: srv.URL, WS: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", GW: gw, NC: nc, Srv: srv}
}
