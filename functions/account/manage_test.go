package account_test

import (
	"database/sql"
	"testing"
	"time"

	"natter/functions/account"
	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// TestDevices: account.devices tells each device's platform, app version, last
// connection address and activity, and whether it is online; device.logout ends
// one other device only (its connections get a kick for its session), logout_all
// every other one.
func TestDevices(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "dora", Password: "password-123"})
	login := func(device, version string) (endpoint.Caller, account.Tokens) {
		tok := fntest.Must[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "dora", Password: "password-123", DeviceID: device, Platform: "ios", AppVersion: version})
		return endpoint.Caller{UserID: tok.UserID, DeviceID: device, SessionID: tok.SessionID, ClientIP: "198.51.100.9"}, tok
	}
	phone, _ := login("phone", "3.1.0")
	tablet, tabletTok := login("tablet", "3.0.2")
	laptop, _ := login("laptop", "")
	connect(t, e, tablet, "tablet-conn")

	devs := fntest.Must[account.DevicesResp](t, e, "account.devices", phone, account.DevicesReq{})
	byID := map[string]account.Device{}
	for _, d := range devs.Devices {
		byID[d.DeviceID] = d
	}
	if d := byID["tablet"]; !d.Online || d.AppVersion != "3.0.2" || d.LastIP != "198.51.100.9" || d.LastActive == 0 || d.Platform != "ios" {
		t.Fatalf("tablet %+v", d)
	}
	if d := byID["phone"]; d.Online || !d.Current || d.LastActive != 0 {
		t.Fatalf("phone %+v", d)
	}

	inbox, _ := e.NC.SubscribeSync(subject.Deliver(phone.UserID))
	_, err := fntest.Call[account.LoggedOut](t, e, "account.device.logout", phone, account.DeviceLogoutReq{DeviceID: "phone"})
	fntest.WantCode(t, err, imerr.BadRequest) // the calling device uses logout
	if r := fntest.Must[account.LoggedOut](t, e, "account.device.logout", phone, account.DeviceLogoutReq{DeviceID: "tablet"}); r.Sessions != 1 {
		t.Fatalf("ended %d sessions", r.Sessions)
	}
	m, err := inbox.NextMsg(2 * time.Second)
	if err != nil || m.Header.Get(wire.HeaderControl) != wire.ControlKick || m.Header.Get(wire.HeaderSession) != tablet.SessionID {
		t.Fatalf("kick %v %v", m, err)
	}
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tabletTok.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[wire.SessionCheck](t, e, "session.check", tablet, struct{}{})
	fntest.WantCode(t, err, imerr.Unauthorized)
	fntest.Must[wire.SessionCheck](t, e, "session.check", laptop, struct{}{})

	if r := fntest.Must[account.LoggedOut](t, e, "account.logout.all", phone, struct{}{}); r.Sessions != 1 {
		t.Fatalf("logout_all ended %d (the laptop's)", r.Sessions)
	}
	fntest.Must[wire.SessionCheck](t, e, "session.check", phone, struct{}{})
	_, err = fntest.Call[wire.SessionCheck](t, e, "session.check", laptop, struct{}{})
	fntest.WantCode(t, err, imerr.Unauthorized)
}

// TestPasswordChange: the old password must be right; the new one works, the old
// one no longer does, and every other session ends.
func TestPasswordChange(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	a, _ := fntest.User(t, e, "erin", "d1")
	other, _ := fntest.Login(t, e, "erin", "d2")
	_, err := fntest.Call[account.LoggedOut](t, e, "account.password.change", a, account.PasswordChangeReq{OldPassword: "wrong-password", NewPassword: "another-password"})
	fntest.WantCode(t, err, imerr.Forbidden)
	if r := fntest.Must[account.LoggedOut](t, e, "account.password.change", a, account.PasswordChangeReq{OldPassword: "password-123", NewPassword: "another-password"}); r.Sessions != 1 {
		t.Fatalf("ended %d sessions", r.Sessions)
	}
	_, err = fntest.Call[wire.SessionCheck](t, e, "session.check", other, struct{}{})
	fntest.WantCode(t, err, imerr.Unauthorized)
	fntest.Must[wire.SessionCheck](t, e, "session.check", a, struct{}{})
	_, err = fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "erin", Password: "password-123", DeviceID: "d3"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	fntest.Must[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "erin", Password: "another-password", DeviceID: "d3"})
}

// TestDeleteAccount: a deleted account cannot log in, its profile is anonymous,
// its friendships are gone, and its groups go on without it: ownership passes to
// the longest-serving admin, and a group it was alone in is dismissed.
func TestDeleteAccount(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	frank, _ := fntest.User(t, e, "frank", "f1")
	gina, _ := fntest.User(t, e, "gina", "g1")
	hank, _ := fntest.User(t, e, "hank", "h1")
	fntest.Befriend(t, e, frank, gina)
	g := fntest.Must[group.Info](t, e, "group.create", frank, group.CreateReq{Name: "club", Members: []int64{gina.UserID, hank.UserID}})
	fntest.Must[group.Empty](t, e, "group.role.set", frank, group.RoleReq{GroupID: g.GroupID, UserID: hank.UserID, Role: "admin"})
	alone := fntest.Must[group.Info](t, e, "group.create", frank, group.CreateReq{Name: "solo"})

	_, err := fntest.Call[account.LoggedOut](t, e, "account.delete", frank, account.DeleteReq{Password: "wrong-password"})
	fntest.WantCode(t, err, imerr.Forbidden)
	fntest.Must[account.LoggedOut](t, e, "account.delete", frank, account.DeleteReq{Password: "password-123"})

	_, err = fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "frank", Password: "password-123", DeviceID: "f2"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	if l := fntest.Must[friend.ListResp](t, e, "friend.list", gina, friend.PageReq{}); len(l.Friends) != 0 {
		t.Fatalf("gina's friends %+v", l.Friends)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info := fntest.Must[group.Info](t, e, "group.get", gina, group.GroupReq{GroupID: g.GroupID})
		solo := fntest.Must[group.Info](t, e, "group.get", gina, group.GroupReq{GroupID: alone.GroupID})
		if info.OwnerID == hank.UserID && info.MemberCount == 2 && solo.Dismissed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("groups after the deletion: %+v, %+v", info, solo)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var name, nick string
	if err := e.DB.QueryRow("SELECT username, nickname FROM users WHERE id = ?", frank.UserID).Scan(&name, &nick); err != nil || nick != "Deleted user" || name == "frank" {
		t.Fatalf("profile %q %q (%v)", name, nick, err)
	}
	// The username is free again.
	fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "frank", Password: "password-123"})
}

// TestSessionActivityBatched: connects and disconnects are written to the
// sessions table in batches, within about a second; account.devices shows them
// at once; a disconnect moves the time and keeps the connect's address.
func TestSessionActivityBatched(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "gus", Password: "password-123"})
	tok := fntest.Must[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "gus", Password: "password-123", DeviceID: "phone", Platform: "android"})
	c := endpoint.Caller{UserID: tok.UserID, DeviceID: "phone", SessionID: tok.SessionID, ClientIP: "203.0.113.7"}

	stored := func() (time.Time, string) {
		var at sql.NullTime
		var ip string
		if err := e.DB.QueryRow("SELECT last_active_at, last_ip FROM sessions WHERE id = ?", c.SessionID).Scan(&at, &ip); err != nil {
			t.Fatal(err)
		}
		return at.Time, ip
	}
	waitStored := func(after time.Time, ip string) time.Time {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			at, got := stored()
			if !at.Before(after) && got == ip {
				return at
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions row: last_active_at %v (want ≥ %v), last_ip %q (want %q)", at, after, got, ip)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	before := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	connect(t, e, c, "c1")
	devs := fntest.Must[account.DevicesResp](t, e, "account.devices", c, account.DevicesReq{})
	if len(devs.Devices) != 1 || devs.Devices[0].LastIP != "203.0.113.7" || devs.Devices[0].LastActive == 0 {
		t.Fatalf("devices right after connect: %+v", devs.Devices)
	}
	connected := waitStored(before, "203.0.113.7")

	time.Sleep(20 * time.Millisecond)
	c.ClientIP = "" // the disconnect carries no address; the connect's stays
	disconnect(t, e, c, "c1")
	if at := waitStored(connected.Add(time.Millisecond), "203.0.113.7"); !at.After(connected) {
		t.Fatalf("disconnect did not move last_active_at: %v", at)
	}
}
