package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"natter/edge/gateway"
	"natter/shared/imerr"
	"natter/shared/wire"
)

func TestHTTPOps(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	tok := f.token(t, uid, "s1")

	tests := []struct {
		name     string
		method   string
		path     string
		token    string
		body     string
		header   map[string]string
		status   int
		code     imerr.Code // for errors
		wantData string     // for 200: the data the function got
		wantUser int64
	}{
		{name: "generic op, body verbatim", method: "POST", path: "/api/v1/msg.send", token: tok,
			body: `{"text":"hi","n":1}`, status: 200, wantData: `{"text":"hi","n":1}`, wantUser: uid},
		{name: "REST route", method: "POST", path: "/api/v1/messages", token: tok,
			body: `{"text":"hi"}`, status: 200, wantData: `{"text":"hi"}`, wantUser: uid},
		{name: "empty body", method: "POST", path: "/api/v1/msg.send", token: tok, status: 200, wantData: `null`, wantUser: uid},
		{name: "int path param", method: "GET", path: "/api/v1/users/42", token: tok,
			status: 200, wantData: `{"user_id":42}`, wantUser: uid},
		{name: "path overrides body", method: "PUT", path: "/api/v1/users/42/profile", token: tok,
			body: `{"user_id":"7","nick":"ann"}`, status: 200, wantData: `{"nick":"ann","user_id":42}`, wantUser: uid},
		{name: "string path and int query params", method: "GET", path: "/api/v1/messages/conversations/c9/history?limit=20&before=100&dir=up", token: tok,
			status: 200, wantData: `{"before":100,"conv_id":"c9","dir":"up","limit":20}`, wantUser: uid},
		{name: "bad int path param", method: "GET", path: "/api/v1/users/abc", token: tok, status: 400, code: imerr.BadRequest},
		{name: "bad int query param", method: "GET", path: "/api/v1/messages/conversations/c9/history?limit=ten", token: tok, status: 400, code: imerr.BadRequest},
		{name: "body not an object", method: "POST", path: "/api/v1/msg.send", token: tok, body: `[1,2]`, status: 400, code: imerr.BadRequest},
		{name: "body not JSON", method: "POST", path: "/api/v1/msg.send", token: tok, body: `{"a":`, status: 400, code: imerr.BadRequest},
		{name: "public op without token", method: "POST", path: "/api/v1/users/login", body: `{"name":"ann"}`,
			status: 200, wantData: `{"name":"ann"}`, wantUser: 0},
		{name: "public generic op without token", method: "POST", path: "/api/v1/account.login", status: 200, wantData: `null`},
		{name: "public op with token acts for the user", method: "POST", path: "/api/v1/account.login", token: tok,
			status: 200, wantData: `null`, wantUser: uid},
		{name: "public op ignores a bad token", method: "POST", path: "/api/v1/account.login", token: "forged", status: 200, wantData: `null`},
		{name: "user op without token", method: "POST", path: "/api/v1/msg.send", body: `{}`, status: 401, code: imerr.Unauthorized},
		{name: "user op with forged token", method: "GET", path: "/api/v1/users/42", token: "x.y.z", status: 401, code: imerr.Unauthorized},
		{name: "function error", method: "POST", path: "/api/v1/users/logout", token: tok, status: 409, code: imerr.Conflict},
		{name: "no function serves it", method: "GET", path: "/api/v1/users/42/devices", token: tok, status: 503, code: imerr.Unavailable},
		{name: "internal op", method: "POST", path: "/api/v1/session.connect", token: tok, body: `{}`, status: 404, code: imerr.NotFound},
		{name: "unknown op", method: "POST", path: "/api/v1/no.such.op", token: tok, status: 404, code: imerr.NotFound},
		{name: "unknown route", method: "GET", path: "/api/v1/nothing/here", token: tok, status: 404, code: imerr.NotFound},
		{name: "wrong method", method: "GET", path: "/api/v1/msg.send", token: tok, status: 404, code: imerr.NotFound},
		{name: "outside the API", method: "GET", path: "/nope", status: 404, code: imerr.NotFound},
		{name: "body over 1 MB", method: "POST", path: "/api/v1/users/register",
			body: `{"pad":"` + strings.Repeat("x", wire.MaxFrame) + `"}`, status: 413, code: imerr.TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := f.httpDo(t, tt.method, tt.path, tt.token, tt.body, tt.header)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%s)", status, tt.status, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			if tt.status != http.StatusOK {
				if code := errorCode(t, body); code != tt.code {
					t.Fatalf("code %s, want %s", code, tt.code)
				}
				return
			}
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if string(e.Data) != tt.wantData || e.User != tt.wantUser || e.Req == "" || e.Conn != "" {
				t.Fatalf("function saw %+v, want data %s user %d", e, tt.wantData, tt.wantUser)
			}
		})
	}
}

// TestUnknownOp: an op no client may call answers not_found naming it, over the
// WebSocket and over HTTP, and an internal op looks exactly like an unknown one.
func TestUnknownOp(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	tok := f.token(t, uid, "s1")
	c := f.dial(t, uid, "s2")
	tests := []struct {
		name string
		op   string
		msg  string
	}{
		{"unknown", "no.such.op", `unknown op "no.such.op"`},
		{"internal", "session.connect", `unknown op "session.connect"`},
		{"quoted as JSON", "a\"b\x01<", `unknown op "a\"b\u0001\u003c"`},
		{"long name cut", strings.Repeat("x", 100), `unknown op "` + strings.Repeat("x", 64) + `..."`},
	}
	// What each transport answered, with the op's name replaced, by test name.
	wsSeen, httpSeen := map[string]string{}, map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(t, "u", tt.op, map[string]string{"conn_id": "x"})
			frame := c.next(t)
			var r wire.Reply
			if err := json.Unmarshal(frame, &r); err != nil {
				t.Fatalf("reply %s: %v", frame, err)
			}
			if r.OK || r.ID != "u" || r.Error == nil || r.Error.Code != imerr.NotFound || r.Error.Message != tt.msg {
				t.Fatalf("ws: got %s, want not_found %q", frame, tt.msg)
			}
			wsSeen[tt.name] = strings.ReplaceAll(string(frame), tt.op, "OP")

			status, hdr, body := f.httpDo(t, "POST", "/api/v1/"+url.PathEscape(tt.op), tok, `{"conn_id":"x"}`, nil)
			var e struct {
				Error imerr.Error `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || status != http.StatusNotFound ||
				e.Error.Code != imerr.NotFound || e.Error.Message != tt.msg {
				t.Fatalf("http: %d %s, want 404 not_found %q", status, body, tt.msg)
			}
			hdr.Del("Date")
			hdr.Del("Content-Length")
			httpSeen[tt.name] = strings.ReplaceAll(string(body), tt.op, "OP") + fmt.Sprint(hdr)
		})
	}
	if wsSeen["internal"] != wsSeen["unknown"] || httpSeen["internal"] != httpSeen["unknown"] {
		t.Fatalf("an internal op does not look like an unknown one:\nws   %s\n     %s\nhttp %s\n     %s",
			wsSeen["internal"], wsSeen["unknown"], httpSeen["internal"], httpSeen["unknown"])
	}
	if got := f.metric(t, "natter_edge_requests_total", "transport", "ws", "op", "invalid", "code", "not_found"); got != float64(len(tests)) {
		t.Fatalf("requests_total{ws,invalid,not_found} = %v, want %d", got, len(tests))
	}
}

func TestHTTPRequestID(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, sent string
		kept       bool
	}{
		{"client id kept", "req-123.abc:9", true},
		{"absent", "", false},
		{"insane id replaced", "has spaces and {braces}", false},
		{"too long replaced", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, hdr, body := f.httpDo(t, "POST", "/api/v1/account.login", "", "", map[string]string{"X-Request-Id": tt.sent})
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Req == "" || hdr.Get("X-Request-Id") != e.Req || (e.Req == tt.sent) != tt.kept {
				t.Fatalf("sent %q, function saw %q, header %q", tt.sent, e.Req, hdr.Get("X-Request-Id"))
			}
		})
	}
}

func TestOperatorEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(t, newUser(), "s1")
	c.call(t, "m", "msg.send", nil)
	f.httpDo(t, "POST", "/api/v1/account.login", "", "", nil)
	// Counted once the write returns, which may be after the client has read it.
	waitFor(t, "frames out", func() bool { return f.metric(t, "natter_edge_frames_out_total") == 1 })

	if status, _, _ := f.httpDo(t, "GET", "/healthz", "", "", nil); status != http.StatusOK {
		t.Fatalf("healthz %d", status)
	}
	// Ready once it follows session revocations, moments after it starts.
	waitFor(t, "readyz 200", func() bool {
		status, _, _ := f.httpDo(t, "GET", "/readyz", "", "", nil)
		return status == http.StatusOK
	})
	status, _, body := f.httpDo(t, "GET", "/metrics", "", "", nil)
	if status != http.StatusOK {
		t.Fatalf("metrics %d", status)
	}
	for _, want := range []string{
		"natter_edge_connections 1",
		"natter_edge_users 1",
		"natter_edge_frames_in_total 1",
		"natter_edge_frames_out_total 1",
		`natter_edge_requests_total{code="ok",op="msg.send",transport="ws"} 1`,
		`natter_edge_requests_total{code="ok",op="account.login",transport="http"} 1`,
		`natter_edge_requests_total{code="ok",op="session.connect",transport="ws"} 1`,
		`natter_edge_request_duration_seconds_count{op="msg.send",transport="ws"} 1`,
		"natter_edge_pushes_dropped_total 0",
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	f.gw.MarkNotReady()
	if status, _, _ := f.httpDo(t, "GET", "/readyz", "", "", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz when not ready: %d", status)
	}
	if status, _, _ := f.httpDo(t, "GET", "/healthz", "", "", nil); status != http.StatusOK {
		t.Fatalf("healthz when not ready: %d", status)
	}
}

// TestHTTPRateLimits: unauthenticated calls are limited per client address, and
// authenticated ones per user, with 429 rate_limited and Retry-After.
func TestHTTPRateLimits(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) {
		c.HTTPPublicLimit, c.HTTPPublicBurst = 0.1, 3
		c.HTTPUserLimit, c.HTTPUserBurst = 0.1, 2
	})
	for i := range 3 {
		if status, _, body := f.httpDo(t, "POST", "/api/v1/account.login", "", "", nil); status != 200 {
			t.Fatalf("public call %d: %d %s", i, status, body)
		}
	}
	status, hdr, body := f.httpDo(t, "POST", "/api/v1/account.login", "", "", nil)
	if status != 429 || errorCode(t, body) != imerr.RateLimited || hdr.Get("Retry-After") == "" {
		t.Fatalf("4th public call: %d %s", status, body)
	}
	// Users have their own buckets, whatever their address.
	alice, bob := f.token(t, newUser(), "s1"), f.token(t, newUser(), "s2")
	for i := range 2 {
		if status, _, body := f.httpDo(t, "POST", "/api/v1/msg.send", alice, "", nil); status != 200 {
			t.Fatalf("alice call %d: %d %s", i, status, body)
		}
	}
	if status, _, _ := f.httpDo(t, "POST", "/api/v1/msg.send", alice, "", nil); status != 429 {
		t.Fatalf("alice's 3rd call: %d", status)
	}
	if status, _, body := f.httpDo(t, "POST", "/api/v1/msg.send", bob, "", nil); status != 200 {
		t.Fatalf("bob limited by alice: %d %s", status, body)
	}
}

// TestHTTPPublicLimitWithToken: a token does not move login, register or refresh
// from the per-address limit to the (looser) per-user one.
func TestHTTPPublicLimitWithToken(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) {
		c.HTTPPublicLimit, c.HTTPPublicBurst = 0.1, 2
		c.HTTPUserLimit, c.HTTPUserBurst = 100, 100
	})
	tok := f.token(t, newUser(), "s1")
	for i := range 2 {
		if status, _, body := f.httpDo(t, "POST", "/api/v1/account.login", tok, "", nil); status != 200 {
			t.Fatalf("login %d: %d %s", i, status, body)
		}
	}
	if status, _, body := f.httpDo(t, "POST", "/api/v1/account.login", tok, "", nil); status != 429 {
		t.Fatalf("3rd login with a token: %d %s", status, body)
	}
}

// TestHTTPSessionCheck: HTTP calls get the session checks a WebSocket gets at
// connect: an ended session or a banned user is refused though the token is
// valid, and a live session is checked once per TTL, not per call.
func TestHTTPSessionCheck(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"live", f.token(t, newUser(), "s-live"), 200},
		{"ended session", f.token(t, newUser(), endedSession), 401},
		{"banned user", f.token(t, bannedUser, "s-banned"), 403},
	}
	for _, tt := range tests {
		if status, _, body := f.httpDo(t, "POST", "/api/v1/msg.send", tt.token, "", nil); status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, status, body, tt.status)
		}
	}
	before := f.stub.checks.Load()
	live := tests[0].token
	for range 5 {
		if status, _, body := f.httpDo(t, "POST", "/api/v1/msg.send", live, "", nil); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	if n := f.stub.checks.Load() - before; n != 0 {
		t.Fatalf("%d session checks for 5 calls of a session checked moments ago", n)
	}
}
