package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/functions/presence"
	"natter/loadtest/client"
	"natter/shared/wire"
)

// TestPresenceAcrossEdges: friends on two edges hear of each other; when one
// edge dies (it loses NATS, then its sockets, so it neither disconnects nor
// touches them), its users go offline within the stale window.
func TestPresenceAcrossEdges(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1, TouchInterval: 200 * time.Millisecond},
		fntest.Options{Presence: presence.Config{Stale: time.Second, Grace: 200 * time.Millisecond, Sweep: 200 * time.Millisecond}})
	doomed := st.AddEdge(t, gateway.Config{HTTPPublicLimit: -1, TouchInterval: 200 * time.Millisecond})
	s := &stack{env: st.Env, ws: st.WS, base: st.Base}
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	b1 := s.device(t, bob, "phone") // on the first edge
	a1, err := client.Dial(ctx(t), client.Options{URL: doomed.WS, Token: s.login(t, alice, "phone").AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	befriend(t, a1, b1, bob.id)

	nextPresence := func(within time.Duration) (wire.PresenceChanged, bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			p, err := b1.NextPush(ctx(t), wire.EvtPresenceChanged)
			if err != nil {
				return wire.PresenceChanged{}, false
			}
			var ev wire.PresenceChanged
			if json.Unmarshal(p.Data, &ev) == nil && ev.UserID == alice.id {
				return ev, true
			}
		}
		return wire.PresenceChanged{}, false
	}
	// Alice comes online again on another device: no news (she already is).
	a2 := s.device(t, alice, "laptop")
	if r := call[struct {
		Users []struct {
			Status string `json:"status"`
		} `json:"users"`
	}](t, b1, "presence.get", map[string]any{"user_ids": []int64{alice.id}}); r.Users[0].Status != wire.PresenceOnline {
		t.Fatalf("bob asks: %+v", r)
	}
	_ = a2.Close()
	// The doomed edge dies: its NATS connection first, then its sockets.
	doomed.NC.Close()
	doomed.Srv.CloseClientConnections()
	start := time.Now()
	p, ok := nextPresence(5 * time.Second)
	if !ok || p.Status != wire.PresenceOffline {
		t.Fatalf("alice's edge died, bob heard %+v %v", p, ok)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("offline after %v: want within the stale window (1 s) and a sweep", d)
	}
}
