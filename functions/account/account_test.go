package account_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/account"
	"natter/functions/fntest"
	"natter/functions/presence"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func TestRegisterLoginRefreshLogout(t *testing.T) {
	e := testenv.Start(t)
	signer := fntest.Start(t, e, fntest.Options{})

	reg, err := fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "alice", Password: "password-123", Nickname: "Alice", ClientID: "reg-1"})
	if err != nil || reg.UserID <= 0 {
		t.Fatalf("register: %+v %v", reg, err)
	}
	// A retried register (same client_id) answers the same user. Without it a taken
	// username is a conflict, the right password too: register tells nothing about
	// an account's password.
	again, err := fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "ALICE", Password: "password-123", ClientID: "reg-1"})
	if err != nil || again.UserID != reg.UserID {
		t.Fatalf("retried register: %+v %v", again, err)
	}
	for _, r := range []account.RegisterReq{
		{Username: "alice", Password: "password-123"},
		{Username: "alice", Password: "password-123", ClientID: "reg-2"},
		{Username: "ａｌｉｃｅ", Password: "other-password"}, // full width: the same canonical name
	} {
		_, err = fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, r)
		fntest.WantCode(t, err, imerr.Conflict)
	}

	_, err = fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "wrong-password", DeviceID: "d1"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "nobody", Password: "password-123", DeviceID: "d1"})
	fntest.WantCode(t, err, imerr.Unauthorized)

	tok, err := fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123", DeviceID: "d1", Platform: "ios"})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := signer.Verify(tok.AccessToken)
	if err != nil || claims.UserID != reg.UserID || claims.SessionID != tok.SessionID || claims.DeviceID != "d1" {
		t.Fatalf("access token claims %+v %v", claims, err)
	}

	// Refresh rotates: the new token works, the old one no longer does.
	next, err := fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok.RefreshToken})
	if err != nil || next.RefreshToken == tok.RefreshToken || next.SessionID != tok.SessionID {
		t.Fatalf("refresh: %+v %v", next, err)
	}
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: "garbage"})
	fntest.WantCode(t, err, imerr.Unauthorized)

	// Logout revokes the session: refresh and session.connect fail; logout again is fine.
	c := endpoint.Caller{UserID: reg.UserID, SessionID: tok.SessionID, DeviceID: "d1"}
	revoked, err := e.NC.SubscribeSync(subject.EvtSessionRevoked)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fntest.Call[account.Empty](t, e, "account.logout", c, struct{}{}); err != nil {
		t.Fatal(err)
	}
	if _, err := revoked.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("no session.revoked event: %v", err)
	}
	if _, err := fntest.Call[account.Empty](t, e, "account.logout", c, struct{}{}); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: next.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[wire.ConnectResp](t, e, "session.connect", c, wire.ConnectReq{ConnID: "c1", EdgeID: "e1"})
	fntest.WantCode(t, err, imerr.Unauthorized)
}

func TestBadInput(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "d1")
	long := strings.Repeat("x", 200)
	tests := []struct {
		name string
		op   string
		c    endpoint.Caller
		req  any
		want imerr.Code
	}{
		{"short username", "account.register", endpoint.Caller{}, account.RegisterReq{Username: "ab", Password: "password-123"}, imerr.BadRequest},
		{"bad username chars", "account.register", endpoint.Caller{}, account.RegisterReq{Username: "a b c", Password: "password-123"}, imerr.BadRequest},
		{"short password", "account.register", endpoint.Caller{}, account.RegisterReq{Username: "bob", Password: "short"}, imerr.BadRequest},
		{"long nickname", "account.register", endpoint.Caller{}, account.RegisterReq{Username: "bob", Password: "password-123", Nickname: long}, imerr.BadRequest},
		{"wrong field type", "account.register", endpoint.Caller{}, map[string]any{"username": 5}, imerr.BadRequest},
		{"login no device", "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123"}, imerr.BadRequest},
		{"login bad platform", "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123", DeviceID: "d", Platform: "toaster"}, imerr.BadRequest},
		{"profile needs login", "account.profile.get", endpoint.Caller{}, account.ProfileReq{UserID: alice.UserID}, imerr.Unauthorized},
		{"profile of nobody", "account.profile.get", alice, account.ProfileReq{UserID: 999999}, imerr.NotFound},
		{"update someone else", "account.profile.update", alice, map[string]any{"user_id": alice.UserID + 1, "nickname": "x"}, imerr.Forbidden},
		{"update nothing", "account.profile.update", alice, map[string]any{}, imerr.BadRequest},
		{"devices of someone else", "account.devices", alice, account.DevicesReq{UserID: alice.UserID + 1}, imerr.Forbidden},
		{"connect no conn id", "session.connect", alice, wire.ConnectReq{}, imerr.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[map[string]any](t, e, tt.op, tt.c, tt.req)
			fntest.WantCode(t, err, tt.want)
		})
	}
	var n int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != 1 {
		t.Fatalf("users after bad input = %d (%v), want 1", n, err)
	}
}

func TestProfileAndDevices(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "phone")
	laptop, _ := fntest.Login(t, e, "alice", "laptop")
	nick := "Alice ✨"
	p, err := fntest.Call[account.Profile](t, e, "account.profile.update", alice, account.UpdateProfileReq{Nickname: &nick})
	if err != nil || p.Nickname != nick || p.Username != "alice" {
		t.Fatalf("update: %+v %v", p, err)
	}
	if _, err := fntest.Call[wire.ConnectResp](t, e, "session.connect", laptop, wire.ConnectReq{ConnID: "c-laptop", EdgeID: "e1"}); err != nil {
		t.Fatal(err)
	}
	ds, err := fntest.Call[account.DevicesResp](t, e, "account.devices", alice, account.DevicesReq{})
	if err != nil || len(ds.Devices) != 2 {
		t.Fatalf("devices: %+v %v", ds, err)
	}
	for _, d := range ds.Devices {
		if d.Current != (d.DeviceID == "phone") || d.Online != (d.DeviceID == "laptop") {
			t.Fatalf("device %+v", d)
		}
	}
	// Logging in again on the same device ends the previous session.
	again, _ := fntest.Login(t, e, "alice", "phone")
	_, err = fntest.Call[wire.ConnectResp](t, e, "session.connect", alice, wire.ConnectReq{ConnID: "old", EdgeID: "e1"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	if _, err := fntest.Call[wire.ConnectResp](t, e, "session.connect", again, wire.ConnectReq{ConnID: "new", EdgeID: "e1"}); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceLimit(t *testing.T) {
	tests := []struct {
		policy string
	}{{"kick_oldest"}, {"refuse"}}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			e := testenv.Start(t)
			fntest.Start(t, e, fntest.Options{Account: account.Config{MaxDevices: 2, DevicePolicy: tt.policy}})
			d1, _ := fntest.User(t, e, "alice", "d1")
			d2, _ := fntest.Login(t, e, "alice", "d2")
			d3, _ := fntest.Login(t, e, "alice", "d3")
			kicks, err := e.NC.SubscribeSync(subject.Deliver(d1.UserID))
			if err != nil {
				t.Fatal(err)
			}
			connect := func(c endpoint.Caller, conn string) (wire.ConnectResp, error) {
				return fntest.Call[wire.ConnectResp](t, e, "session.connect", c, wire.ConnectReq{ConnID: conn, EdgeID: "e1"})
			}
			if _, err := connect(d1, "c1"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct connect times
			// The same device reconnecting replaces its old connection, it is not a new device.
			if _, err := connect(d1, "c1b"); err != nil {
				t.Fatal(err)
			}
			expectKick(t, kicks, "c1")
			time.Sleep(2 * time.Millisecond)
			if r, err := connect(d2, "c2"); err != nil || r.Devices != 2 {
				t.Fatalf("d2: %+v %v", r, err)
			}
			r, err := connect(d3, "c3")
			if tt.policy == "refuse" {
				fntest.WantCode(t, err, imerr.Conflict)
				return
			}
			if err != nil || r.Devices != 2 {
				t.Fatalf("d3: %+v %v", r, err)
			}
			expectKick(t, kicks, "c1b")
			// After d2 disconnects, d1 fits again without kicking anyone.
			if _, err := fntest.Call[account.Empty](t, e, "session.disconnect", d2, wire.DisconnectReq{ConnID: "c2"}); err != nil {
				t.Fatal(err)
			}
			if r, err := connect(d1, "c1c"); err != nil || r.Devices != 2 {
				t.Fatalf("d1 back: %+v %v", r, err)
			}
			if m, err := kicks.NextMsg(100 * time.Millisecond); err == nil {
				t.Fatalf("unexpected kick %v", m.Header)
			}
		})
	}
}

func expectKick(t *testing.T, sub *nats.Subscription, conn string) {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no kick for %s: %v", conn, err)
	}
	if m.Header.Get(wire.HeaderControl) != wire.ControlKick || m.Header.Get(wire.HeaderConn) != conn {
		t.Fatalf("got control %q conn %q, want kick %s", m.Header.Get(wire.HeaderControl), m.Header.Get(wire.HeaderConn), conn)
	}
}

// TestStaleConnections: connections of an edge that stopped touching them stop
// counting against the device limit and as online; touched ones stay.
func TestStaleConnections(t *testing.T) { testenv.ForEachRedis(t, testStaleConnections) }

func testStaleConnections(t *testing.T, e *testenv.Env) {
	fntest.Start(t, e, fntest.Options{Account: account.Config{MaxDevices: 2, DevicePolicy: "refuse"}, Presence: presence.Config{Stale: time.Second}})
	d1, _ := fntest.User(t, e, "alice", "d1")
	d2, _ := fntest.Login(t, e, "alice", "d2")
	d3, _ := fntest.Login(t, e, "alice", "d3")
	connect := func(c endpoint.Caller, conn string) error {
		_, err := fntest.Call[wire.ConnectResp](t, e, "session.connect", c, wire.ConnectReq{ConnID: conn, EdgeID: "e1"})
		return err
	}
	touch := func(conns ...wire.TouchConn) {
		fntest.Must[account.Empty](t, e, "session.touch", endpoint.Caller{}, wire.TouchReq{EdgeID: "e1", Conns: conns})
	}
	if err := connect(d1, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := connect(d2, "c2"); err != nil {
		t.Fatal(err)
	}
	fntest.WantCode(t, connect(d3, "c3"), imerr.Conflict)
	// c2's edge keeps touching it; c1's edge died.
	for range 4 {
		time.Sleep(300 * time.Millisecond)
		touch(wire.TouchConn{UserID: d2.UserID, ConnID: "c2"}, wire.TouchConn{UserID: d2.UserID, ConnID: "gone"})
	}
	if err := connect(d3, "c3"); err != nil {
		t.Fatalf("a dead edge's connection still blocks the limit: %v", err)
	}
	ds := fntest.Must[account.DevicesResp](t, e, "account.devices", d1, account.DevicesReq{})
	for _, d := range ds.Devices {
		if d.Online != (d.DeviceID != "d1") {
			t.Fatalf("device %s online=%v", d.DeviceID, d.Online)
		}
	}
	var n int64
	if n = e.RDB.HLen(context.Background(), presence.ConnsKey(d1.UserID)).Val(); n != 2 {
		t.Fatalf("%d entries, want 2 (the stale one dropped, the unknown one not created)", n)
	}
	_, err := fntest.Call[account.Empty](t, e, "session.touch", endpoint.Caller{}, wire.TouchReq{Conns: []wire.TouchConn{{UserID: 0, ConnID: "x"}}})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestCanonicalUsernames: register and login compare one canonical form, so a
// name register folds is the same account at login, and one it refuses (a
// dotted capital I that a collation would fold into "i") logs into nothing.
func TestCanonicalUsernames(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "sec_alice", Password: "password-123"})
	tests := []struct {
		name string
		ok   bool
	}{
		{"sec_alice", true},
		{"SEC_ALICE", true},
		{"ｓｅｃ＿ａｌｉｃｅ", true},  // full width: its canonical form is sec_alice
		{"sec_alİce", false}, // dotted capital I
		{"sec_alıce", false}, // dotless i
	}
	for _, tt := range tests {
		_, err := fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: tt.name, Password: "password-123", DeviceID: "d1"})
		if tt.ok != (err == nil) {
			t.Errorf("login as %q: %v", tt.name, err)
		}
	}
	_, err := fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "sec_alİce", Password: "password-123"})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestLoginLockout: failed logins lock the account, the right password included,
// until the lock ends by itself; a success clears the count.
func TestLoginLockout(t *testing.T) { testenv.ForEachRedis(t, testLoginLockout) }

func testLoginLockout(t *testing.T, e *testenv.Env) {
	fntest.Start(t, e, fntest.Options{Account: account.Config{LoginFailures: 3, LoginLockout: 300 * time.Millisecond, LoginLockoutMax: time.Second}})
	fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "bob", Password: "password-123"})
	locked, _ := e.NC.SubscribeSync(subject.EvtLoginLocked)
	login := func(password string) error {
		_, err := fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{ClientIP: "192.0.2.7"}, account.LoginReq{Username: "bob", Password: password, DeviceID: "d1"})
		return err
	}
	for range 2 {
		fntest.WantCode(t, login("guess"), imerr.Unauthorized)
	}
	if err := login("password-123"); err != nil { // clears the count
		t.Fatal(err)
	}
	for range 3 {
		fntest.WantCode(t, login("guess"), imerr.Unauthorized)
	}
	fntest.WantCode(t, login("password-123"), imerr.RateLimited)
	m, err := locked.NextMsg(2 * time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"username":"bob"`) || !strings.Contains(string(m.Data), `"client_ip":"192.0.2.7"`) {
		t.Fatalf("login_locked event: %v %s", err, m.Data)
	}
	time.Sleep(400 * time.Millisecond)
	if err := login("password-123"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

// TestRefreshReuse: the refresh token a rotation replaced, presented again, ends
// the session: neither holder can refresh it any more.
func TestRefreshReuse(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	_, tok := fntest.User(t, e, "carol", "c1")
	next := fntest.Must[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok.RefreshToken})
	_, err := fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: next.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized)
	var revoked bool
	if err := e.DB.QueryRow("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ?", tok.SessionID).Scan(&revoked); err != nil || !revoked {
		t.Fatalf("session revoked %v (%v)", revoked, err)
	}
	// A made-up secret for a live session is refused and ends nothing.
	_, tok2 := fntest.Login(t, e, "carol", "c2")
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok2.SessionID + ".guess"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	if _, err := fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok2.RefreshToken}); err != nil {
		t.Fatalf("a guess ended the session: %v", err)
	}
}
