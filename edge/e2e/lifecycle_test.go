package e2e

import (
	"encoding/json"
	"testing"

	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/imerr"
)

// TestRecallEditTypingMentions runs the message lifecycle through the edge: windows
// and the wrong user are refused, the peer's devices get the events, @all needs an
// admin, typing is throttled.
func TestRecallEditTypingMentions(t *testing.T) {
	s := start(t)
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	a, b := s.device(t, alice, "d"), s.device(t, bob, "d")
	befriend(t, a, b, bob.id)
	m1 := sendText(t, a, bob.id, "r1", "oops")
	m2 := sendText(t, a, bob.id, "r2", "old one")
	if _, err := s.env.DB.Exec("UPDATE messages SET created_at = created_at - INTERVAL 1 HOUR WHERE conv_id = ? AND seq = ?", m2.ConvID, m2.Seq); err != nil {
		t.Fatal(err)
	}
	ref := func(m message.SendResp) message.MsgRef { return message.MsgRef{ID: m.ID} }
	tests := []struct {
		name string
		dev  string
		op   string
		data any
		want imerr.Code
	}{
		{"bob recalls alice's", "b", "msg.recall", message.RecallReq{MsgRef: ref(m1)}, imerr.Forbidden},
		{"bob edits alice's", "b", "msg.edit", message.EditReq{MsgRef: ref(m1), Content: text("mine now")}, imerr.Forbidden},
		{"recall past the window", "a", "msg.recall", message.RecallReq{MsgRef: ref(m2)}, imerr.Forbidden},
		{"edit past the window", "a", "msg.edit", message.EditReq{MsgRef: ref(m2), Content: text("late")}, imerr.Forbidden},
		{"edit inside the window", "a", "msg.edit", message.EditReq{MsgRef: ref(m1), Content: text("fixed")}, ""},
		{"recall inside the window", "a", "msg.recall", message.RecallReq{MsgRef: ref(m1)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := a
			if tt.dev == "b" {
				dev = b
			}
			err := dev.Call(ctx(t), tt.op, tt.data, nil)
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	for _, ev := range []string{"msg.edited", "msg.recalled"} {
		if _, err := b.NextPush(ctx(t), ev); err != nil {
			t.Fatalf("bob: %v", err)
		}
	}
	h := call[message.HistoryResp](t, b, "msg.history", message.HistoryReq{ConvID: m1.ConvID})
	if !h.Messages[0].Recalled || h.Messages[0].Edits != 1 {
		t.Fatalf("history after edit and recall %+v", h.Messages[0])
	}

	// Typing: the first goes out, the next within the throttle window does not.
	for i, want := range []bool{true, false} {
		r := call[message.TypingResp](t, a, "msg.typing", message.TypingReq{ConvID: m1.ConvID})
		if r.Sent != want {
			t.Fatalf("typing %d sent=%v", i, r.Sent)
		}
	}
	if _, err := b.NextPush(ctx(t), "typing"); err != nil {
		t.Fatal(err)
	}

	// @all: only the group's owner and admins.
	g := call[group.Info](t, a, "group.create", group.CreateReq{Name: "g", Members: []int64{bob.id}})
	all := func(cid string) message.SendReq {
		c, _ := json.Marshal(message.RichContent{Text: "everyone!", MentionAll: true})
		return message.SendReq{ConvID: g.ConvID, ClientMsgID: cid, Type: "rich", Content: c}
	}
	if err := b.Call(ctx(t), "msg.send", all("m-all-1"), nil); imerr.CodeOf(err) != imerr.Forbidden {
		t.Fatalf("member @all: %v", err)
	}
	call[message.SendResp](t, a, "msg.send", all("m-all-2"))
	var l struct {
		Conversations []struct {
			ConvID    string `json:"conv_id"`
			Mentioned bool   `json:"mentioned"`
		} `json:"conversations"`
	}
	if err := b.Call(ctx(t), "conv.list", map[string]any{}, &l); err != nil {
		t.Fatal(err)
	}
	for _, c := range l.Conversations {
		if c.ConvID == g.ConvID && c.Mentioned {
			return
		}
	}
	t.Fatalf("bob's list does not show the mention: %+v", l)
}
