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

	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/functions/fntest"
	"natter/shared/testenv"
)

// Stack is one running natter.
type Stack struct {
	Env  *testenv.Env
	Base string // http://127.0.0.1:port
	WS   string // ws://127.0.0.1:port/ws
}

// Start runs a stack until tb ends; cfg tunes the edge (zero: defaults).
func Start(tb testing.TB, cfg gateway.Config, fo fntest.Options) *Stack {
	tb.Helper()
	e := testenv.Start(tb)
	signer := fntest.Start(tb, e, fo)
	gw, err := gateway.New(cfg, gateway.Deps{NC: e.Connect(tb), Signer: signer, Log: zerolog.Nop(), AccessTTL: fntest.AuthConfig.AccessTTL})
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
	return &Stack{Env: e, Base: srv.URL, WS: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}
}
