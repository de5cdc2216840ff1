package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"natter/functions/account"
	"natter/functions/admin"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/risk"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// adminOps are the ops an operator token reaches (all admin.* but the login).
func adminOps() []op.Op {
	var out []op.Op
	for _, o := range op.All {
		if o.BackOffice() && o.Access == op.Admin {
			out = append(out, o)
		}
	}
	return out
}

// TestPermissionRows: for every admin op, each operator role below the op's is
// refused (forbidden) and each at or above it passes the adapter (whatever the
// handler then says of the empty request); a chat user's caller, with or without
// a role its users row might hold, is refused (unauthorized).
func TestPermissionRows(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	chat, _ := fntest.User(t, e, "chatter", "d1")
	callers := map[string]endpoint.Caller{}
	for _, role := range []string{op.RoleAuditor, op.RoleOperator, op.RoleSuperadmin} {
		callers[role], _ = fntest.Operator(t, e, "op-"+role, role)
	}
	ops := adminOps()
	if len(ops) < 15 {
		t.Fatalf("only %d admin ops", len(ops))
	}
	for _, o := range ops {
		for _, role := range []string{op.RoleAuditor, op.RoleOperator, op.RoleSuperadmin} {
			t.Run(o.Name+"/"+role, func(t *testing.T) {
				// admin.logout would end the session the other rows use: a fresh one.
				c := callers[role]
				if o.Name == "admin.logout" {
					c = relogin(t, e, "op-"+role)
				}
				_, err := fntest.Call[json.RawMessage](t, e, o.Name, c, map[string]any{})
				code := imerr.CodeOf(err)
				if op.AdminRank(role) < op.AdminRank(o.Role) {
					if code != imerr.Forbidden {
						t.Fatalf("%s as %s: %v, want forbidden", o.Name, role, err)
					}
					return
				}
				if code == imerr.Forbidden || code == imerr.Unauthorized || code == imerr.Internal {
					t.Fatalf("%s as %s: %v, want through the adapter", o.Name, role, err)
				}
			})
		}
		for _, role := range []string{"", "user", "admin"} {
			c := chat
			c.Role = role
			_, err := fntest.Call[json.RawMessage](t, e, o.Name, c, map[string]any{})
			if imerr.CodeOf(err) != imerr.Unauthorized {
				t.Fatalf("%s as a chat user with role %q: %v, want unauthorized", o.Name, role, err)
			}
		}
	}
	// An operator's token is no chat token: refused on a chat op.
	_, err := fntest.Call[json.RawMessage](t, e, "friend.list", callers[op.RoleSuperadmin], map[string]any{})
	fntest.WantCode(t, err, imerr.Forbidden)
}

func relogin(t *testing.T, e *testenv.Env, name string) endpoint.Caller {
	t.Helper()
	r := fntest.Must[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: name, Password: "operator-pass-1"})
	claims, err := fntest.OperatorSigner(t).Verify(r.Token)
	if err != nil {
		t.Fatal(err)
	}
	return endpoint.Caller{UserID: claims.UserID, SessionID: claims.SessionID, Role: claims.Role}
}

// lastAudit returns the newest audit entry of action.
func lastAudit(t *testing.T, e *testenv.Env, c endpoint.Caller, action string) admin.Entry {
	t.Helper()
	r := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", c, admin.AuditReq{Action: action, Limit: 1})
	if len(r.Entries) == 0 {
		t.Fatalf("no audit entry for %s", action)
	}
	return r.Entries[0]
}

// TestAuditEveryAction performs every changing admin op and finds its audit
// entry, with actor, target, before/after and IP; the log refuses updates and
// deletes, and queries filter by actor, target, action and time.
func TestAuditEveryAction(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	root, _ := fntest.Operator(t, e, "root", op.RoleSuperadmin)
	alice, _ := fntest.User(t, e, "alice", "d1")
	bob, _ := fntest.User(t, e, "bob", "d1")
	fntest.Befriend(t, e, alice, bob)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "club", Members: []int64{bob.UserID}})
	uid := strconv.FormatInt(alice.UserID, 10)
	gid := strconv.FormatInt(g.GroupID, 10)

	steps := []struct {
		op, action, target string
		req                any
	}{
		{"admin.users.ban", "user.ban", uid, admin.BanReq{UserID: alice.UserID, Reason: "spam"}},
		{"admin.users.unban", "user.unban", uid, admin.UserReq{UserID: alice.UserID}},
		{"admin.users.logout", "user.logout", uid, admin.UserReq{UserID: alice.UserID}},
		{"admin.users.password.reset", "user.password_reset", uid, admin.ResetPasswordReq{UserID: alice.UserID, Password: "new-password-1"}},
		{"admin.groups.mute", "group.mute_all", gid, admin.GroupMuteReq{GroupID: g.GroupID, Muted: true}},
		{"admin.groups.transfer", "group.transfer", gid, admin.GroupTransferReq{GroupID: g.GroupID, UserID: bob.UserID}},
		{"admin.groups.dismiss", "group.dismiss", gid, admin.GroupReq{GroupID: g.GroupID}},
		{"admin.operators.create", "operator.create", "", admin.CreateOperatorReq{Username: "helper", Password: "helper-pass-1", Role: op.RoleAuditor}},
		{"admin.totp.setup", "operator.totp_setup", strconv.FormatInt(root.UserID, 10), admin.Empty{}},
	}
	for _, st := range steps {
		if _, err := fntest.Call[json.RawMessage](t, e, st.op, root, st.req); err != nil {
			t.Fatalf("%s: %v", st.op, err)
		}
		en := lastAudit(t, e, root, st.action)
		if en.ActorKind != admin.KindOperator || en.ActorID != root.UserID || en.ActorName != "root" || en.IP != "203.0.113.7" {
			t.Fatalf("%s: audit actor %+v", st.op, en)
		}
		if st.target != "" && en.TargetID != st.target {
			t.Fatalf("%s: audit target %q, want %q", st.op, en.TargetID, st.target)
		}
	}
	helper := lastAudit(t, e, root, "operator.create")
	hid, _ := strconv.ParseInt(helper.TargetID, 10, 64)
	role := op.RoleOperator
	fntest.Must[admin.Operator](t, e, "admin.operators.update", root, admin.UpdateOperatorReq{OperatorID: hid, Role: &role})
	up := lastAudit(t, e, root, "operator.update")
	if string(up.Before) != `{"disabled":false,"role":"auditor","totp":false}` || string(up.After) != `{"disabled":false,"role":"operator","totp":false}` {
		t.Fatalf("operator.update before/after: %s -> %s", up.Before, up.After)
	}
	ban := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", root, admin.AuditReq{TargetKind: admin.KindUser, TargetID: uid, Action: "user.ban"})
	if len(ban.Entries) != 1 || string(ban.Entries[0].Before) != `{"banned":false}` || string(ban.Entries[0].After) != `{"banned":true,"reason":"spam"}` {
		t.Fatalf("ban entry %+v", ban.Entries)
	}
	dis := lastAudit(t, e, root, "group.dismiss")
	if string(dis.After) != fmt.Sprintf(`{"owner":%d,"mute_all":true,"dismissed":true}`, bob.UserID) {
		t.Fatalf("dismiss after: %s", dis.After)
	}

	// Filters: by actor, and by time (nothing before the test began).
	mine := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", root, admin.AuditReq{ActorKind: admin.KindOperator, ActorID: root.UserID, Limit: 3})
	if len(mine.Entries) != 3 || !mine.HasMore || mine.Entries[0].ID <= mine.Entries[2].ID {
		t.Fatalf("actor page: %+v", mine)
	}
	next := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", root, admin.AuditReq{ActorKind: admin.KindOperator, ActorID: root.UserID, Before: mine.Entries[2].ID, Limit: 3})
	if len(next.Entries) == 0 || next.Entries[0].ID >= mine.Entries[2].ID {
		t.Fatalf("next page: %+v", next)
	}
	old := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", root, admin.AuditReq{Until: time.Now().Add(-time.Hour).UnixMilli()})
	if len(old.Entries) != 0 {
		t.Fatalf("entries before the test: %+v", old.Entries)
	}

	// Append-only: the database itself refuses.
	if _, err := e.DB.Exec("UPDATE audit_log SET action = 'x'"); err == nil {
		t.Fatal("audit_log update allowed")
	}
	if _, err := e.DB.Exec("DELETE FROM audit_log"); err == nil {
		t.Fatal("audit_log delete allowed")
	}
}

// TestBan: a banned user's login, refresh and session checks are refused; a ban
// with an end lets them back once it is over; unban lifts it.
func TestBan(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	root, _ := fntest.Operator(t, e, "root", op.RoleOperator)
	alice, tok := fntest.User(t, e, "alice", "d1")

	ended := fntest.Must[admin.Ended](t, e, "admin.users.ban", root, admin.BanReq{UserID: alice.UserID, Reason: "abuse"})
	if ended.Sessions != 1 {
		t.Fatalf("ban ended %d sessions", ended.Sessions)
	}
	_, err := fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123", DeviceID: "d2"})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[account.Tokens](t, e, "account.refresh", endpoint.Caller{}, account.RefreshReq{RefreshToken: tok.RefreshToken})
	fntest.WantCode(t, err, imerr.Unauthorized) // the session ended with the ban
	list := fntest.Must[admin.UsersResp](t, e, "admin.users.list", root, admin.UsersReq{Banned: true})
	if len(list.Users) != 1 || list.Users[0].ID != alice.UserID || list.Users[0].BanReason != "abuse" {
		t.Fatalf("banned users %+v", list)
	}
	fntest.Must[admin.Empty](t, e, "admin.users.unban", root, admin.UserReq{UserID: alice.UserID})
	fntest.Login(t, e, "alice", "d2")

	// A ban that ends: refused while it lasts, allowed once it is over (moved
	// into the past in the database rather than waited for).
	_, err = fntest.Call[admin.Ended](t, e, "admin.users.ban", root, admin.BanReq{UserID: alice.UserID, Reason: "cool off", Until: time.Now().Add(-time.Minute).UnixMilli()})
	fntest.WantCode(t, err, imerr.BadRequest)
	fntest.Must[admin.Ended](t, e, "admin.users.ban", root, admin.BanReq{UserID: alice.UserID, Reason: "cool off", Until: time.Now().Add(time.Hour).UnixMilli()})
	_, err = fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123", DeviceID: "d3"})
	fntest.WantCode(t, err, imerr.Forbidden)
	if _, err := e.DB.Exec("UPDATE users SET banned_until = ? WHERE id = ?", time.Now().UTC().Add(-time.Second), alice.UserID); err != nil {
		t.Fatal(err)
	}
	fntest.Login(t, e, "alice", "d3")
	got := fntest.Must[admin.UserDetail](t, e, "admin.users.get", root, admin.UserReq{UserID: alice.UserID})
	if got.User.Banned || got.Counts.Sessions != 1 || len(got.Devices) != 1 || got.Devices[0].DeviceID != "d3" {
		t.Fatalf("user after the ban ran out: %+v", got)
	}

	_, err = fntest.Call[admin.Ended](t, e, "admin.users.ban", root, admin.BanReq{UserID: 999999, Reason: "x"})
	fntest.WantCode(t, err, imerr.NotFound)
	_, err = fntest.Call[admin.Ended](t, e, "admin.users.ban", root, admin.BanReq{UserID: alice.UserID})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestOperatorSessions: a logout, a disabled operator or a role change ends the
// operator's sessions; failed logins are audited and lock the name.
func TestOperatorSessions(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Admin: admin.Config{LoginFailures: 3}})
	root, _ := fntest.Operator(t, e, "root", op.RoleSuperadmin)
	mod, _ := fntest.Operator(t, e, "mod", op.RoleOperator)

	me := fntest.Must[admin.Operator](t, e, "admin.me", mod, admin.Empty{})
	if me.Username != "mod" || me.Role != op.RoleOperator {
		t.Fatalf("me %+v", me)
	}
	fntest.Must[admin.Empty](t, e, "admin.logout", mod, admin.Empty{})
	_, err := fntest.Call[admin.Operator](t, e, "admin.me", mod, admin.Empty{})
	fntest.WantCode(t, err, imerr.Unauthorized)
	if en := lastAudit(t, e, root, "operator.logout"); en.ActorID != mod.UserID {
		t.Fatalf("logout entry %+v", en)
	}

	mod = relogin(t, e, "mod")
	yes := true
	fntest.Must[admin.Operator](t, e, "admin.operators.update", root, admin.UpdateOperatorReq{OperatorID: mod.UserID, Disabled: &yes})
	_, err = fntest.Call[admin.Operator](t, e, "admin.me", mod, admin.Empty{})
	fntest.WantCode(t, err, imerr.Unauthorized)
	_, err = fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: "mod", Password: "operator-pass-1"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	// Nobody changes their own role or disables themselves.
	_, err = fntest.Call[admin.Operator](t, e, "admin.operators.update", root, admin.UpdateOperatorReq{OperatorID: root.UserID, Disabled: &yes})
	fntest.WantCode(t, err, imerr.Forbidden)

	for range 3 {
		_, err = fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{ClientIP: "198.51.100.1"}, admin.LoginReq{Username: "root", Password: "wrong-password"})
		fntest.WantCode(t, err, imerr.Unauthorized)
	}
	_, err = fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: "root", Password: "operator-pass-1"})
	fntest.WantCode(t, err, imerr.RateLimited)
	fail := lastAudit(t, e, root, "operator.login_failed")
	if fail.IP != "198.51.100.1" || fail.ActorName != "root" || fail.Detail != "wrong password" {
		t.Fatalf("login failure entry %+v", fail)
	}
}

// TestTOTP: the RFC 6238 test vector, then setup, enable and a login that needs
// the code (used once).
func TestTOTP(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	root, _ := fntest.Operator(t, e, "root", op.RoleAuditor)
	setup := fntest.Must[admin.TOTPSetup](t, e, "admin.totp.setup", root, admin.Empty{})
	code := admin.TOTPCode(t, setup.Secret, time.Now())
	_, err := fntest.Call[admin.Operator](t, e, "admin.totp.enable", root, admin.TOTPEnableReq{Code: "000000"})
	if code != "000000" {
		fntest.WantCode(t, err, imerr.BadRequest)
	}
	on := fntest.Must[admin.Operator](t, e, "admin.totp.enable", root, admin.TOTPEnableReq{Code: code})
	if !on.TOTP {
		t.Fatal("totp not on")
	}
	lastAudit(t, e, root, "operator.totp_enabled")
	_, err = fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: "root", Password: "operator-pass-1"})
	fntest.WantCode(t, err, imerr.Unauthorized)
	// The code that enabled it is spent; the next step's works.
	_, err = fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: "root", Password: "operator-pass-1", TOTP: code})
	fntest.WantCode(t, err, imerr.Unauthorized)
	next := admin.TOTPCode(t, setup.Secret, time.Now().Add(30*time.Second))
	if _, err := fntest.Call[admin.LoginResp](t, e, "admin.login", endpoint.Caller{}, admin.LoginReq{Username: "root", Password: "operator-pass-1", TOTP: next}); err != nil {
		t.Fatal(err)
	}
}

// TestGroups: search, members, and the platform's changes reach the members as
// the group's system messages.
func TestGroups(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	root, _ := fntest.Operator(t, e, "root", op.RoleOperator)
	alice, _ := fntest.User(t, e, "alice", "d1")
	bob, _ := fntest.User(t, e, "bob", "d1")
	fntest.Befriend(t, e, alice, bob)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "Chess club", Members: []int64{bob.UserID}})
	fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "Knitting"})

	found := fntest.Must[admin.GroupsResp](t, e, "admin.groups.list", root, admin.GroupsReq{Query: "chess"})
	if len(found.Groups) != 1 || found.Groups[0].ID != g.GroupID || found.Groups[0].MemberCount != 2 {
		t.Fatalf("search: %+v", found)
	}
	d := fntest.Must[admin.GroupDetail](t, e, "admin.groups.get", root, admin.GroupReq{GroupID: g.GroupID})
	if len(d.Members) != 2 || d.Members[0].Role != "owner" || d.Members[1].Username != "bob" {
		t.Fatalf("members %+v", d.Members)
	}
	_, err := fntest.Call[admin.Empty](t, e, "admin.groups.transfer", root, admin.GroupTransferReq{GroupID: g.GroupID, UserID: 999999})
	fntest.WantCode(t, err, imerr.NotFound)
	fntest.Must[admin.Empty](t, e, "admin.groups.transfer", root, admin.GroupTransferReq{GroupID: g.GroupID, UserID: bob.UserID})
	fntest.Must[admin.Empty](t, e, "admin.groups.mute", root, admin.GroupMuteReq{GroupID: g.GroupID, Muted: true})
	info := fntest.Must[group.Info](t, e, "group.get", bob, group.GroupReq{GroupID: g.GroupID})
	if info.OwnerID != bob.UserID || !info.MuteAll || info.MyRole != "owner" {
		t.Fatalf("group after transfer and mute: %+v", info)
	}
	fntest.Must[admin.Empty](t, e, "admin.groups.dismiss", root, admin.GroupReq{GroupID: g.GroupID})
	fntest.Must[admin.Empty](t, e, "admin.groups.dismiss", root, admin.GroupReq{GroupID: g.GroupID}) // a retry
	_, err = fntest.Call[admin.Empty](t, e, "admin.groups.mute", root, admin.GroupMuteReq{GroupID: g.GroupID})
	fntest.WantCode(t, err, imerr.Conflict)
	users := fntest.Must[admin.UsersResp](t, e, "admin.users.list", root, admin.UsersReq{Query: "ali"})
	if len(users.Users) != 1 || users.Users[0].Username != "alice" {
		t.Fatalf("user search %+v", users)
	}
	_ = context.Background()
}

// TestSecurityEvents: session revocations, device kicks and an operator refused admin ops
// RefusalsAudited times within a minute reach the audit log (from IM_EVENTS).
func TestSecurityEvents(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Admin: admin.Config{RefusalsAudited: 3}, Account: account.Config{MaxDevices: 1}})
	reader, _ := fntest.Operator(t, e, "reader", op.RoleAuditor)
	alice, _ := fntest.User(t, e, "alice", "d1")
	// The device limit (1): a second device's connection kicks the first's.
	bob, _ := fntest.User(t, e, "bob", "phone")
	laptop, _ := fntest.Login(t, e, "bob", "laptop")
	fntest.Must[wire.ConnectResp](t, e, "session.connect", bob, wire.ConnectReq{ConnID: "c-phone", EdgeID: "e1"})
	fntest.Must[wire.ConnectResp](t, e, "session.connect", laptop, wire.ConnectReq{ConnID: "c-laptop", EdgeID: "e1"})
	fntest.Must[json.RawMessage](t, e, "account.logout", alice, map[string]any{})
	for range 3 {
		_, err := fntest.Call[admin.Ended](t, e, "admin.users.ban", reader, admin.BanReq{UserID: alice.UserID, Reason: "x"})
		fntest.WantCode(t, err, imerr.Forbidden)
	}
	find := func(action string) admin.Entry {
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := fntest.Must[admin.AuditResp](t, e, "admin.audit.list", reader, admin.AuditReq{Action: action, Limit: 1})
			if len(r.Entries) == 1 {
				return r.Entries[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s entry", action)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if en := find("session.revoked"); en.TargetID != strconv.FormatInt(alice.UserID, 10) || en.Detail != "session "+alice.SessionID {
		t.Fatalf("revocation entry %+v", en)
	}
	if en := find("session.kicked"); en.TargetID != strconv.FormatInt(bob.UserID, 10) || en.Detail != "connection c-phone closed: signed in on another device (device laptop)" {
		t.Fatalf("kick entry %+v", en)
	}
	if en := find("admin.refused"); en.ActorID != reader.UserID || en.ActorKind != admin.KindOperator || en.TargetID != "admin.users.ban" {
		t.Fatalf("refusal entry %+v", en)
	}
}

// TestRiskThroughBackOffice: the review queue's "delete and ban" is the back
// office's ban (the worker wires risk's Banner to it), and risk's audit entries
// land in the audit log under the operator's name.
func TestRiskThroughBackOffice(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	mod, _ := fntest.Operator(t, e, "mod", op.RoleOperator)
	alice, _ := fntest.User(t, e, "alice", "d1")
	bob, _ := fntest.User(t, e, "bob", "d1")
	rep := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{UserID: alice.UserID, Reason: "fraud"})
	fntest.Must[risk.Item](t, e, "admin.review.delete", mod, risk.ReviewDeleteReq{ID: rep.ID, Ban: true, BanReason: "fraud"})
	_, err := fntest.Call[account.Tokens](t, e, "account.login", endpoint.Caller{}, account.LoginReq{Username: "alice", Password: "password-123", DeviceID: "d2"})
	fntest.WantCode(t, err, imerr.Forbidden)
	ban := lastAudit(t, e, mod, "user.ban")
	if ban.ActorName != "mod" || ban.TargetID != strconv.FormatInt(alice.UserID, 10) || string(ban.After) != `{"banned":true,"reason":"fraud"}` {
		t.Fatalf("ban entry %+v", ban)
	}
	if en := lastAudit(t, e, mod, "admin.review.delete"); en.ActorID != mod.UserID || en.ActorName != "mod" {
		t.Fatalf("review entry %+v", en)
	}
}
