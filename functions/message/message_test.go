package message_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"natter/functions/fntest"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

func send(tb testing.TB, e *testenv.Env, from endpoint.Caller, to int64, cid, body string) message.SendResp {
	tb.Helper()
	r, err := fntest.Call[message.SendResp](tb, e, "msg.send", from, message.SendReq{To: to, ClientMsgID: cid, Type: wire.TypeText, Content: text(body)})
	if err != nil {
		tb.Fatalf("send %s: %v", cid, err)
	}
	return r
}

func countRows(t *testing.T, e *testenv.Env) int {
	t.Helper()
	var n int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM messages").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSendOrderIdempotenceAndPush(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)
	alice.ConnID = "conn-a1"
	toBob, _ := e.NC.SubscribeSync(subject.Deliver(bob.UserID))
	toAlice, _ := e.NC.SubscribeSync(subject.Deliver(alice.UserID))

	first := send(t, e, alice, bob.UserID, "m1", "hello")
	if first.Seq != 1 || first.ConvID != fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID) || first.Duplicate {
		t.Fatalf("first send %+v", first)
	}
	retry := send(t, e, alice, bob.UserID, "m1", "hello")
	if retry.Seq != 1 || retry.ID != first.ID || !retry.Duplicate {
		t.Fatalf("retry %+v, want the first result %+v", retry, first)
	}
	reply := send(t, e, bob, alice.UserID, "m1", "hi alice") // same client id, other sender: a new message
	if reply.Seq != 2 || reply.ConvID != first.ConvID {
		t.Fatalf("reply %+v", reply)
	}
	if n := countRows(t, e); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}

	// Both users get msg.new frames; the sending connection is named so the edge skips it.
	m, err := toBob.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var push struct {
		Event string       `json:"event"`
		Data  wire.Message `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &push); err != nil || push.Event != "msg.new" || push.Data.Seq != 1 || push.Data.Sender != alice.UserID || string(push.Data.Content) != `{"text":"hello"}` {
		t.Fatalf("push %s %v", m.Data, err)
	}
	if h := m.Header.Get(wire.HeaderSkipConn); h != "" {
		t.Fatalf("the recipient's push names a connection to skip: %q", h)
	}
	// The sender's other devices get it; the sending connection is named for the edge to skip.
	am, err := toAlice.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("sender's other devices get no push: %v", err)
	}
	if h := am.Header.Get(wire.HeaderSkipConn); h != "conn-a1" {
		t.Fatalf("skip header %q", h)
	}
}

func TestConcurrentSendsGapFree(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)
	const senders, each = 8, 25
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := alice, bob.UserID
			if g%2 == 1 {
				from, to = bob, alice.UserID
			}
			for i := range each {
				cid := fmt.Sprintf("g%d-%d", g, i)
				// Every message is sent twice, concurrently, as a client retry would.
				var inner sync.WaitGroup
				seqs := make([]int64, 2)
				for k := range 2 {
					inner.Add(1)
					go func() {
						defer inner.Done()
						seqs[k] = send(t, e, from, to, cid, cid).Seq
					}()
				}
				inner.Wait()
				if seqs[0] != seqs[1] {
					t.Errorf("%s stored twice: seqs %v", cid, seqs)
				}
			}
		}()
	}
	wg.Wait()
	rows, err := e.DB.Query("SELECT seq FROM messages ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := int64(1)
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			t.Fatal(err)
		}
		if seq != want {
			t.Fatalf("seq %d where %d was expected: not gap-free", seq, want)
		}
		want++
	}
	if want-1 != senders*each {
		t.Fatalf("%d messages stored, want %d", want-1, senders*each)
	}
}

func TestRedisLossKeepsSeq(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)
	for i := 1; i <= 5; i++ {
		send(t, e, alice, bob.UserID, fmt.Sprint("m", i), "x")
	}
	e.FlushRedis(t)
	if r := send(t, e, alice, bob.UserID, "m6", "after flush"); r.Seq != 6 {
		t.Fatalf("seq after FLUSHALL = %d, want 6", r.Seq)
	}
	if r := send(t, e, alice, bob.UserID, "m3", "x"); r.Seq != 3 || !r.Duplicate {
		t.Fatalf("retry after FLUSHALL = %+v, want seq 3 duplicate", r)
	}
}

func TestHistoryAndSync(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	fntest.Befriend(t, e, alice, bob)
	fntest.Befriend(t, e, carol, bob)
	for i := 1; i <= 120; i++ {
		send(t, e, alice, bob.UserID, fmt.Sprint("ab", i), fmt.Sprint("ab ", i))
	}
	for i := 1; i <= 7; i++ {
		send(t, e, carol, bob.UserID, fmt.Sprint("cb", i), fmt.Sprint("cb ", i))
	}
	ab := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)

	// Newest page, then walk back with before; then forward with after.
	var got []int64
	before := int64(0)
	for {
		h, err := fntest.Call[message.HistoryResp](t, e, "msg.history", bob, message.HistoryReq{ConvID: ab, Before: before, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for i := len(h.Messages) - 1; i >= 0; i-- {
			got = append(got, h.Messages[i].Seq)
		}
		if !h.HasMore {
			break
		}
		before = h.Messages[0].Seq
	}
	if len(got) != 120 || got[0] != 120 || got[119] != 1 {
		t.Fatalf("walked back %d messages: first %d last %d", len(got), got[0], got[len(got)-1])
	}
	fwd, err := fntest.Call[message.HistoryResp](t, e, "msg.history", alice, message.HistoryReq{ConvID: ab, After: ptr[int64](100), Limit: 10})
	if err != nil || len(fwd.Messages) != 10 || fwd.Messages[0].Seq != 101 || !fwd.HasMore {
		t.Fatalf("after 100: %d messages, has_more %v, %v", len(fwd.Messages), fwd.HasMore, err)
	}
	// Forward from 0 is the very beginning, not the newest page.
	start, err := fntest.Call[message.HistoryResp](t, e, "msg.history", alice, message.HistoryReq{ConvID: ab, After: ptr[int64](0), Limit: 3})
	if err != nil || len(start.Messages) != 3 || start.Messages[0].Seq != 1 || !start.HasMore {
		t.Fatalf("after 0: %+v, %v", start, err)
	}
	// A limit above the maximum gets the maximum page (one rule for every paged op).
	big, err := fntest.Call[message.HistoryResp](t, e, "msg.history", alice, message.HistoryReq{ConvID: ab, Limit: 100000})
	if err != nil || len(big.Messages) != 100 || !big.HasMore {
		t.Fatalf("limit 100000: %d messages, has_more %v, %v", len(big.Messages), big.HasMore, err)
	}
	_, err = fntest.Call[message.HistoryResp](t, e, "msg.history", carol, message.HistoryReq{ConvID: ab})
	if imerr.CodeOf(err) != imerr.NotFound {
		t.Fatalf("carol reading alice/bob: %v, want not_found", err)
	}

	// Bob's device holds ab up to 70 and nothing of carol's: sync in pages of 40.
	cursors := map[string]int64{ab: 70}
	seen := map[string][]int64{}
	for range 10 {
		s, err := fntest.Call[message.SyncResp](t, e, "msg.sync", bob, message.SyncReq{Cursors: cursors, Limit: 40})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Conversations {
			for _, m := range c.Messages {
				seen[c.ConvID] = append(seen[c.ConvID], m.Seq)
				cursors[c.ConvID] = m.Seq
			}
		}
		if !s.HasMore {
			break
		}
	}
	cb := fmt.Sprintf("d:%d:%d", min(carol.UserID, bob.UserID), max(carol.UserID, bob.UserID))
	if len(seen[ab]) != 50 || seen[ab][0] != 71 || seen[ab][49] != 120 || len(seen[cb]) != 7 || seen[cb][0] != 1 {
		t.Fatalf("synced ab %v cb %v", seen[ab], seen[cb])
	}
	s, err := fntest.Call[message.SyncResp](t, e, "msg.sync", bob, message.SyncReq{Cursors: cursors})
	if err != nil || len(s.Conversations) != 0 || s.HasMore {
		t.Fatalf("sync when caught up: %+v %v", s, err)
	}
}

func TestSendBadInput(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Message: message.Config{MaxTextRunes: 100}})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")
	fntest.Befriend(t, e, alice, bob)
	fntest.Befriend(t, e, alice, dave)
	fntest.Must[json.RawMessage](t, e, "block.add", dave, map[string]int64{"user_id": alice.UserID})
	send(t, e, alice, bob.UserID, "seed", "x")
	ab := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)
	rich := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	tests := []struct {
		name string
		c    endpoint.Caller
		req  any
		want imerr.Code
	}{
		{"no login", endpoint.Caller{}, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.Unauthorized},
		{"empty text", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text", Content: text("")}, imerr.BadRequest},
		{"text too long", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text", Content: text(strings.Repeat("字", 101))}, imerr.BadRequest},
		{"unknown type", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "video", Content: text("hi")}, imerr.BadRequest},
		{"content not an object", alice, map[string]any{"to": bob.UserID, "client_msg_id": "x", "type": "text", "content": "hi"}, imerr.BadRequest},
		{"no content", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text"}, imerr.BadRequest},
		{"no client id", alice, message.SendReq{To: bob.UserID, Type: "text", Content: text("hi")}, imerr.BadRequest},
		{"bad client id", alice, message.SendReq{To: bob.UserID, ClientMsgID: "a b", Type: "text", Content: text("hi")}, imerr.BadRequest},
		{"to and conv", alice, message.SendReq{To: bob.UserID, ConvID: ab, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.BadRequest},
		{"to nobody", alice, message.SendReq{To: 987654, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.NotFound},
		{"stranger (friends-only privacy)", carol, message.SendReq{To: alice.UserID, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.Forbidden},
		{"blocked by the recipient", alice, message.SendReq{To: dave.UserID, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.Forbidden},
		{"to self", alice, message.SendReq{To: alice.UserID, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.BadRequest},
		{"someone else's conversation", carol, message.SendReq{ConvID: ab, ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.NotFound},
		{"a group that does not exist", alice, message.SendReq{ConvID: "g:999999", ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.NotFound},
		{"malformed conv id", alice, message.SendReq{ConvID: "d:2:1", ClientMsgID: "x", Type: "text", Content: text("hi")}, imerr.BadRequest},
		{"span outside text", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "rich", Content: rich(message.RichContent{Text: "hi", Spans: []message.Span{{Start: 0, End: 5, Style: "bold"}}})}, imerr.BadRequest},
		{"unknown span style", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "rich", Content: rich(message.RichContent{Text: "hi", Spans: []message.Span{{Start: 0, End: 1, Style: "blink"}}})}, imerr.BadRequest},
		{"history bad conv", alice, message.HistoryReq{ConvID: "nope"}, imerr.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := "msg.send"
			if _, ok := tt.req.(message.HistoryReq); ok {
				op = "msg.history"
			}
			_, err := fntest.Call[map[string]any](t, e, op, tt.c, tt.req)
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
		})
	}
	if n := countRows(t, e); n != 1 {
		t.Fatalf("bad input stored something: %d rows", n)
	}
	// A valid rich message is stored as validated (unknown fields dropped).
	r, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, map[string]any{"to": bob.UserID, "client_msg_id": "rich1", "type": "rich",
		"content": map[string]any{"text": "hello @bob", "spans": []any{map[string]any{"start": 0, "end": 5, "style": "bold"}}, "mentions": []int64{bob.UserID}, "evil": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := fntest.Call[message.HistoryResp](t, e, "msg.history", bob, message.HistoryReq{ConvID: r.ConvID, After: ptr(r.Seq - 1)})
	if err != nil || len(h.Messages) != 1 || strings.Contains(string(h.Messages[0].Content), "evil") || h.Messages[0].Type != "rich" {
		t.Fatalf("rich stored as %+v %v", h.Messages, err)
	}
}

// TestBlocksAndPrivacyOnEveryPath: the 1:1 rules (checked in the handler, from the
// worker's cache) hold whether sends go through the group-commit batch, the
// one-message path (sends with mentions), or a worker without batching, and a block
// made after an allowed send (a cached answer) takes effect on the next one.
func TestBlocksAndPrivacyOnEveryPath(t *testing.T) {
	for _, writers := range []int{4, -1} {
		t.Run(fmt.Sprint("writers=", writers), func(t *testing.T) {
			e := testenv.Start(t)
			fntest.Start(t, e, fntest.Options{Message: message.Config{Writers: writers}})
			alice, _ := fntest.User(t, e, "alice", "a")
			bob, _ := fntest.User(t, e, "bob", "b")
			carol, _ := fntest.User(t, e, "carol", "c")
			fntest.Befriend(t, e, alice, bob)
			plain := func(from endpoint.Caller, to int64, id string) error {
				_, err := fntest.Call[message.SendResp](t, e, "msg.send", from, message.SendReq{To: to, ClientMsgID: id, Type: "text", Content: text("hi")})
				return err
			}
			mention := func(from endpoint.Caller, to int64, id string) error {
				c, _ := json.Marshal(message.RichContent{Text: "hey", Mentions: []int64{to}})
				_, err := fntest.Call[message.SendResp](t, e, "msg.send", from, message.SendReq{To: to, ClientMsgID: id, Type: "rich", Content: c})
				return err
			}
			for name, send := range map[string]func(endpoint.Caller, int64, string) error{"plain": plain, "mention": mention} {
				fntest.WantCode(t, send(alice, bob.UserID, name+"1"), "")
				fntest.WantCode(t, send(carol, alice.UserID, name+"2"), imerr.Forbidden) // strangers: friends-only privacy
				fntest.WantCode(t, send(alice, 999999, name+"3"), imerr.NotFound)
			}
			fntest.Must[json.RawMessage](t, e, "block.add", bob, map[string]int64{"user_id": alice.UserID})
			for name, send := range map[string]func(endpoint.Caller, int64, string) error{"plain": plain, "mention": mention} {
				fntest.WantCode(t, send(alice, bob.UserID, name+"4"), imerr.Forbidden)
				fntest.WantCode(t, send(bob, alice.UserID, name+"5"), imerr.Forbidden) // "unblock first"
			}
			if n := countRows(t, e); n != 2 {
				t.Fatalf("%d messages stored, want the two allowed ones", n)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestRepliesBoundedInBytes: a device that missed many maximum-size messages gets
// them in pages that each stay under wire.MaxReply (NATS refuses a message over
// its max_payload, 1 MB by default), every message exactly once, through sync
// and through history; content over wire.MaxContent is refused.
func TestRepliesBoundedInBytes(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)

	rich := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	big := func(url int) message.RichContent {
		c := message.RichContent{Text: strings.Repeat("😀", 5000)}
		for i := range 256 {
			c.Spans = append(c.Spans, message.Span{Start: i, End: i + 1, Style: "link", URL: "https://example.com/" + strings.Repeat("x", url)})
		}
		return c
	}
	_, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "huge", Type: "rich", Content: rich(big(1000))})
	fntest.WantCode(t, err, imerr.BadRequest)

	const n = 40
	var conv string
	for i := range n {
		r := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprint("m", i), Type: "rich", Content: rich(big(100))})
		conv = r.ConvID
	}

	seen := map[int64]int{}
	var cursor int64
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("sync does not make progress")
		}
		raw, err := fntest.Call[json.RawMessage](t, e, "msg.sync", bob, message.SyncReq{Cursors: map[string]int64{conv: cursor}})
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > wire.MaxReply {
			t.Fatalf("a sync reply of %d bytes, over %d", len(raw), wire.MaxReply)
		}
		var r message.SyncResp
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		for _, sc := range r.Conversations {
			for _, m := range sc.Messages {
				seen[m.Seq]++
				cursor = m.Seq
			}
		}
		if !r.HasMore {
			break
		}
	}
	if len(seen) != n {
		t.Fatalf("sync delivered %d distinct messages, want %d", len(seen), n)
	}
	for seq, k := range seen {
		if k != 1 {
			t.Fatalf("seq %d delivered %d times", seq, k)
		}
	}

	got := 0
	var before int64
	for {
		raw, err := fntest.Call[json.RawMessage](t, e, "msg.history", bob, message.HistoryReq{ConvID: conv, Before: before, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) > wire.MaxReply {
			t.Fatalf("a history reply of %d bytes, over %d", len(raw), wire.MaxReply)
		}
		var h message.HistoryResp
		if err := json.Unmarshal(raw, &h); err != nil || len(h.Messages) == 0 {
			t.Fatalf("history page: %v", err)
		}
		got += len(h.Messages)
		before = h.Messages[0].Seq
		if !h.HasMore {
			break
		}
	}
	if got != n {
		t.Fatalf("history walked %d messages, want %d", got, n)
	}
}
