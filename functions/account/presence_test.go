package account_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/account"
	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/functions/presence"
	"natter/shared/endpoint"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// nextPresence waits for the next presence.changed push on sub, skipping others.
func nextPresence(t *testing.T, sub *nats.Subscription, within time.Duration) (wire.PresenceChanged, bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return wire.PresenceChanged{}, false
		}
		var p struct {
			Event string               `json:"event"`
			Data  wire.PresenceChanged `json:"data"`
		}
		if json.Unmarshal(m.Data, &p) == nil && p.Event == wire.EvtPresenceChanged {
			return p.Data, true
		}
	}
}

func connect(t *testing.T, e *testenv.Env, c endpoint.Caller, conn string) {
	t.Helper()
	fntest.Must[wire.ConnectResp](t, e, "session.connect", c, wire.ConnectReq{ConnID: conn, EdgeID: "edge-1"})
}

func disconnect(t *testing.T, e *testenv.Env, c endpoint.Caller, conn string) {
	t.Helper()
	fntest.Must[account.Empty](t, e, "session.disconnect", c, wire.DisconnectReq{ConnID: conn})
}

// TestPresence: a friend online hears of coming online, going away and back, and
// going offline (after the grace, with a last-seen time); a reconnect within the
// grace is no change; an edge that stops touching takes its users offline within
// the stale window; privacy decides who sees what, pushed or asked.
func TestPresence(t *testing.T) { testenv.ForEachRedis(t, testPresence) }

func testPresence(t *testing.T, e *testenv.Env) {
	fntest.Start(t, e, fntest.Options{Presence: presence.Config{Stale: time.Second, Grace: 300 * time.Millisecond, Sweep: 200 * time.Millisecond}})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	fntest.Befriend(t, e, alice, bob)
	bobInbox, _ := e.NC.SubscribeSync(subject.Deliver(bob.UserID))
	carolInbox, _ := e.NC.SubscribeSync(subject.Deliver(carol.UserID))
	connect(t, e, bob, "bob-1") // only online friends are told
	connect(t, e, carol, "carol-1")
	// Their edge touches them, as edges do (the stale window is a second here).
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				_, _ = fntest.Call[account.Empty](t, e, "session.touch", endpoint.Caller{}, wire.TouchReq{EdgeID: "edge-1",
					Conns: []wire.TouchConn{{UserID: bob.UserID, ConnID: "bob-1"}, {UserID: carol.UserID, ConnID: "carol-1"}}})
			}
		}
	}()

	connect(t, e, alice, "alice-1")
	if p, ok := nextPresence(t, bobInbox, 2*time.Second); !ok || p.UserID != alice.UserID || p.Status != wire.PresenceOnline {
		t.Fatalf("bob heard %+v %v", p, ok)
	}
	if p, ok := nextPresence(t, carolInbox, 300*time.Millisecond); ok {
		t.Fatalf("carol, not a friend, heard %+v", p)
	}
	alice.ConnID = "alice-1"
	fntest.Must[account.UserPresence](t, e, "presence.set", alice, account.PresenceSetReq{Status: "away"})
	if p, _ := nextPresence(t, bobInbox, 2*time.Second); p.Status != wire.PresenceAway {
		t.Fatalf("away: %+v", p)
	}
	get := func(viewer endpoint.Caller) account.UserPresence {
		r := fntest.Must[account.PresenceGetResp](t, e, "presence.get", viewer, account.PresenceGetReq{UserIDs: []int64{alice.UserID}})
		return r.Users[0]
	}
	if p := get(bob); p.Status != wire.PresenceAway {
		t.Fatalf("bob asks: %+v", p)
	}
	if p := get(carol); p.Status != wire.PresenceUnknown { // friends only, the default
		t.Fatalf("carol asks: %+v", p)
	}
	fntest.Must[account.UserPresence](t, e, "presence.set", alice, account.PresenceSetReq{Status: "online"})
	if p, _ := nextPresence(t, bobInbox, 2*time.Second); p.Status != wire.PresenceOnline {
		t.Fatalf("back: %+v", p)
	}

	// A reconnect within the grace is no change.
	disconnect(t, e, alice, "alice-1")
	connect(t, e, alice, "alice-2")
	if p, ok := nextPresence(t, bobInbox, 700*time.Millisecond); ok {
		t.Fatalf("a quick reconnect announced %+v", p)
	}
	// A disconnect is, once the grace has passed.
	disconnect(t, e, alice, "alice-2")
	p, ok := nextPresence(t, bobInbox, 2*time.Second)
	if !ok || p.Status != wire.PresenceOffline || p.LastSeen == 0 {
		t.Fatalf("offline: %+v %v", p, ok)
	}
	if g := get(bob); g.Status != wire.PresenceOffline || g.LastSeen != p.LastSeen {
		t.Fatalf("bob asks after: %+v", g)
	}

	// An edge that dies never disconnects: the sweeper finds the stale connection.
	connect(t, e, alice, "alice-3")
	if p, _ := nextPresence(t, bobInbox, 2*time.Second); p.Status != wire.PresenceOnline {
		t.Fatalf("online again: %+v", p)
	}
	if p, ok := nextPresence(t, bobInbox, 3*time.Second); !ok || p.Status != wire.PresenceOffline {
		t.Fatalf("an untouched connection still online: %+v %v", p, ok)
	}

	// Privacy nobody: no pushes, and bob asks in vain.
	nobody := "nobody"
	fntest.Must[friend.Privacy](t, e, "account.privacy.set", alice, friend.PrivacySetReq{Presence: &nobody})
	connect(t, e, alice, "alice-4")
	if p, ok := nextPresence(t, bobInbox, 500*time.Millisecond); ok {
		t.Fatalf("hidden presence pushed %+v", p)
	}
	if g := get(bob); g.Status != wire.PresenceUnknown {
		t.Fatalf("hidden presence asked: %+v", g)
	}
	if g := get(alice); g.Status != wire.PresenceOnline {
		t.Fatalf("one's own presence: %+v", g)
	}
}
