package gateway_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"

	"natter/edge/gateway"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/wire"
)

// wsHeaders are a WebSocket handshake's headers, for requests the edge must refuse.
var wsHeaders = map[string]string{
	"Connection":            "Upgrade",
	"Upgrade":               "websocket",
	"Sec-WebSocket-Version": "13",
	"Sec-WebSocket-Key":     "dGhlIHNhbXBsZSBub25jZQ==",
}

func TestUpgradeAuth(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	good := f.token(t, uid, "s1")
	forger, _ := auth.NewSigner(config.Auth{Secret: "another-secret-0123456789", AccessTTL: time.Hour, Dev: true})
	forged, _, _ := forger.Issue(auth.Claims{UserID: uid, SessionID: "s1"}, time.Now())
	expired, _, _ := f.signer.Issue(auth.Claims{UserID: uid, SessionID: "s1"}, time.Now().Add(-2*time.Hour))

	tests := []struct {
		name   string
		query  string
		header string // Authorization
		want   int
	}{
		{"query token", "token=" + good + "&platform=ios", "", http.StatusSwitchingProtocols},
		{"bearer header", "platform=web", "Bearer " + good, http.StatusSwitchingProtocols},
		{"missing token", "", "", http.StatusUnauthorized},
		{"forged token", "token=" + forged, "", http.StatusUnauthorized},
		{"expired token", "token=" + expired, "", http.StatusUnauthorized},
		{"garbage bearer", "", "Bearer not-a-jwt", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want != http.StatusSwitchingProtocols {
				hdr := map[string]string{"Authorization": tt.header}
				for k, v := range wsHeaders {
					hdr[k] = v
				}
				status, _, body := f.httpDo(t, "GET", "/ws?"+tt.query, "", "", hdr)
				if status != tt.want || errorCode(t, body) != imerr.Unauthorized {
					t.Fatalf("got %d %s, want %d unauthorized", status, body, tt.want)
				}
				select {
				case cc := <-f.stub.connects:
					t.Fatalf("session.connect called for a refused token: %+v", cc)
				default:
				}
				return
			}
			var opts []dialOpt
			if tt.header != "" {
				opts = append(opts, withHeader("Authorization", tt.header))
			}
			c := f.dialQuery(t, tt.query, opts...)
			if r := c.call(t, "p", gateway.OpPing, nil); !r.OK {
				t.Fatalf("ping: %+v", r)
			}
			cc := <-f.stub.connects
			platform := strings.TrimPrefix(tt.query[strings.Index(tt.query, "platform="):], "platform=")
			if cc.Caller.UserID != uid || cc.Caller.SessionID != "s1" || cc.Caller.DeviceID != "dev-s1" ||
				cc.Caller.Role != "user" || cc.Caller.RequestID == "" || cc.Caller.ConnID != cc.Req.ConnID ||
				cc.Req.ConnID == "" || cc.Req.EdgeID != "edge-t" || cc.Req.Platform != platform {
				t.Fatalf("session.connect got %+v", cc)
			}
			if id := c.connID(t); id != cc.Req.ConnID {
				t.Fatalf("requests carry conn %q, connect said %q", id, cc.Req.ConnID)
			}
		})
	}
}

func TestUpgradeRefusedBySessionConnect(t *testing.T) {
	f := newFixture(t, nil)
	hdr := map[string]string{}
	for k, v := range wsHeaders {
		hdr[k] = v
	}
	status, _, body := f.httpDo(t, "GET", "/ws?token="+f.token(t, bannedUser, "s1"), "", "", hdr)
	if status != http.StatusForbidden || errorCode(t, body) != imerr.Forbidden {
		t.Fatalf("got %d %s, want 403 forbidden", status, body)
	}
	if cc := <-f.stub.connects; cc.Caller.UserID != bannedUser {
		t.Fatalf("connect call %+v", cc)
	}
	if got := f.metric(t, "natter_edge_connections"); got != 0 {
		t.Fatalf("connections = %v after a refused connect", got)
	}
	if got := f.metric(t, "natter_edge_users"); got != 0 {
		t.Fatalf("users = %v after a refused connect: subscription leaked", got)
	}
	select {
	case d := <-f.stub.disconnects:
		t.Fatalf("disconnect for a connection never made: %+v", d)
	default:
	}

	// A plain GET with a good token is no WebSocket: refused before session.connect.
	status, _, body = f.httpDo(t, "GET", "/ws", f.token(t, newUser(), "s1"), "", nil)
	if status != http.StatusBadRequest || errorCode(t, body) != imerr.BadRequest {
		t.Fatalf("plain GET: %d %s", status, body)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	c := f.dial(t, uid, "s1")

	r := c.call(t, "c1", "msg.send", map[string]any{"text": "hi"})
	var e echo
	if err := json.Unmarshal(r.Data, &e); err != nil || !r.OK {
		t.Fatalf("reply %+v: %v", r, err)
	}
	if e.User != uid || e.Session != "s1" || e.Device != "dev-s1" || e.Conn == "" || e.Req == "" || string(e.Data) != `{"text":"hi"}` {
		t.Fatalf("function saw %+v", e)
	}

	tests := []struct {
		op   string
		want imerr.Code
	}{
		{failingOp, imerr.Conflict},   // the function's error, passed through
		{absentOp, imerr.Unavailable}, // nobody serves it
	}
	for _, tt := range tests {
		r := c.call(t, "e-"+tt.op, tt.op, nil)
		if r.OK || r.Error == nil || r.Error.Code != tt.want {
			t.Fatalf("%s: got %+v, want %s", tt.op, r, tt.want)
		}
	}
	if got := f.metric(t, "natter_edge_requests_total", "transport", "ws", "op", "msg.send", "code", "ok"); got != 1 {
		t.Fatalf("requests_total{msg.send,ok} = %v", got)
	}
}

func TestBadFrames(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(t, newUser(), "s1")
	tests := []struct {
		name   string
		frame  string
		wantID string
		msg    string
	}{
		{"malformed JSON", `{"id":"x","op":`, "", ""},
		{"not an object", `[1,2]`, "", ""},
		{"missing id", `{"op":"msg.send","data":{}}`, "", "missing id"},
		// Not echoed: it would make the reply as large as the frame, or six times
		// that in escaped control characters.
		{"long id", `{"id":"` + strings.Repeat(`\u0001`, wire.MaxID+1) + `","op":"ping"}`, "", "id over 128 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(t, tt.frame)
			r := c.reply(t)
			if r.OK || r.Error == nil || r.Error.Code != imerr.BadRequest || r.ID != tt.wantID {
				t.Fatalf("got %+v, want bad_request with id %q", r, tt.wantID)
			}
			if tt.msg != "" && r.Error.Message != tt.msg {
				t.Fatalf("message %q, want %q", r.Error.Message, tt.msg)
			}
			if r := c.call(t, "after", gateway.OpPing, nil); !r.OK {
				t.Fatalf("connection unusable after a bad frame: %+v", r)
			}
		})
	}
	// An id of MaxID bytes is echoed, however long its JSON (call checks the id).
	if r := c.call(t, strings.Repeat("\x01", wire.MaxID), gateway.OpPing, nil); !r.OK {
		t.Fatalf("ping with an id of %d bytes: %+v", wire.MaxID, r)
	}
}

func TestRequestsInParallel(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(t, newUser(), "s1")
	c.send(t, "slow", slowOp, map[string]int{"sleep_ms": 300})
	c.send(t, "fast", "msg.send", nil)
	if r := c.reply(t); r.ID != "fast" {
		t.Fatalf("first reply %q: a slow request blocked the connection", r.ID)
	}
	if r := c.reply(t); r.ID != "slow" || !r.OK {
		t.Fatalf("second reply %+v", r)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.RateLimit, c.RateBurst = 0.01, 3 })
	c := f.dial(t, newUser(), "s1")
	// Malformed frames take tokens too: the limiter runs before any parsing. One
	// at a time: a connection's frames are handled in parallel.
	for _, frame := range []string{`{"id":"m0","op":`, `[1,2]`, `not json`} {
		c.sendRaw(t, frame)
		if r := c.reply(t); r.OK || r.Error.Code != imerr.BadRequest {
			t.Fatalf("%s: got %+v, want bad_request", frame, r)
		}
	}
	tests := []struct{ frame, id string }{
		{`{"id":"p1","op":"ping"}`, "p1"},
		{`{"op":"ping","id":"p2"}`, ""}, // its id is not first: not looked for
		{`{"id":"p3","op":`, "p3"},      // malformed, but the id comes first
	}
	for _, tt := range tests {
		c.sendRaw(t, tt.frame)
		if r := c.reply(t); r.OK || r.Error.Code != imerr.RateLimited || r.ID != tt.id {
			t.Fatalf("%s: got %+v, want rate_limited with id %q", tt.frame, r, tt.id)
		}
	}
	if c.isClosed() {
		t.Fatal("rate limiting closed the connection")
	}
	if got := f.metric(t, "natter_edge_requests_total", "op", "unparsed", "code", "rate_limited"); got != 3 {
		t.Fatalf("requests_total{unparsed,rate_limited} = %v, want 3", got)
	}
}

// TestPublicOpsLimitedPerAddress: logins over WebSockets share the per-address
// budget of HTTP logins, however many sockets carry them.
func TestPublicOpsLimitedPerAddress(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.HTTPPublicLimit, c.HTTPPublicBurst = 0.01, 3 })
	a, b := f.dial(t, newUser(), "s1"), f.dial(t, newUser(), "s2")
	for i, c := range []*client{a, b, a} {
		if r := c.call(t, fmt.Sprint("l", i), "account.login", map[string]any{}); !r.OK {
			t.Fatalf("login %d: %+v", i, r)
		}
	}
	if status, _, body := f.httpDo(t, "POST", "/api/v1/account.login", "", "", nil); status != 429 {
		t.Fatalf("an HTTP login after three over sockets: %d %s", status, body)
	}
	if r := b.call(t, "l4", "account.login", map[string]any{}); r.OK || r.Error.Code != imerr.RateLimited {
		t.Fatalf("a fourth login over a socket: %+v", r)
	}
	if r := b.call(t, "s1", "msg.send", map[string]any{}); !r.OK {
		t.Fatalf("other ops are not limited per address: %+v", r)
	}
}

func TestFrameSizeLimit(t *testing.T) {
	f := newFixture(t, nil)
	c := f.dial(t, newUser(), "s1")

	// A frame of exactly wire.MaxFrame bytes is accepted.
	prefix, suffix := `{"id":"big","op":"msg.send","data":{"pad":"`, `"}}`
	frame := prefix + strings.Repeat("x", wire.MaxFrame-len(prefix)-len(suffix)) + suffix
	c.sendRaw(t, frame)
	if r := c.reply(t); !r.OK || r.ID != "big" {
		t.Fatalf("1 MB frame: %+v", r.Error)
	}

	// One byte more closes the connection with 3503, as soon as the header arrives.
	// The frame is written raw so the client's own error handling cannot race
	// the close frame.
	hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	binary.BigEndian.PutUint64(hdr[2:10], wire.MaxFrame+1)
	if _, err := c.sock.NetConn().Write(append(hdr, make([]byte, 4096)...)); err != nil {
		t.Fatal(err)
	}
	if code := c.closeCode(t); code != wire.CloseTooLarge {
		t.Fatalf("close code %d, want %d", code, wire.CloseTooLarge)
	}
}

// TestInvalidUTF8: a text frame that is not UTF-8 fails the connection with 1007
// (RFC 6455), instead of being read with replacement characters.
func TestInvalidUTF8(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	tests := []struct {
		name  string
		frame string
	}{
		{"in a string", "{\"id\":\"u1\",\"op\":\"msg.send\",\"data\":{\"text\":\"\xff\"}}"},
		{"in the id", "{\"id\":\"\xc3\",\"op\":\"ping\"}"},
		{"surrogate", "{\"id\":\"u2\",\"op\":\"ping\",\"data\":\"\xed\xa0\x80\"}"},
		{"not JSON either", "\xfe\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.dial(t, uid, "s1")
			if err := c.sock.WriteMessage(gws.OpcodeText, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			if code := c.closeCode(t); code != wire.CloseInvalidData {
				t.Fatalf("close code %d, want %d", code, wire.CloseInvalidData)
			}
			select {
			case fr := <-c.frames:
				t.Fatalf("the frame was answered: %s", fr)
			default:
			}
		})
	}
	// Binary frames are not text: what they hold is for the JSON parser to judge.
	c := f.dial(t, uid, "s1")
	if err := c.sock.WriteMessage(gws.OpcodeBinary, []byte("{\"id\":\"b1\",\"op\":\"ping\",\"data\":\"\xff\"}")); err != nil {
		t.Fatal(err)
	}
	if r := c.reply(t); !r.OK || r.ID != "b1" {
		t.Fatalf("binary frame: %+v", r)
	}
}

// TestInvalidUTF8AfterIdle: the 1007 close writes what was queued first, even
// when the write deadline of the connection's last write has long passed.
func TestInvalidUTF8AfterIdle(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) {
		c.WriteTimeout = 100 * time.Millisecond
		c.WriteDelay, c.WriteDelayAbove = time.Hour, -1 // pushes wait for the next write
	})
	uid := newUser()
	c := f.dial(t, uid, "s1")
	if r := c.call(t, "p", gateway.OpPing, nil); !r.OK { // sets a write deadline
		t.Fatalf("ping: %+v", r)
	}
	time.Sleep(1200 * time.Millisecond) // a second past it
	publish(t, uid, `{"event":"held"}`, nil)
	waitFor(t, "the push held", func() bool { return f.metric(t, "natter_edge_pushes_total") == 1 })
	if err := c.sock.WriteMessage(gws.OpcodeText, []byte("\xff")); err != nil {
		t.Fatal(err)
	}
	if got := c.next(t); string(got) != `{"event":"held"}` {
		t.Fatalf("got %s, want the held push", got)
	}
	if code := c.closeCode(t); code != wire.CloseInvalidData {
		t.Fatalf("close code %d, want %d", code, wire.CloseInvalidData)
	}
}

func TestPushFanout(t *testing.T) {
	f := newFixture(t, nil)
	uid, other := newUser(), newUser()
	a, b, c := f.dial(t, uid, "s1"), f.dial(t, uid, "s2"), f.dial(t, uid, "s3")
	o := f.dial(t, other, "s1")
	aID := a.connID(t)

	first := `{"event":"msg.new","data":{"n":1}}`
	publish(t, uid, first, map[string]string{wire.HeaderSkipConn: aID})
	for name, cl := range map[string]*client{"b": b, "c": c} {
		if got := cl.next(t); string(got) != first {
			t.Fatalf("%s got %s, want %s verbatim", name, got, first)
		}
	}
	second := `{"event":"msg.new","data":{"n":2}}`
	publish(t, uid, second, nil)
	if got := a.next(t); string(got) != second {
		t.Fatalf("skipped connection got %s, want only %s", got, second)
	}
	third := `{"event":"msg.new","data":{"n":3}}`
	publish(t, other, third, nil)
	if got := o.next(t); string(got) != third {
		t.Fatalf("other user got %s first, want %s", got, third)
	}
	if got := f.metric(t, "natter_edge_users"); got != 2 {
		t.Fatalf("users = %v, want 2", got)
	}
}

func TestKick(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	a, b, c := f.dial(t, uid, "s1"), f.dial(t, uid, "s2"), f.dial(t, uid, "s2")
	aID := a.connID(t)

	// By connection, with a notice written first.
	notice := `{"event":"session.kicked","data":{"reason":"device limit"}}`
	publish(t, uid, notice, map[string]string{wire.HeaderControl: wire.ControlKick, wire.HeaderConn: aID, wire.HeaderSession: "s2"})
	if got := a.next(t); string(got) != notice {
		t.Fatalf("kicked connection got %s, want the notice", got)
	}
	if code := a.closeCode(t); code != wire.CloseKicked {
		t.Fatalf("close code %d, want %d", code, wire.CloseKicked)
	}
	if d := f.stub.nextDisconnect(t); d.ConnID != aID {
		t.Fatalf("disconnect for %q, want %q", d.ConnID, aID)
	}
	// The conn header won over the session header: s2's connections are untouched.
	for _, cl := range []*client{b, c} {
		if r := cl.call(t, "alive", gateway.OpPing, nil); !r.OK {
			t.Fatalf("bystander: %+v", r)
		}
	}

	// By session, without data: both connections of s2 close, with no frame.
	publish(t, uid, "", map[string]string{wire.HeaderControl: wire.ControlKick, wire.HeaderSession: "s2"})
	for _, cl := range []*client{b, c} {
		if code := cl.closeCode(t); code != wire.CloseKicked {
			t.Fatalf("close code %d, want %d", code, wire.CloseKicked)
		}
		select {
		case fr := <-cl.frames:
			t.Fatalf("unexpected frame %s", fr)
		default:
		}
	}
}

// listened reports whether the NATS server has a subscriber on uid's delivery
// subject, after flushing the gateway's pending (un)subscriptions.
func (f *fixture) listened(t *testing.T, uid int64) bool {
	t.Helper()
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Edges never answer on delivery subjects: with a subscriber this times out.
	_, err := env.NC.Request(subject.Deliver(uid), []byte(`{}`), 100*time.Millisecond)
	return !errors.Is(err, nats.ErrNoResponders)
}

func TestDeliverySubscriptionLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()

	a, b := f.dial(t, uid, "s1"), f.dial(t, uid, "s2")
	if got := f.metric(t, "natter_edge_users"); got != 1 {
		t.Fatalf("users = %v, want one subscription for the user's two connections", got)
	}
	aID := a.connID(t)
	_ = a.sock.WriteClose(1000, nil)
	if d := f.stub.nextDisconnect(t); d.ConnID != aID || d.Caller.UserID != uid {
		t.Fatalf("disconnect call %+v, want conn %q of user %d", d, aID, uid)
	}
	waitFor(t, "first close", func() bool { return f.metric(t, "natter_edge_connections") == 1 })
	publish(t, uid, `{"event":"still"}`, nil)
	if got := b.next(t); string(got) != `{"event":"still"}` {
		t.Fatalf("remaining connection got %s", got)
	}
	if got := f.metric(t, "natter_edge_users"); got != 1 {
		t.Fatalf("users = %v while a connection remains", got)
	}

	_ = b.sock.WriteClose(1000, nil)
	waitFor(t, "unsubscribe", func() bool { return f.metric(t, "natter_edge_users") == 0 })
	if f.listened(t, uid) {
		t.Fatal("the server still has a subscriber on the delivery subject")
	}

	// Connects and closes of one user racing each other leave nothing behind.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c := f.dial(t, uid, "r"+strconv.Itoa(i))
			_ = c.sock.WriteClose(1000, nil)
		})
	}
	wg.Wait()
	waitFor(t, "all closed", func() bool {
		return f.metric(t, "natter_edge_connections") == 0 && f.metric(t, "natter_edge_users") == 0
	})
	if f.listened(t, uid) {
		t.Fatal("a subscription outlived the racing connections")
	}
}

func TestHeartbeat(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = 20*time.Millisecond, 100*time.Millisecond
	})
	quiet := f.dial(t, newUser(), "s1", silent)
	live := f.dial(t, newUser(), "s1")
	if code := quiet.closeCode(t); code != wire.CloseHeartbeat {
		t.Fatalf("close code %d, want %d", code, wire.CloseHeartbeat)
	}
	// The client that answers pings outlived the timeout several times over.
	if r := live.call(t, "p", gateway.OpPing, nil); !r.OK {
		t.Fatalf("ping after the timeout: %+v", r)
	}
}

// TestHeartbeatCloseTiming checks that a silent connection is closed within about
// one tick (HeartbeatInterval/30) of HeartbeatTimeout, whichever slot pings it,
// and that pings stay spread: each connection gets about one per interval.
func TestHeartbeatCloseTiming(t *testing.T) {
	const interval, timeout = 600 * time.Millisecond, time.Second
	const tick = interval / 30
	// A tick, plus scheduling on a loaded two-core machine; a close a whole
	// interval late (the bug this guards against) is still far outside.
	const slack = tick + 150*time.Millisecond
	f := newFixture(t, func(c *gateway.Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = interval, timeout
	})
	// Connection ids are sequential, and so are their slots: one connection per slot.
	start := time.Now()
	clients := make([]*client, 30)
	for i := range clients {
		clients[i] = f.dial(t, newUser(), "s1", silent)
	}
	if d := time.Since(start); d > timeout/2 {
		t.Fatalf("dialing took %v: too slow for this test's timings", d)
	}
	last := make([]time.Time, len(clients))
	for i, c := range clients {
		last[i] = time.Now()
		c.send(t, "last", gateway.OpPing, nil) // the last frame the edge gets from c
	}
	for i, c := range clients {
		if code := c.closeCode(t); code != wire.CloseHeartbeat {
			t.Fatalf("client %d: close code %d, want %d", i, code, wire.CloseHeartbeat)
		}
		after := c.closedAt.Sub(last[i])
		if after < timeout || after > timeout+slack {
			t.Errorf("client %d: closed %v after its last frame, want %v to %v", i, after, timeout, timeout+slack)
		}
		if n, most := c.pings.Load(), int32(c.closedAt.Sub(start)/interval)+2; n > most {
			t.Errorf("client %d: %d pings, want at most %d (one per interval)", i, n, most)
		}
	}
}

func TestSlowClientDropsPushes(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.SendQueue, c.WriteTimeout = 4, time.Second })
	slowUser, fastUser := newUser(), newUser()
	f.dial(t, slowUser, "s1", noRead)
	fast := f.dial(t, fastUser, "s1")

	// Far more than the socket buffers hold, so writes to the slow client block.
	big := `{"event":"blob","data":"` + strings.Repeat("x", 256<<10) + `"}`
	for range 128 {
		publish(t, slowUser, big, nil)
	}
	waitFor(t, "dropped pushes", func() bool { return f.metric(t, "natter_edge_pushes_dropped_total") > 0 })
	// The dispatcher is not stuck behind the slow client.
	publish(t, fastUser, `{"event":"ok"}`, nil)
	if got := fast.next(t); string(got) != `{"event":"ok"}` {
		t.Fatalf("fast client got %s", got)
	}
	// The stuck write times out and the slow client is cut off.
	waitFor(t, "slow client dropped", func() bool { return f.metric(t, "natter_edge_connections") == 1 })
}

func TestShutdown(t *testing.T) {
	f := newFixture(t, nil)
	a, b := f.dial(t, newUser(), "s1"), f.dial(t, newUser(), "s1")
	ids := map[string]bool{a.connID(t): true, b.connID(t): true}
	waitFor(t, "readyz 200 before shutdown", func() bool { // once it follows revocations
		status, _, _ := f.httpDo(t, "GET", "/readyz", "", "", nil)
		return status == http.StatusOK
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{a, b} {
		if code := c.closeCode(t); code != wire.CloseShutdown {
			t.Fatalf("close code %d, want %d", code, wire.CloseShutdown)
		}
	}
	// Shutdown returned only after session.disconnect for both.
	for range 2 {
		select {
		case d := <-f.stub.disconnects:
			if !ids[d.ConnID] {
				t.Fatalf("disconnect for unknown conn %q", d.ConnID)
			}
			delete(ids, d.ConnID)
		default:
			t.Fatalf("Shutdown returned before the disconnect calls of %v", ids)
		}
	}
	if status, _, _ := f.httpDo(t, "GET", "/readyz", "", "", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz after shutdown: %d", status)
	}
	hdr := map[string]string{}
	for k, v := range wsHeaders {
		hdr[k] = v
	}
	if status, _, body := f.httpDo(t, "GET", "/ws", f.token(t, newUser(), "s1"), "", hdr); status != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after shutdown: %d %s", status, body)
	}
	if got := f.metric(t, "natter_edge_connections"); got != 0 {
		t.Fatalf("connections = %v", got)
	}
}

// TestTouch: the edge reports the connections it holds, so a dead edge's
// connections stop counting as online.
func TestTouch(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.TouchInterval = 50 * time.Millisecond })
	uid := newUser()
	c := f.dial(t, uid, "s1")
	conn := c.connID(t)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-f.stub.touches:
			if r.EdgeID != f.gw.ID() {
				t.Fatalf("touch from edge %q", r.EdgeID)
			}
			for _, tc := range r.Conns {
				if tc.UserID == uid && tc.ConnID == conn {
					return
				}
			}
		case <-deadline:
			t.Fatal("the connection was never touched")
		}
	}
}

// TestPushBurstInOrder sends a burst faster than the connections' writers drain
// it, so flushes carry many frames at once: every frame still arrives, whole, once
// and in order.
func TestPushBurstInOrder(t *testing.T) {
	for _, delay := range []time.Duration{-1, 5 * time.Millisecond} {
		t.Run(fmt.Sprintf("write_delay=%v", delay), func(t *testing.T) {
			pushBurst(t, delay)
		})
	}
}

func pushBurst(t *testing.T, delay time.Duration) {
	f := newFixture(t, func(c *gateway.Config) { c.SendQueue, c.WriteDelay, c.WriteDelayAbove = 4096, delay, -1 })
	uid := newUser()
	a, b := f.dial(t, uid, "s1"), f.dial(t, uid, "s2")
	const n = 1000
	for i := range n {
		publish(t, uid, fmt.Sprintf(`{"event":"msg.new","data":{"n":%d}}`, i), nil)
	}
	for name, cl := range map[string]*client{"a": a, "b": b} {
		for i := range n {
			want := fmt.Sprintf(`{"event":"msg.new","data":{"n":%d}}`, i)
			if got := cl.next(t); string(got) != want {
				t.Fatalf("%s: frame %d is %s, want %s", name, i, got, want)
			}
		}
	}
	// The counters move after the write returns, maybe after the client has read.
	waitFor(t, "frames counted", func() bool { return f.metric(t, "natter_edge_frames_out_total") >= 2*n })
	frames, writes := f.metric(t, "natter_edge_frames_out_total"), f.metric(t, "natter_edge_writes_total")
	if writes < 1 || writes > frames {
		t.Fatalf("%v frames in %v writes", frames, writes)
	}
	t.Logf("%v frames in %v writes", frames, writes)
}

// TestWriteDelayHoldsPushesNotReplies: with a WriteDelay far longer than the test,
// pushes wait, and a reply is written at once, carrying the held pushes before it.
func TestWriteDelayHoldsPushesNotReplies(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.WriteDelay, c.WriteDelayAbove = time.Hour, -1 })
	uid := newUser()
	cl := f.dial(t, uid, "s1")
	for i := range 3 {
		publish(t, uid, fmt.Sprintf(`{"event":"e","data":%d}`, i), nil)
	}
	waitFor(t, "pushes queued", func() bool { return f.metric(t, "natter_edge_pushes_total") == 3 })
	cl.send(t, "p1", "ping", nil)
	for i := range 3 {
		if got, want := string(cl.next(t)), fmt.Sprintf(`{"event":"e","data":%d}`, i); got != want {
			t.Fatalf("frame %d: %s, want %s", i, got, want)
		}
	}
	if r := cl.reply(t); r.ID != "p1" || !r.OK {
		t.Fatalf("reply %+v", r)
	}
}

// TestWriteDelayOnlyUnderLoad: below WriteDelayAbove pushes per second nothing is
// held, however long WriteDelay is.
func TestWriteDelayOnlyUnderLoad(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.WriteDelay, c.WriteDelayAbove = time.Hour, 1e9 })
	uid := newUser()
	cl := f.dial(t, uid, "s1")
	publish(t, uid, `{"event":"e"}`, nil)
	if got := string(cl.next(t)); got != `{"event":"e"}` {
		t.Fatalf("got %s", got)
	}
}
