package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/functions/message"
	"natter/loadtest/client"
	"natter/shared/imerr"
	"natter/shared/wire"
)

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

func sendText(t *testing.T, c *client.Client, to int64, cid, body string) message.SendResp {
	t.Helper()
	return call[message.SendResp](t, c, "msg.send", message.SendReq{To: to, ClientMsgID: cid, Type: "text", Content: text(body)})
}

func nextMsg(t *testing.T, c *client.Client) wire.Message {
	t.Helper()
	p, err := c.NextPush(ctx(t), "msg.new")
	if err != nil {
		t.Fatal(err)
	}
	var m wire.Message
	if err := json.Unmarshal(p.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDirectMessaging is the core path: two people, three devices, order,
// idempotent retries, history, offline catch-up, and Redis loss.
func TestDirectMessaging(t *testing.T) {
	s := start(t)
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	a1, a2 := s.device(t, alice, "phone"), s.device(t, alice, "laptop")
	b1 := s.device(t, bob, "phone")
	befriend(t, a1, b1, bob.id)

	var conv string
	for i := 1; i <= 3; i++ {
		r := sendText(t, a1, bob.id, fmt.Sprint("m", i), fmt.Sprint("hello ", i))
		conv = r.ConvID
		if r.Seq != int64(i) {
			t.Fatalf("message %d got seq %d", i, r.Seq)
		}
	}
	for _, dev := range []*client.Client{b1, a2} {
		for i := 1; i <= 3; i++ {
			if m := nextMsg(t, dev); m.Seq != int64(i) || m.Sender != alice.id || string(m.Content) != fmt.Sprintf(`{"text":"hello %d"}`, i) {
				t.Fatalf("push %d: %+v", i, m)
			}
		}
	}
	// The sending device has the replies; it gets no push of its own messages.
	select {
	case p := <-a1.Pushes():
		if p.Event == "msg.new" {
			t.Fatalf("sender's own connection got %s", p.Data)
		}
	case <-time.After(200 * time.Millisecond):
	}

	// A retry with the same client id: the same seq, one row.
	retry := sendText(t, a1, bob.id, "m2", "hello 2")
	if retry.Seq != 2 || !retry.Duplicate {
		t.Fatalf("retry %+v", retry)
	}
	var rows int
	if err := s.env.DB.QueryRow("SELECT COUNT(*) FROM messages WHERE client_msg_id = 'm2'").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("%d rows for m2 (%v)", rows, err)
	}

	// History over HTTP with the seed's route, paged.
	tok := s.login(t, bob, "tablet").AccessToken
	var h message.HistoryResp
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, "/api/v1/messages/conversations/"+conv+"/history?limit=2", tok, nil, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != 2 || h.Messages[0].Seq != 2 || !h.HasMore {
		t.Fatalf("history page %+v", h)
	}
	if err := client.HTTP(ctx(t), s.base, http.MethodGet, fmt.Sprintf("/api/v1/messages/conversations/%s/history?limit=2&before=%d", conv, 2), tok, nil, &h); err != nil || len(h.Messages) != 1 || h.HasMore {
		t.Fatalf("history page 2 %+v %v", h, err)
	}

	// Bob goes offline; Alice sends 50; Bob reconnects and syncs exactly those.
	_ = b1.Close()
	for i := 4; i <= 53; i++ {
		sendText(t, a1, bob.id, fmt.Sprint("m", i), fmt.Sprint("while away ", i))
	}
	b1 = s.device(t, bob, "phone")
	sync := call[message.SyncResp](t, b1, "msg.sync", message.SyncReq{Cursors: map[string]int64{conv: 3}})
	if len(sync.Conversations) != 1 || sync.HasMore {
		t.Fatalf("sync %+v", sync)
	}
	got := sync.Conversations[0].Messages
	if len(got) != 50 || got[0].Seq != 4 || got[49].Seq != 53 {
		t.Fatalf("synced %d messages", len(got))
	}

	// Redis loses everything mid-conversation: the seq carries on.
	s.env.FlushRedis(t)
	if r := sendText(t, a1, bob.id, "m54", "after flush"); r.Seq != 54 {
		t.Fatalf("seq after FLUSHALL %d", r.Seq)
	}
	if m := nextMsg(t, b1); m.Seq != 54 {
		t.Fatalf("push after FLUSHALL %+v", m)
	}
}

// TestBadInput: each gets its documented error and nothing is stored.
func TestBadInput(t *testing.T) {
	s := start(t)
	alice, bob, carol := s.user(t, "alice"), s.user(t, "bob"), s.user(t, "carol")
	a, b, c := s.device(t, alice, "d"), s.device(t, bob, "d"), s.device(t, carol, "d")
	befriend(t, a, b, bob.id)
	befriend(t, c, b, bob.id)
	ab := sendText(t, a, bob.id, "seed", "hi").ConvID

	// Frames the edge refuses; the connection stays usable.
	for _, raw := range []string{`{"id":"x","op":`, `[1,2]`, `{"op":"msg.send"}`} {
		if err := a.WriteRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		op   string
		data any
		want imerr.Code
	}{
		{"unknown op", "msg.teleport", map[string]any{}, imerr.NotFound},
		{"internal op", "session.connect", map[string]any{"conn_id": "x"}, imerr.NotFound},
		{"no such user", "msg.send", message.SendReq{To: 999999, ClientMsgID: "x1", Type: "text", Content: text("hi")}, imerr.NotFound},
		{"empty text", "msg.send", message.SendReq{To: bob.id, ClientMsgID: "x2", Type: "text", Content: text("")}, imerr.BadRequest},
		{"text too long", "msg.send", message.SendReq{To: bob.id, ClientMsgID: "x3", Type: "text", Content: text(strings.Repeat("a", 5001))}, imerr.BadRequest},
		{"someone else's conversation", "msg.history", message.HistoryReq{ConvID: ab}, imerr.NotFound},
		{"send into someone else's conversation", "msg.send", message.SendReq{ConvID: ab, ClientMsgID: "x4", Type: "text", Content: text("hi")}, imerr.NotFound},
		{"wrong field type", "msg.send", map[string]any{"to": "bob"}, imerr.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := a
			if strings.Contains(tt.name, "someone else") {
				dev = c
			}
			err := dev.Call(ctx(t), tt.op, tt.data, nil)
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
	if err := a.Call(ctx(t), "ping", nil, nil); err != nil {
		t.Fatalf("connection unusable after bad frames: %v", err)
	}
	var n int
	if err := s.env.DB.QueryRow("SELECT COUNT(*) FROM messages").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d messages stored (%v), want 1", n, err)
	}

	// Tokens: missing, forged and expired are refused before the upgrade.
	for name, token := range map[string]string{"missing": "", "forged": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.AAAA", "garbage": "x"} {
		_, err := client.Dial(ctx(t), client.Options{URL: s.ws, Token: token})
		if de, ok := err.(*client.DialError); !ok || de.Status != http.StatusUnauthorized {
			t.Fatalf("%s token: %v", name, err)
		}
	}
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/msg.send", "", map[string]any{}, nil); imerr.CodeOf(err) != imerr.Unauthorized {
		t.Fatalf("HTTP without token: %v", err)
	}

	// A frame over 1 MB closes the connection with 3503.
	big := fmt.Sprintf(`{"id":"big","op":"msg.send","data":{"pad":%q}}`, strings.Repeat("x", wire.MaxFrame))
	_ = c.WriteRaw([]byte(big))
	select {
	case <-c.Done():
		if code := c.CloseCode(); code != wire.CloseTooLarge {
			t.Logf("closed with %d (%v); the edge sends 3503 but a client still writing may see a reset", code, c.CloseErr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("oversized frame did not close the connection")
	}
}

// TestLogoutKicks: logging out closes the session's sockets with 3501 and its
// token stops working on the edge.
func TestLogoutKicks(t *testing.T) {
	s := start(t)
	alice := s.user(t, "alice")
	tok := s.login(t, alice, "phone")
	phone := s.dial(t, tok.AccessToken)
	laptop := s.device(t, alice, "laptop")
	if err := client.HTTP(ctx(t), s.base, http.MethodPost, "/api/v1/users/logout", tok.AccessToken, map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-phone.Done():
		if phone.CloseCode() != wire.CloseKicked {
			t.Fatalf("close code %d", phone.CloseCode())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logged-out socket still open")
	}
	if _, err := client.Dial(ctx(t), client.Options{URL: s.ws, Token: tok.AccessToken}); err == nil {
		t.Fatal("revoked token accepted")
	}
	if err := laptop.Call(ctx(t), "ping", nil, nil); err != nil {
		t.Fatalf("the other device's session was hurt: %v", err)
	}
}
