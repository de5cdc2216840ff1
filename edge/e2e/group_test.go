package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"natter/functions/conv"
	"natter/functions/group"
	"natter/functions/message"
	"natter/loadtest/client"
	"natter/shared/wire"
)

// TestGroupMessaging: every connected member gets each group message exactly once
// and in seq order; a member who was offline syncs the messages and the system
// events (mute, announcement) it missed.
func TestGroupMessaging(t *testing.T) {
	s := start(t)
	owner := s.user(t, "owner")
	o := s.device(t, owner, "d")
	const n = 30
	members := make([]user, n)
	devs := make([]*client.Client, n)
	ids := make([]int64, n)
	for i := range members {
		members[i] = s.user(t, "member")
		ids[i] = members[i].id
	}
	g := call[group.Info](t, o, "group.create", group.CreateReq{Name: "crew", Members: ids})
	for i := 1; i < n; i++ { // member 0 stays offline
		devs[i] = s.device(t, members[i], "d")
	}
	const msgs = 10
	for i := range msgs {
		call[message.SendResp](t, o, "msg.send", message.SendReq{ConvID: g.ConvID, ClientMsgID: fmt.Sprint("g", i), Type: "text", Content: text(fmt.Sprint("to all ", i))})
	}
	for i := 1; i < n; i++ {
		var seqs []int64
		for len(seqs) < msgs {
			m := nextMsg(t, devs[i])
			if m.Type == wire.TypeText {
				seqs = append(seqs, m.Seq)
			}
		}
		for k := 1; k < len(seqs); k++ {
			if seqs[k] != seqs[k-1]+1 {
				t.Fatalf("member %d got seqs %v", i, seqs)
			}
		}
		select { // and nothing twice
		case p := <-devs[i].Pushes():
			var m wire.Message
			_ = json.Unmarshal(p.Data, &m)
			if m.Type == wire.TypeText {
				t.Fatalf("member %d got an extra message %s", i, p.Data)
			}
		case <-time.After(20 * time.Millisecond):
		}
	}

	call[struct{}](t, o, "group.mute", group.MuteReq{GroupID: g.GroupID, UserID: ids[1], Seconds: 600})
	call[group.Announcement](t, o, "group.announce", group.AnnounceReq{GroupID: g.GroupID, ClientID: "a1", Text: "rules"})
	// Muted member 1 cannot speak.
	err := devs[1].Call(ctx(t), "msg.send", message.SendReq{ConvID: g.ConvID, ClientMsgID: "x", Type: "text", Content: text("hey")}, nil)
	if err == nil {
		t.Fatal("muted member sent")
	}

	off := s.device(t, members[0], "d")
	sync := call[message.SyncResp](t, off, "msg.sync", message.SyncReq{})
	if len(sync.Conversations) != 1 {
		t.Fatalf("sync %+v", sync)
	}
	var texts int
	var events []string
	for _, m := range sync.Conversations[0].Messages {
		switch m.Type {
		case wire.TypeText:
			texts++
		case wire.TypeSystem:
			var ev group.SystemEvent
			_ = json.Unmarshal(m.Content, &ev)
			events = append(events, ev.Event)
		}
	}
	if texts != msgs || fmt.Sprint(events) != "[group.created member.muted group.announcement]" {
		t.Fatalf("offline member synced %d texts and events %v", texts, events)
	}
}

// TestUnreadAcrossDevices: unread counts follow the read cursor on every device,
// survive Redis losing everything, and a 1:1 read sends the peer a receipt.
func TestUnreadAcrossDevices(t *testing.T) {
	s := start(t)
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	phone, laptop := s.device(t, alice, "phone"), s.device(t, alice, "laptop")
	b := s.device(t, bob, "d")
	befriend(t, phone, b, bob.id)
	var last message.SendResp
	for i := range 5 {
		last = sendText(t, b, alice.id, fmt.Sprint("u", i), "ping")
	}
	list := call[conv.ListResp](t, laptop, "conv.list", conv.ListReq{})
	if len(list.Conversations) != 1 || list.Conversations[0].Unread != 5 {
		t.Fatalf("laptop sees %+v", list.Conversations)
	}
	call[wire.ConvState](t, phone, "conv.read", conv.ReadReq{ConvID: last.ConvID, Seq: last.Seq - 2})
	p, err := laptop.NextPush(ctx(t), "conv.updated")
	if err != nil {
		t.Fatal(err)
	}
	var st wire.ConvState
	if json.Unmarshal(p.Data, &st); st.Unread != 2 {
		t.Fatalf("laptop told unread %d", st.Unread)
	}
	if _, err := b.NextPush(ctx(t), "msg.read"); err != nil {
		t.Fatal("bob got no read receipt")
	}
	s.env.FlushRedis(t)
	list = call[conv.ListResp](t, laptop, "conv.list", conv.ListReq{})
	if list.Conversations[0].Unread != 2 {
		t.Fatalf("after FLUSHALL unread %d", list.Conversations[0].Unread)
	}
}
