package push_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/functions/conv"
	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/presence"
	"natter/functions/push"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

const hookSecret = "push-test-secret"

// hook is a fake push gateway behind the webhook provider: it checks each
// request's signature and records what arrived.
type hook struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	got    []push.Notification      // every request that arrived, answered or not
	at     []time.Time              // when each arrived
	status map[string]int           // by token; default 200
	hold   chan struct{}            // when set, requests wait for it to close before answering
	seen   map[string]map[int64]int // token -> seq -> requests
}

func newHook(t testing.TB) *hook {
	h := &hook{t: t, status: map[string]int{}, seen: map[string]map[int64]int{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if push.Sign(hookSecret, r.Header.Get(push.HeaderTimestamp), body) != r.Header.Get(push.HeaderSignature) {
		h.t.Errorf("bad signature on %s", body)
	}
	var n push.Notification
	if err := json.Unmarshal(body, &n); err != nil {
		h.t.Errorf("push %s: %v", body, err)
	}
	h.mu.Lock()
	h.got = append(h.got, n)
	h.at = append(h.at, time.Now())
	if h.seen[n.Token] == nil {
		h.seen[n.Token] = map[int64]int{}
	}
	h.seen[n.Token][n.Seq]++
	status, hold := h.status[n.Token], h.hold
	h.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
}

func (h *hook) pushes() []push.Notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]push.Notification(nil), h.got...)
}

func (h *hook) config() push.Config {
	return push.Config{
		Platforms: map[string]string{"ios": "webhook", "android": "webhook"},
		Webhook:   push.WebhookConfig{URL: h.srv.URL, Secret: hookSecret},
		Collapse:  -1, Attempts: 3, Backoff: 20 * time.Millisecond, AckWait: 5 * time.Second,
	}
}

// device is a user's phone with a registered token "tok-<name>".
func device(t *testing.T, e *testenv.Env, uid int64, name string) endpoint.Caller {
	t.Helper()
	c := endpoint.Caller{UserID: uid, DeviceID: "phone", SessionID: fmt.Sprintf("sess-%d", uid)}
	fntest.Must[push.Empty](t, e, "push.register", c, push.RegisterReq{Platform: "ios", Token: "tok-" + name, Locale: "en-US"})
	return c
}

// settled waits until the push consumer acknowledged every message event the
// stream holds (at least min of them), and nothing more arrives for a moment.
func settled(t *testing.T, e *testenv.Env, min uint64) { settledWithin(t, e, min, 30*time.Second) }

func settledWithin(t *testing.T, e *testenv.Env, min uint64, within time.Duration) {
	t.Helper()
	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	deadline := time.Now().Add(within)
	calm := 0
	for calm < 3 {
		if time.Now().After(deadline) {
			t.Fatal("push consumer did not catch up")
		}
		time.Sleep(100 * time.Millisecond)
		st, err1 := js.Stream(ctx, subject.MessageStream)
		cons, err2 := js.Consumer(ctx, subject.MessageStream, push.MessageConsumer)
		if err1 != nil || err2 != nil {
			calm = 0
			continue
		}
		si, ci := st.CachedInfo(), cons.CachedInfo()
		if si.State.LastSeq >= min && ci.AckFloor.Stream == si.State.LastSeq && ci.NumAckPending == 0 {
			calm++
		} else {
			calm = 0
		}
	}
}

func rich(t *testing.T, text string, mentions ...int64) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(message.RichContent{Text: text, Mentions: mentions})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecide: the decision alone, every case and their precedence.
func TestDecide(t *testing.T) {
	tests := []struct {
		name          string
		r             push.Recipient
		group, awayOn bool
		want          string
	}{
		{"offline", push.Recipient{}, false, false, push.VerdictPush},
		{"online", push.Recipient{Online: true}, false, false, push.VerdictOnline},
		{"idle (every connection away)", push.Recipient{Online: true, Away: true}, true, false, push.VerdictPush},
		{"idle counted online by config", push.Recipient{Online: true, Away: true}, true, true, push.VerdictOnline},
		{"muted 1:1", push.Recipient{Muted: true}, false, false, push.VerdictMuted},
		{"muted 1:1, mentioned", push.Recipient{Muted: true, Mentioned: true}, false, false, push.VerdictMuted},
		{"muted group", push.Recipient{Muted: true}, true, false, push.VerdictMuted},
		{"mention in a muted group", push.Recipient{Muted: true, Mentioned: true}, true, false, push.VerdictPush},
		{"mentioned but online", push.Recipient{Online: true, Mentioned: true}, true, false, push.VerdictOnline},
		{"blocked the sender", push.Recipient{Blocked: true, Mentioned: true}, true, false, push.VerdictBlocked},
		{"deleted account", push.Recipient{Deleted: true, Mentioned: true}, true, false, push.VerdictDeleted},
	}
	for _, tt := range tests {
		if got := push.Decide(tt.r, tt.group, tt.awayOn); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestDecisions: one group message, members in every situation of the decision
// table, through the whole path (message event, consumer, presence in Redis,
// mutes, blocks and accounts in MySQL, webhook): exactly the members who should
// get a push get one, with the group's name, the sender's text and their unread
// count as badge.
func TestDecisions(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	fntest.Start(t, e, fntest.Options{Push: h.config()})
	names := []string{"sender", "offline", "online", "idle", "muted", "mentioned", "blocker", "deleted", "notoken"}
	ids := fntest.SeedUsers(t, e, "u-", len(names))
	user := map[string]endpoint.Caller{}
	for i, n := range names {
		user[n] = endpoint.Caller{UserID: ids[i]}
	}
	g := fntest.Must[group.Info](t, e, "group.create", user["sender"], group.CreateReq{Name: "crew", Members: ids[1:]})
	for _, n := range names[1 : len(names)-1] {
		device(t, e, user[n].UserID, n)
	}
	device(t, e, user["sender"].UserID, "sender")
	reg := presence.NewRegistry(e.RDB, time.Minute)
	for _, n := range []string{"online", "idle"} {
		if _, err := reg.Connect(t.Context(), user[n].UserID, "conn-"+n, "laptop", "edge-1", 5, "kick_oldest"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.SetAway(t.Context(), user["idle"].UserID, "conn-idle", true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"muted", "mentioned"} {
		fntest.Must[wire.ConvState](t, e, "conv.mute", user[n], conv.MuteReq{ConvID: g.ConvID, Muted: true})
	}
	fntest.Must[friend.Empty](t, e, "block.add", user["blocker"], friend.UserReq{UserID: user["sender"].UserID})
	if _, err := e.DB.Exec("UPDATE users SET deleted_at = NOW(3) WHERE id = ?", user["deleted"].UserID); err != nil {
		t.Fatal(err)
	}
	sent := fntest.Must[message.SendResp](t, e, "msg.send", user["sender"], message.SendReq{ConvID: g.ConvID, ClientMsgID: "m1",
		Type: "rich", Content: rich(t, "hi @mentioned", user["mentioned"].UserID)})
	settled(t, e, 2)

	want := map[string]bool{"tok-offline": true, "tok-idle": true, "tok-mentioned": true}
	got := h.pushes()
	for _, n := range got {
		if !want[n.Token] {
			t.Errorf("pushed to %s", n.Token)
			continue
		}
		delete(want, n.Token)
		if n.ConvID != g.ConvID || n.Seq != sent.Seq || n.Title != "crew" || n.Body != "u-0: hi @mentioned" || n.Count != 1 ||
			n.Sender != user["sender"].UserID || n.Locale != "en-US" || n.Mention != (n.Token == "tok-mentioned") {
			t.Errorf("push %+v", n)
		}
		// The badge is the user's unread over all conversations, as conv.list counts it.
		var uid int64
		for name, c := range user {
			if "tok-"+name == n.Token {
				uid = c.UserID
			}
		}
		list := fntest.Must[conv.ListResp](t, e, "conv.list", endpoint.Caller{UserID: uid}, conv.ListReq{})
		var unread int64
		for _, c := range list.Conversations {
			unread += c.Unread
		}
		if n.Badge != unread || unread < 1 {
			t.Errorf("%s: badge %d, unread %d", n.Token, n.Badge, unread)
		}
	}
	for tok := range want {
		t.Errorf("no push to %s", tok)
	}
}

// TestCollapse: a burst in one conversation is one push at once and one at the
// window's end for the rest, with their count and the latest message; then the
// preview setting hides sender and text.
// TestDirectPeer: a 1:1 peer online on some device gets no push (decided
// from presence alone); idle on every device, or gone, they get one.
func TestDirectPeer(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	cfg := h.config()
	cfg.Collapse = -1 // every push at once
	fntest.Start(t, e, fntest.Options{Push: cfg})
	ids := fntest.SeedUsers(t, e, "d-", 2)
	alice, bob := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}
	fntest.Befriend(t, e, alice, bob)
	device(t, e, bob.UserID, "bob")
	reg := presence.NewRegistry(e.RDB, time.Minute)
	ctx := t.Context()
	if _, err := reg.Connect(ctx, bob.UserID, "conn-bob", "laptop", "edge-1", 5, "kick_oldest"); err != nil {
		t.Fatal(err)
	}
	send := func(id string, events uint64) {
		t.Helper()
		fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: id,
			Type: "text", Content: json.RawMessage(`{"text":"` + id + `"}`)})
		settled(t, e, events)
	}
	send("online", 1)
	if got := h.pushes(); len(got) != 0 {
		t.Fatalf("pushed to an online peer: %+v", got)
	}
	if _, err := reg.SetAway(ctx, bob.UserID, "conn-bob", true); err != nil {
		t.Fatal(err)
	}
	send("idle", 2)
	if _, err := reg.Disconnect(ctx, bob.UserID, "conn-bob"); err != nil {
		t.Fatal(err)
	}
	send("gone", 3)
	got := h.pushes()
	if len(got) != 2 || got[0].Body != "idle" || got[1].Body != "gone" {
		t.Fatalf("pushes %+v, want one for idle and one for gone", got)
	}
}

// TestBatchEvent: an event holding several messages (one transaction's) is
// pushed message by message, the 1:1 peers' presence asked once: the online
// peer gets nothing, the offline one a push per message.
func TestBatchEvent(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	cfg := h.config()
	cfg.Collapse = -1
	fntest.Start(t, e, fntest.Options{Push: cfg})
	ids := fntest.SeedUsers(t, e, "b-", 3)
	alice, bob, carol := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}, endpoint.Caller{UserID: ids[2]}
	fntest.Befriend(t, e, alice, bob)
	fntest.Befriend(t, e, alice, carol)
	device(t, e, bob.UserID, "bob")
	device(t, e, carol.UserID, "carol")
	reg := presence.NewRegistry(e.RDB, time.Minute)
	if _, err := reg.Connect(t.Context(), bob.UserID, "conn-bob", "laptop", "edge-1", 5, "kick_oldest"); err != nil {
		t.Fatal(err)
	}
	// The conversations exist once a message was sent in each (carol gets its push).
	for _, to := range []int64{bob.UserID, carol.UserID} {
		fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: to, ClientMsgID: fmt.Sprint("hello-", to),
			Type: "text", Content: json.RawMessage(`{"text":"hello"}`)})
	}
	settled(t, e, 2)
	if got := h.pushes(); len(got) != 1 || got[0].UserID != carol.UserID {
		t.Fatalf("pushes before the batch %+v, want carol's hello", got)
	}
	msg := func(to int64, seq int64, text string) wire.MessageSent {
		return wire.MessageSent{Message: wire.Message{ConvID: convid.OfDirect(alice.UserID, to).Raw, Seq: seq, ID: seq, Sender: alice.UserID,
			Type: "text", Content: json.RawMessage(`{"text":"` + text + `"}`), SentAt: time.Now().UnixMilli()}}
	}
	data, _ := json.Marshal(wire.MessagesSent{Messages: []wire.MessageSent{msg(bob.UserID, 2, "to bob"), msg(carol.UserID, 2, "one"), msg(carol.UserID, 3, "two")}})
	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), subject.EvtMessageSent, data); err != nil {
		t.Fatal(err)
	}
	settled(t, e, 3)
	got := h.pushes()
	slices.SortFunc(got, func(a, b push.Notification) int { return int(a.Seq - b.Seq) })
	if len(got) != 3 || got[1].UserID != carol.UserID || got[1].Body != "one" || got[2].UserID != carol.UserID || got[2].Body != "two" {
		t.Fatalf("pushes %+v, want carol's hello, one and two", got)
	}
}

func TestCollapse(t *testing.T) { testenv.ForEachRedis(t, testCollapse) }

func testCollapse(t *testing.T, e *testenv.Env) {
	h := newHook(t)
	cfg := h.config()
	cfg.Collapse = 2 * time.Second
	fntest.Start(t, e, fntest.Options{Push: cfg})
	ids := fntest.SeedUsers(t, e, "c-", 2)
	alice, bob := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}
	fntest.Befriend(t, e, alice, bob)
	bobPhone := device(t, e, bob.UserID, "bob")
	var last message.SendResp
	for i := range 5 {
		last = fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprint("b", i),
			Type: "text", Content: json.RawMessage(fmt.Sprintf(`{"text":"hello %d"}`, i))})
	}
	settled(t, e, 5)
	deadline := time.Now().Add(5 * time.Second)
	for len(h.pushes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(cfg.Collapse + 300*time.Millisecond) // nothing more
	got := h.pushes()
	if len(got) != 2 {
		t.Fatalf("%d pushes, want 2: %+v", len(got), got)
	}
	first, rest := got[0], got[1]
	if first.Count != 1 || first.Seq >= last.Seq || first.Title != "c-0" || first.Body[:5] != "hello" {
		t.Errorf("first push %+v", first)
	}
	if rest.Count+first.Count != 5 || rest.Seq != last.Seq || rest.Body != fmt.Sprintf("hello 4 (%d new messages)", rest.Count) || rest.Badge != 5 {
		t.Errorf("collapsed push %+v (last seq %d)", rest, last.Seq)
	}

	// Hidden previews: no title, no sender, no text.
	s := fntest.Must[push.Settings](t, e, "push.settings.set", bobPhone, push.SettingsSetReq{HideContent: new(true)})
	if !s.HideContent || !fntest.Must[push.Settings](t, e, "push.settings.get", bob, push.Empty{}).HideContent {
		t.Fatal("setting not kept")
	}
	time.Sleep(cfg.Collapse)
	fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "secret",
		Type: "text", Content: json.RawMessage(`{"text":"the secret"}`)})
	settled(t, e, 6)
	got = h.pushes()
	if n := got[len(got)-1]; len(got) != 3 || n.Title != "" || n.Body != "New message" || n.Sender != 0 || !n.Hidden || n.Badge != 6 {
		t.Errorf("hidden push %+v", n)
	}
	_, err := fntest.Call[push.Settings](t, e, "push.settings.set", bob, push.SettingsSetReq{})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestTokens: register, replace, move, unregister; a logout (the session's end,
// through im.evt.session.revoked) and a provider's "unregistered" remove the
// token.
func TestTokens(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	fntest.Start(t, e, fntest.Options{Push: h.config()})
	alice, _ := fntest.User(t, e, "alice", "alice-phone")
	bob, _ := fntest.User(t, e, "bob", "bob-phone")
	tokens := func(uid int64) []string {
		t.Helper()
		rows, err := e.DB.Query("SELECT token FROM push_tokens WHERE user_id = ? ORDER BY token", uid)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	reg := func(c endpoint.Caller, tok string) {
		t.Helper()
		fntest.Must[push.Empty](t, e, "push.register", c, push.RegisterReq{Platform: "android", Token: tok})
	}
	reg(alice, "t1")
	reg(alice, "t2") // the same device: replaced
	if got := tokens(alice.UserID); len(got) != 1 || got[0] != "t2" {
		t.Fatalf("alice's tokens %v", got)
	}
	reg(bob, "t2") // the same token on another account: moved
	if a, b := tokens(alice.UserID), tokens(bob.UserID); len(a) != 0 || len(b) != 1 {
		t.Fatalf("tokens alice %v bob %v", a, b)
	}
	fntest.Must[push.Empty](t, e, "push.unregister", bob, push.Empty{})
	fntest.Must[push.Empty](t, e, "push.unregister", bob, push.Empty{}) // idempotent
	if got := tokens(bob.UserID); len(got) != 0 {
		t.Fatalf("bob's tokens %v", got)
	}
	for _, bad := range []push.RegisterReq{{Platform: "symbian", Token: "x"}, {Platform: "ios"}, {Platform: "ios", Token: "a b"},
		{Platform: "ios", Token: "x", Locale: "en US"}} {
		_, err := fntest.Call[push.Empty](t, e, "push.register", alice, bad)
		fntest.WantCode(t, err, imerr.BadRequest)
	}
	_, err := fntest.Call[push.Empty](t, e, "push.register", endpoint.Caller{UserID: alice.UserID}, push.RegisterReq{Platform: "ios", Token: "x"})
	fntest.WantCode(t, err, imerr.Unauthorized)

	// At most MaxDevices tokens per user: the least recently registered goes.
	carolID := fntest.SeedUsers(t, e, "carol", 1)[0]
	for i := range 11 {
		fntest.Must[push.Empty](t, e, "push.register", endpoint.Caller{UserID: carolID, DeviceID: fmt.Sprintf("d%02d", i), SessionID: "s"},
			push.RegisterReq{Platform: "web", Token: fmt.Sprintf("carol-%02d", i)})
		time.Sleep(5 * time.Millisecond)
	}
	if got := tokens(carolID); len(got) != 10 || got[0] != "carol-01" {
		t.Fatalf("carol's tokens %v", got)
	}

	// Logout ends the session: its token goes.
	reg(alice, "t3")
	fntest.Must[json.RawMessage](t, e, "account.logout", alice, struct{}{})
	waitFor(t, "the logged-out device's token removed", func() bool { return len(tokens(alice.UserID)) == 0 })

	// The provider says the token is gone: removed.
	h.mu.Lock()
	h.status["t4"] = http.StatusGone
	h.mu.Unlock()
	reg(bob, "t4")
	carol := endpoint.Caller{UserID: carolID}
	fntest.Befriend(t, e, carol, bob)
	fntest.Must[message.SendResp](t, e, "msg.send", carol, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text",
		Content: json.RawMessage(`{"text":"hi"}`)})
	waitFor(t, "the unregistered token removed", func() bool { return len(tokens(bob.UserID)) == 0 })
	if n := len(h.pushes()); n != 1 {
		t.Errorf("%d calls for a gone token, want 1 (no retry)", n)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDeadLetter: a push the provider keeps failing is tried Attempts times
// with backoff, then lands on IM_PUSH_DEAD with the event, the device and the
// last error, and the event is acknowledged; a replay sends it once the
// provider is back, and a second replay finds nothing left.
func TestDeadLetter(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	cfg := h.config()
	fntest.Start(t, e, fntest.Options{Push: cfg})
	ids := fntest.SeedUsers(t, e, "d-", 2)
	alice, bob := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}
	fntest.Befriend(t, e, alice, bob)
	device(t, e, bob.UserID, "bob")
	h.mu.Lock()
	h.status["tok-bob"] = http.StatusServiceUnavailable
	h.mu.Unlock()
	sent := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text",
		Content: json.RawMessage(`{"text":"hi"}`)})
	settled(t, e, 1)
	if n := len(h.pushes()); n != cfg.Attempts {
		t.Fatalf("%d calls, want %d", n, cfg.Attempts)
	}
	js, err := jetstream.New(e.NC)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.Stream(t.Context(), subject.PushDeadStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := raw.GetLastMsgForSubject(t.Context(), subject.PushDead("webhook"))
	if err != nil {
		t.Fatal(err)
	}
	var d push.DeadLetter
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Attempts != cfg.Attempts || d.Notification.DeviceID != "phone" || d.Notification.Token != "tok-bob" || d.Notification.UserID != bob.UserID ||
		d.Event == nil || d.Event.Seq != sent.Seq || d.Event.ConvID != sent.ConvID || d.Error == "" {
		t.Fatalf("dead letter %s", m.Data)
	}

	h.mu.Lock()
	h.status["tok-bob"] = http.StatusOK
	h.mu.Unlock()
	s, err := push.New(push.Deps{DB: e.DB, Redis: e.RDB, NC: e.NC, Log: zerolog.Nop(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Replay(t.Context())
	if err != nil || res != (push.ReplayResult{Sent: 1}) {
		t.Fatalf("replay %+v %v", res, err)
	}
	if got := h.pushes(); len(got) != cfg.Attempts+1 || got[len(got)-1].Seq != sent.Seq {
		t.Fatalf("%d calls after the replay", len(got))
	}
	if res, err := s.Replay(t.Context()); err != nil || res != (push.ReplayResult{}) {
		t.Fatalf("second replay %+v %v", res, err)
	}
}

// TestNoDuplicatesAfterRestart kills the worker whose consumer holds a batch of
// events in the middle of their pushes (the provider holding its requests), then
// starts another: the events come again, and every message reaches every device
// exactly once.
func TestNoDuplicatesAfterRestart(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	h.hold = make(chan struct{})
	cfg := h.config()
	cfg.Senders, cfg.MaxAckPending, cfg.AckWait = 4, 3, 2*time.Second
	opts := fntest.Options{Push: cfg}
	first := fntest.StartWorker(t, e, opts)
	const members, messages = 10, 6
	ids := fntest.SeedUsers(t, e, "r-", members+1)
	sender := endpoint.Caller{UserID: ids[0]}
	g := fntest.Must[group.Info](t, e, "group.create", sender, group.CreateReq{Name: "restart", Members: ids[1:]})
	for i, id := range ids[1:] {
		device(t, e, id, fmt.Sprint(i))
	}
	var seqs []int64
	for i := range messages {
		r := fntest.Must[message.SendResp](t, e, "msg.send", sender, message.SendReq{ConvID: g.ConvID, ClientMsgID: fmt.Sprint("m", i),
			Type: "text", Content: json.RawMessage(`{"text":"hi"}`)})
		seqs = append(seqs, r.Seq)
	}
	// Every event is on the stream, and the provider holds as many requests as
	// the worker may make at once: nothing is between a claim and its request.
	js, _ := jetstream.New(e.NC)
	waitFor(t, "the events", func() bool {
		st, err := js.Stream(t.Context(), subject.MessageStream)
		return err == nil && st.CachedInfo().State.Msgs >= messages+1
	})
	waitFor(t, "requests held", func() bool { return len(h.pushes()) == cfg.Senders })
	time.Sleep(300 * time.Millisecond)
	if n := len(h.pushes()); n != cfg.Senders {
		t.Fatalf("%d requests in flight, want %d", n, cfg.Senders)
	}
	first.Kill()
	h.mu.Lock()
	close(h.hold)
	h.hold = nil
	h.mu.Unlock()

	fntest.StartWorker(t, e, opts)
	waitFor(t, "every push", func() bool { return len(h.pushes()) >= members*messages })
	settled(t, e, messages+1)
	time.Sleep(500 * time.Millisecond)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.got) != members*messages {
		t.Errorf("%d pushes, want %d", len(h.got), members*messages)
	}
	var tokens []string
	for tok := range h.seen {
		tokens = append(tokens, tok)
	}
	sort.Strings(tokens)
	if len(tokens) != members {
		t.Errorf("tokens %v", tokens)
	}
	for _, tok := range tokens {
		for _, seq := range seqs {
			if n := h.seen[tok][seq]; n != 1 {
				t.Errorf("%s seq %d pushed %d times", tok, seq, n)
			}
		}
	}
}

// TestConsumerComesBack: the durable consumer deleted under a running worker
// (a stream re-created, an operator's mistake) is created again, and pushes go
// on.
func TestConsumerComesBack(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	fntest.Start(t, e, fntest.Options{Push: h.config()})
	ids := fntest.SeedUsers(t, e, "k-", 2)
	alice, bob := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}
	fntest.Befriend(t, e, alice, bob)
	device(t, e, bob.UserID, "bob")
	js, _ := jetstream.New(e.NC)
	if err := js.DeleteConsumer(t.Context(), subject.MessageStream, push.MessageConsumer); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the consumer back", func() bool {
		_, err := js.Consumer(t.Context(), subject.MessageStream, push.MessageConsumer)
		return err == nil
	})
	fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "x", Type: "text",
		Content: json.RawMessage(`{"text":"hi"}`)})
	waitFor(t, "the push", func() bool { return len(h.pushes()) == 1 })
}

// TestCollapseFlushLost: the worker that would end a window dies first; the
// messages its window held are counted by the conversation's next push.
func TestCollapseFlushLost(t *testing.T) {
	e := testenv.Start(t)
	h := newHook(t)
	cfg := h.config()
	cfg.Collapse = 2 * time.Second
	first := fntest.StartWorker(t, e, fntest.Options{Push: cfg})
	ids := fntest.SeedUsers(t, e, "f-", 2)
	alice, bob := endpoint.Caller{UserID: ids[0]}, endpoint.Caller{UserID: ids[1]}
	fntest.Befriend(t, e, alice, bob)
	device(t, e, bob.UserID, "bob")
	send := func(id string) message.SendResp {
		return fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: id, Type: "text",
			Content: json.RawMessage(`{"text":"` + id + `"}`)})
	}
	send("m1")
	waitFor(t, "the first push", func() bool { return len(h.pushes()) == 1 })
	opened := time.Now()
	send("m2")
	send("m3")
	settled(t, e, 3)
	if time.Since(opened) > cfg.Collapse*3/4 {
		t.Skip("the machine is too slow for this window")
	}
	first.Kill() // its flush never runs
	fntest.StartWorker(t, e, fntest.Options{Push: cfg})
	time.Sleep(time.Until(opened.Add(2*cfg.Collapse + 200*time.Millisecond)))
	if n := len(h.pushes()); n != 1 {
		t.Fatalf("%d pushes before the next message", n)
	}
	last := send("m4")
	waitFor(t, "the next push", func() bool { return len(h.pushes()) == 2 })
	if n := h.pushes()[1]; n.Count != 3 || n.Seq != last.Seq || n.Trailing {
		t.Fatalf("push %+v, want m4's counting m2 and m3", n)
	}
}
