package message_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func age(t *testing.T, e *testenv.Env, conv string, seq int64, d time.Duration) {
	t.Helper()
	if _, err := e.DB.Exec("UPDATE messages SET created_at = created_at - INTERVAL ? SECOND WHERE conv_id = ? AND seq = ?", int(d.Seconds()), conv, seq); err != nil {
		t.Fatal(err)
	}
}

func TestRecallAndEdit(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a")
	bob, _ := fntest.User(t, e, "bob", "b")
	fntest.Befriend(t, e, alice, bob)
	m1 := send(t, e, alice, bob.UserID, "m1", "first")
	m2 := send(t, e, alice, bob.UserID, "m2", "second")
	m3 := send(t, e, alice, bob.UserID, "m3", "third")
	// Bob's device is synced up to here.
	cursor := map[string]int64{m1.ConvID: m3.Seq}
	bobInbox, _ := e.NC.SubscribeSync(subject.Deliver(bob.UserID))

	// Recall: not by the wrong user, not after the window; by the sender inside it.
	_, err := fntest.Call[message.RecallResp](t, e, "msg.recall", bob, message.RecallReq{MsgRef: message.MsgRef{ID: m1.ID}})
	fntest.WantCode(t, err, imerr.Forbidden)
	age(t, e, m2.ConvID, m2.Seq, 3*time.Minute)
	_, err = fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: m2.ID}})
	fntest.WantCode(t, err, imerr.Forbidden)
	r, err := fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ConvID: m1.ConvID, Seq: m1.Seq}})
	if err != nil || r.Seq != m1.Seq || r.Mod == 0 {
		t.Fatalf("recall %+v %v", r, err)
	}
	if again, err := fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: m1.ID}}); err != nil || again.Mod != r.Mod {
		t.Fatalf("recall retry %+v %v", again, err)
	}
	expectEvent(t, bobInbox, "msg.recalled")

	// Edit: only the sender, inside the window, versioned; a no-op retry changes nothing.
	_, err = fntest.Call[wire.Message](t, e, "msg.edit", bob, message.EditReq{MsgRef: message.MsgRef{ID: m3.ID}, Content: text("hijack")})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: m1.ID}, Content: text("too late")})
	fntest.WantCode(t, err, imerr.Conflict)
	ed, err := fntest.Call[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: m3.ID}, Content: text("third, fixed")})
	if err != nil || ed.Edits != 1 || ed.EditedAt == 0 || string(ed.Content) != `{"text":"third, fixed"}` {
		t.Fatalf("edit %+v %v", ed, err)
	}
	if again := fntest.Must[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: m3.ID}, Content: text("third, fixed")}); again.Edits != 1 {
		t.Fatalf("edit retry made version %d", again.Edits)
	}
	expectEvent(t, bobInbox, "msg.edited")
	age(t, e, m2.ConvID, m2.Seq, time.Hour)
	_, err = fntest.Call[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: m2.ID}, Content: text("late edit")})
	fntest.WantCode(t, err, imerr.Forbidden)

	// History shows the tombstone and the latest version.
	h := fntest.Must[message.HistoryResp](t, e, "msg.history", bob, message.HistoryReq{ConvID: m1.ConvID})
	if len(h.Messages) != 3 || !h.Messages[0].Recalled || string(h.Messages[0].Content) != "null" || h.Messages[2].Edits != 1 || !strings.Contains(string(h.Messages[2].Content), "fixed") {
		t.Fatalf("history %+v", h.Messages)
	}
	var stored string
	if err := e.DB.QueryRow("SELECT content FROM messages WHERE conv_id = ? AND seq = ?", m1.ConvID, m1.Seq).Scan(&stored); err != nil || strings.Contains(stored, "first") {
		t.Fatalf("recalled content still stored: %q %v", stored, err)
	}

	// A device that was offline learns both changes through sync (mods), with no
	// new seq and so no phantom unread.
	s := fntest.Must[message.SyncResp](t, e, "msg.sync", bob, message.SyncReq{Cursors: cursor})
	if len(s.Conversations) != 1 || len(s.Conversations[0].Messages) != 0 || len(s.Conversations[0].Changed) != 2 || s.Conversations[0].LastSeq != m3.Seq {
		t.Fatalf("sync after changes %+v", s.Conversations)
	}
	c := s.Conversations[0]
	if !c.Changed[0].Recalled || c.Changed[1].Edits != 1 {
		t.Fatalf("changed %+v", c.Changed)
	}
	s = fntest.Must[message.SyncResp](t, e, "msg.sync", bob, message.SyncReq{Cursors: cursor, Mods: map[string]int64{c.ConvID: c.LastMod}})
	if len(s.Conversations) != 0 {
		t.Fatalf("sync when caught up %+v", s.Conversations)
	}
}

func TestGroupRecallByAdmin(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	owner, _ := fntest.User(t, e, "owner", "d")
	admin, _ := fntest.User(t, e, "admin", "d")
	member, _ := fntest.User(t, e, "member", "d")
	g := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{Name: "g", Members: []int64{admin.UserID, member.UserID}})
	fntest.Must[group.Empty](t, e, "group.role.set", owner, group.RoleReq{GroupID: g.GroupID, UserID: admin.UserID, Role: "admin"})
	sendG := func(c endpoint.Caller, id string) message.SendResp {
		return fntest.Must[message.SendResp](t, e, "msg.send", c, message.SendReq{ConvID: g.ConvID, ClientMsgID: id, Type: "text", Content: text(id)})
	}
	byMember, byAdmin, byAdmin2, byOwner := sendG(member, "x1"), sendG(admin, "x2"), sendG(admin, "x4"), sendG(owner, "x3")
	for _, m := range []message.SendResp{byMember, byAdmin, byAdmin2, byOwner} {
		age(t, e, g.ConvID, m.Seq, time.Hour) // far outside the sender's window
	}
	tests := []struct {
		name string
		by   endpoint.Caller
		msg  message.SendResp
		want imerr.Code
	}{
		{"member recalls admin's", member, byAdmin, imerr.Forbidden},
		{"admin recalls owner's", admin, byOwner, imerr.Forbidden},
		{"member recalls own old", member, byMember, imerr.Forbidden},
		{"admin recalls own old", admin, byAdmin, ""},
		{"admin recalls member's", admin, byMember, ""},
		{"owner recalls admin's", owner, byAdmin2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[message.RecallResp](t, e, "msg.recall", tt.by, message.RecallReq{MsgRef: message.MsgRef{ID: tt.msg.ID}})
			fntest.WantCode(t, err, tt.want)
		})
	}
}

func TestMentionsRepliesReactionsTyping(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Message: message.Config{TypingThrottle: time.Hour, TypingMaxGroup: 3}})
	owner, _ := fntest.User(t, e, "owner", "d")
	member, _ := fntest.User(t, e, "member", "d")
	outsider, _ := fntest.User(t, e, "outsider", "d")
	g := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{Name: "g", Members: []int64{member.UserID}})
	rich := func(v message.RichContent) json.RawMessage { b, _ := json.Marshal(v); return b }
	first := fntest.Must[message.SendResp](t, e, "msg.send", member, message.SendReq{ConvID: g.ConvID, ClientMsgID: "q", Type: "text", Content: text("quote me")})
	tests := []struct {
		name    string
		by      endpoint.Caller
		content message.RichContent
		want    imerr.Code
	}{
		{"mention a member", member, message.RichContent{Text: "hi", Mentions: []int64{owner.UserID}}, ""},
		{"mention an outsider", member, message.RichContent{Text: "hi", Mentions: []int64{outsider.UserID}}, imerr.BadRequest},
		{"@all by a member", member, message.RichContent{Text: "hi all", MentionAll: true}, imerr.Forbidden},
		{"@all by the owner", owner, message.RichContent{Text: "hi all", MentionAll: true}, ""},
		{"reply to an earlier seq", owner, message.RichContent{Text: "yes", ReplyTo: first.Seq}, ""},
		{"reply to a missing seq", owner, message.RichContent{Text: "yes", ReplyTo: 999}, imerr.BadRequest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[message.SendResp](t, e, "msg.send", tt.by, message.SendReq{ConvID: g.ConvID, ClientMsgID: fmt.Sprint("r", i), Type: "rich", Content: rich(tt.content)})
			fntest.WantCode(t, err, tt.want)
		})
	}

	// Reactions: idempotent both ways, aggregated in history with "me".
	ref := message.MsgRef{ID: first.ID}
	for range 2 {
		fntest.Must[wire.MsgReaction](t, e, "msg.react", owner, message.ReactReq{MsgRef: ref, Emoji: "👍"})
	}
	ev := fntest.Must[wire.MsgReaction](t, e, "msg.react", member, message.ReactReq{MsgRef: ref, Emoji: "👍"})
	fntest.Must[wire.MsgReaction](t, e, "msg.react", member, message.ReactReq{MsgRef: ref, Emoji: "🎉"})
	if ev.Count != 2 {
		t.Fatalf("👍 count %d", ev.Count)
	}
	h := fntest.Must[message.HistoryResp](t, e, "msg.history", owner, message.HistoryReq{ConvID: g.ConvID, After: ptr(first.Seq - 1), Limit: 1})
	if got := fmt.Sprint(h.Messages[0].Reactions); got != "[{👍 2 true} {🎉 1 false}]" {
		t.Fatalf("reactions %s", got)
	}
	if ev := fntest.Must[wire.MsgReaction](t, e, "msg.react", owner, message.ReactReq{MsgRef: ref, Emoji: "👍", Remove: true}); ev.Count != 1 {
		t.Fatalf("after removing, count %d", ev.Count)
	}
	_, err := fntest.Call[wire.MsgReaction](t, e, "msg.react", outsider, message.ReactReq{MsgRef: ref, Emoji: "👍"})
	fntest.WantCode(t, err, imerr.NotFound) // as for a message that does not exist
	_, err = fntest.Call[wire.MsgReaction](t, e, "msg.react", owner, message.ReactReq{MsgRef: ref, Emoji: "two words"})
	fntest.WantCode(t, err, imerr.BadRequest)

	// Typing: relayed once per throttle window, never stored, not in large groups.
	memberInbox, _ := e.NC.SubscribeSync(subject.DeliverGroup(g.GroupID)) // group pushes travel on the group's subject
	if r := fntest.Must[message.TypingResp](t, e, "msg.typing", owner, message.TypingReq{ConvID: g.ConvID}); !r.Sent {
		t.Fatal("first typing not sent")
	}
	if r := fntest.Must[message.TypingResp](t, e, "msg.typing", owner, message.TypingReq{ConvID: g.ConvID}); r.Sent {
		t.Fatal("typing not throttled")
	}
	expectEvent(t, memberInbox, "typing")
	for _, u := range fntest.SeedUsers(t, e, "extra", 3) {
		fntest.Must[group.InviteResp](t, e, "group.invite", owner, group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{u}})
	}
	if r := fntest.Must[message.TypingResp](t, e, "msg.typing", member, message.TypingReq{ConvID: g.ConvID}); r.Sent {
		t.Fatal("typing sent in a group above the size limit")
	}
	_, err = fntest.Call[message.TypingResp](t, e, "msg.typing", outsider, message.TypingReq{ConvID: g.ConvID})
	fntest.WantCode(t, err, imerr.NotFound)
}

func expectEvent(t *testing.T, sub *nats.Subscription, event string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var p struct{ Event string }
		if json.Unmarshal(m.Data, &p) == nil && p.Event == event {
			return
		}
	}
	t.Fatalf("no %s event", event)
}

// TestWhatOutsidersAndTheSilencedCannotDo: a message id of a conversation the
// caller cannot see answers exactly like an id nobody has; a dismissed group
// takes no edits, reactions or recalls, a muted member no edits or reactions; a
// stranger cannot show typing in a 1:1 conversation.
func TestWhatOutsidersAndTheSilencedCannotDo(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a")
	bob, _ := fntest.User(t, e, "bob", "b")
	carol, _ := fntest.User(t, e, "carol", "c")
	fntest.Befriend(t, e, alice, bob)
	m := send(t, e, alice, bob.UserID, "m1", "hello")

	_, seen := fntest.Call[wire.MsgReaction](t, e, "msg.react", carol, message.ReactReq{MsgRef: message.MsgRef{ID: m.ID}, Emoji: "👍"})
	_, unseen := fntest.Call[wire.MsgReaction](t, e, "msg.react", carol, message.ReactReq{MsgRef: message.MsgRef{ID: m.ID + 12345}, Emoji: "👍"})
	if imerr.CodeOf(seen) != imerr.NotFound || imerr.From(seen).Message != imerr.From(unseen).Message {
		t.Fatalf("an outsider tells ids apart: %v vs %v", seen, unseen)
	}
	_, err := fntest.Call[message.TypingResp](t, e, "msg.typing", carol, message.TypingReq{ConvID: convidOf(alice, carol)})
	fntest.WantCode(t, err, imerr.Forbidden)

	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "g", Members: []int64{bob.UserID}})
	gm := fntest.Must[message.SendResp](t, e, "msg.send", bob, message.SendReq{ConvID: g.ConvID, ClientMsgID: "g1", Type: "text", Content: text("hi")})
	ref := message.MsgRef{ID: gm.ID}
	fntest.Must[map[string]any](t, e, "group.mute", alice, group.MuteReq{GroupID: g.GroupID, UserID: bob.UserID, Seconds: 3600})
	_, err = fntest.Call[wire.Message](t, e, "msg.edit", bob, message.EditReq{MsgRef: ref, Content: text("edited while muted")})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[wire.MsgReaction](t, e, "msg.react", bob, message.ReactReq{MsgRef: ref, Emoji: "👍"})
	fntest.WantCode(t, err, imerr.Forbidden)

	fntest.Must[map[string]any](t, e, "group.dismiss", alice, group.GroupReq{GroupID: g.GroupID})
	_, err = fntest.Call[wire.MsgReaction](t, e, "msg.react", alice, message.ReactReq{MsgRef: ref, Emoji: "👍"})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: ref})
	fntest.WantCode(t, err, imerr.Forbidden)
}

func convidOf(a, b endpoint.Caller) string {
	lo, hi := a.UserID, b.UserID
	if lo > hi {
		lo, hi = hi, lo
	}
	return fmt.Sprintf("d:%d:%d", lo, hi)
}
