package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/functions/fntest"
	"natter/loadtest/client"
	"natter/shared/bus"
	"natter/shared/imerr"
	"natter/shared/testenv"
)

// TestUnderNATSPermissions runs the stack on a NATS server loaded from
// nats-config/dev.conf, the functions and the edge each connected as its own user
// the way their mains connect (bus.Connect): registration and login, a message
// and its push, a logout that the edge learns from IM_EVENTS, and not one
// publish or subscription refused.
func TestUnderNATSPermissions(t *testing.T) {
	e := testenv.StartWith(t, testenv.Options{NATSConfig: testenv.RepoFile(t, "nats-config/dev.conf")})
	signer := fntest.Start(t, e, fntest.Options{}) // on e.NC: the functions user
	edgeNC, err := bus.Connect(e.NATSAs("edge"), "edge", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edgeNC.Close)
	gw, err := gateway.New(gateway.Config{HTTPPublicLimit: -1},
		gateway.Deps{NC: edgeNC, Signer: signer, Log: zerolog.Nop(), AccessTTL: fntest.AuthConfig.AccessTTL})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	s := &stack{env: e, base: srv.URL, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"}

	// Ready: it follows session revocations with the edge's JetStream rights.
	waitUntil(t, "edge ready", func() bool {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	a1, b1 := s.device(t, alice, "phone"), s.device(t, bob, "phone") // session.connect: im.internal
	befriend(t, a1, b1, bob.id)
	sendText(t, a1, bob.id, "p1", "under permissions")
	if m := nextMsg(t, b1); m.Sender != alice.id || string(m.Content) != `{"text":"under permissions"}` {
		t.Fatalf("push %+v", m)
	}

	tok := s.login(t, alice, "laptop")
	profile := fmt.Sprintf("/api/v1/users/%d", alice.id)
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, profile, tok.AccessToken, nil, nil); err != nil {
		t.Fatalf("profile before logout: %v", err)
	}
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/users/logout", tok.AccessToken, map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "revoked token refused", func() bool {
		err := client.HTTP(ctx(t), s.base, http.MethodGet, profile, tok.AccessToken, nil, nil)
		return imerr.CodeOf(err) == imerr.Unauthorized
	})

	for who, err := range map[string]error{"edge": edgeNC.LastError(), "functions": e.NC.LastError()} {
		if err != nil {
			t.Errorf("%s connection: %v", who, err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
