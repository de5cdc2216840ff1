package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/functions/admin"
	"natter/functions/fntest"
	"natter/loadtest/client"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/wire"
)

// adminLogin creates an operator with role and logs it in through the edge.
func (s *stack) adminLogin(t *testing.T, name, role string) string {
	t.Helper()
	if _, err := admin.New(admin.Deps{DB: s.env.DB}).CreateOperator(ctx(t), name, "operator-pass-1", role); err != nil {
		t.Fatal(err)
	}
	var r admin.LoginResp
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/admin/login", "", map[string]any{"username": name, "password": "operator-pass-1"}, &r); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	return r.Token
}

// routeOf fills an op's first route with ids.
func routeOf(o op.Op) (method, path string) {
	rt := o.Routes[0]
	path = rt.Path
	for _, p := range []string{"{user_id}", "{group_id}", "{operator_id}"} {
		path = strings.ReplaceAll(path, p, "1")
	}
	return rt.Method, path
}

// TestAdminThroughEdge: bans, unbans and force logouts through the edge's admin
// routes close the user's sockets at once and refuse their logins; every admin
// route refuses a chat token, and the chat paths refuse an operator token and
// do not route admin ops at all.
func TestAdminThroughEdge(t *testing.T) {
	s := start(t)
	opTok := s.adminLogin(t, "mod", op.RoleOperator)
	alice := s.user(t, "alice")
	// Whatever users.role says, a chat login is no operator: the token carries no
	// operator role (chat ops work with it, which the adapter refuses operators).
	if _, err := s.env.DB.Exec("UPDATE users SET role = 'superadmin' WHERE id = ?", alice.id); err != nil {
		t.Fatal(err)
	}
	chatTok := s.login(t, alice, "phone")
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, "/api/v1/social/friends", chatTok.AccessToken, nil, nil); err != nil {
		t.Fatalf("chat op of a user whose users.role says superadmin: %v", err)
	}
	phone := s.dial(t, chatTok.AccessToken)
	laptop := s.device(t, alice, "laptop")

	// A chat token on every admin route: unauthorized, never through.
	for _, o := range op.All {
		if !o.BackOffice() || o.Access != op.Admin {
			continue
		}
		method, path := routeOf(o)
		var body any
		if method != http.MethodGet {
			body = map[string]any{}
		}
		err := client.HTTP(ctx(t), s.base, method, path, chatTok.AccessToken, body, nil)
		if imerr.CodeOf(err) != imerr.Unauthorized {
			t.Fatalf("%s %s with a chat token: %v", method, path, err)
		}
	}
	// An operator token is no chat token, and admin ops are not on the chat paths.
	err := client.HTTP(ctx(t), s.base, http.MethodGet, "/api/v1/social/friends", opTok, nil, nil)
	fntest.WantCode(t, err, imerr.Unauthorized)
	err = client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/admin.users.list", opTok, map[string]any{}, nil)
	fntest.WantCode(t, err, imerr.NotFound)
	err = client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/admin.login", "", map[string]any{"username": "mod", "password": "operator-pass-1"}, nil)
	fntest.WantCode(t, err, imerr.NotFound)
	if err := laptop.Call(ctx(t), "admin.users.list", map[string]any{}, nil); imerr.CodeOf(err) != imerr.BadRequest && imerr.CodeOf(err) != imerr.NotFound {
		t.Fatalf("admin op over a chat socket: %v", err)
	}

	// Ban: both sockets close at once (session.kicked, 3501); login refused.
	var ended admin.Ended
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, fmt.Sprintf("/api/v1/admin/users/%d/ban", alice.id), opTok,
		map[string]any{"reason": "spam"}, &ended); err != nil {
		t.Fatal(err)
	}
	if ended.Sessions != 2 {
		t.Fatalf("ban ended %d sessions", ended.Sessions)
	}
	for _, c := range []*client.Client{phone, laptop} {
		select {
		case <-c.Done():
			if c.CloseCode() != wire.CloseKicked {
				t.Fatalf("close code %d", c.CloseCode())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("banned user's socket still open")
		}
	}
	if _, err := client.Login(ctx(t), s.base, alice.name, "password-123", "tablet"); imerr.CodeOf(err) != imerr.Forbidden {
		t.Fatalf("banned login: %v", err)
	}
	// Unban: back in. Force logout: the new socket closes.
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, fmt.Sprintf("/api/v1/admin/users/%d/unban", alice.id), opTok, map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	tablet := s.device(t, alice, "tablet")
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, fmt.Sprintf("/api/v1/admin/users/%d/logout", alice.id), opTok, map[string]any{}, &ended); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tablet.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("force logout left the socket open")
	}

	var audit admin.AuditResp
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, fmt.Sprintf("/api/v1/admin/audit?target_kind=user&target_id=%d&limit=10", alice.id), opTok, nil, &audit); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range audit.Entries {
		if en.ActorKind == admin.KindOperator {
			actions = append(actions, en.Action)
		}
	}
	if strings.Join(actions, ",") != "user.logout,user.unban,user.ban" {
		t.Fatalf("audit of alice: %v", actions)
	}
	// An auditor reads but does not ban.
	audTok := s.adminLogin(t, "reader", op.RoleAuditor)
	err = client.HTTP(ctx(t), s.base, http.MethodPost, fmt.Sprintf("/api/v1/admin/users/%d/ban", alice.id), audTok, map[string]any{"reason": "x"}, nil)
	fntest.WantCode(t, err, imerr.Forbidden)
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, "/api/v1/admin/users?query=alice", audTok, nil, nil); err != nil {
		t.Fatal(err)
	}
}
