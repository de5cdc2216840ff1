package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/conv"
	"natter/functions/fntest"
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

// TestGroupMembershipAcrossEdges: group messages travel once per edge on the
// group's subject, and membership changes reach the edges in order with them. A
// member invited while online gets the join's system message once and then the
// group's messages, on each of their devices, whatever edge each is on; a kicked
// member gets the kick and nothing after it, on every device, and not after a
// reconnect either; the creator's other device gets the creation, the device
// that created it only the reply.
func TestGroupMembershipAcrossEdges(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{})
	other := st.AddEdge(t, gateway.Config{HTTPPublicLimit: -1})
	s := &stack{env: st.Env, ws: st.WS, base: st.Base}
	onOther := func(u user, device string) *client.Client {
		t.Helper()
		c, err := client.Dial(ctx(t), client.Options{URL: other.WS, Token: s.login(t, u, device).AccessToken})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	owner, kept, newcomer := s.user(t, "owner"), s.user(t, "kept"), s.user(t, "newcomer")
	o1, o2 := s.device(t, owner, "phone"), onOther(owner, "laptop")
	k1, k2 := s.device(t, kept, "phone"), onOther(kept, "laptop")
	n1, n2 := s.device(t, newcomer, "phone"), onOther(newcomer, "laptop")

	g := call[group.Info](t, o1, "group.create", group.CreateReq{Name: "crew", Members: []int64{kept.id}})
	for _, c := range []*client.Client{o2, k1, k2} {
		if ev := systemEvent(t, nextMsg(t, c)); ev != group.EvtCreated {
			t.Fatalf("first push %q, want the creation", ev)
		}
	}
	send := func(id string) int64 {
		t.Helper()
		return call[message.SendResp](t, o1, "msg.send", message.SendReq{ConvID: g.ConvID, ClientMsgID: id, Type: "text", Content: text(id)}).Seq
	}
	// expect reads c's group pushes up to and including seq: each seq once, in order.
	expect := func(name string, c *client.Client, seq int64) {
		t.Helper()
		var last int64
		for last < seq {
			m := nextMsg(t, c)
			if m.Seq <= last {
				t.Fatalf("%s got seq %d after %d", name, m.Seq, last)
			}
			last = m.Seq
		}
		if last != seq {
			t.Fatalf("%s got seq %d, want %d", name, last, seq)
		}
	}
	// quiet checks c gets no message push for a while.
	quiet := func(name string, c *client.Client) {
		t.Helper()
		for {
			select {
			case p := <-c.Pushes():
				if p.Event == "msg.new" {
					t.Fatalf("%s got %s", name, p.Data)
				}
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	first := send("m1")
	for name, c := range map[string]*client.Client{"owner's laptop": o2, "kept phone": k1, "kept laptop": k2} {
		expect(name, c, first)
	}
	quiet("newcomer phone", n1)
	quiet("owner's phone (the sender)", o1)

	// Invited while online on two edges.
	call[struct{}](t, o1, "group.invite", group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{newcomer.id}})
	for name, c := range map[string]*client.Client{"newcomer phone": n1, "newcomer laptop": n2, "kept phone": k1, "kept laptop": k2, "owner's laptop": o2} {
		if ev := systemEvent(t, nextMsg(t, c)); ev != group.EvtJoined {
			t.Fatalf("%s: push %q, want the join", name, ev)
		}
	}
	quiet("newcomer phone", n1) // the join once, not again from the group's subject
	second := send("m2")
	for name, c := range map[string]*client.Client{"newcomer phone": n1, "newcomer laptop": n2, "kept phone": k1, "kept laptop": k2} {
		expect(name, c, second)
	}

	// Kicked: the kick arrives, then nothing more, on both devices.
	call[struct{}](t, o1, "group.kick", group.MemberReq{GroupID: g.GroupID, UserID: kept.id})
	for name, c := range map[string]*client.Client{"kept phone": k1, "kept laptop": k2, "newcomer laptop": n2} {
		m := nextMsg(t, c)
		if ev := systemEvent(t, m); ev != group.EvtKicked {
			t.Fatalf("%s: push %q, want the kick", name, ev)
		}
		if m.Seq <= second {
			t.Fatalf("%s: kick at seq %d", name, m.Seq)
		}
	}
	third := send("m3")
	expect("newcomer laptop", n2, third)
	quiet("kicked phone", k1)
	quiet("kicked laptop", k2)
	k3 := onOther(kept, "tablet")
	send("m4")
	quiet("kicked member's new device", k3)
}

// systemEvent is the event of a system message ("" for other messages).
func systemEvent(t *testing.T, m wire.Message) string {
	t.Helper()
	if m.Type != wire.TypeSystem {
		return ""
	}
	var ev group.SystemEvent
	if err := json.Unmarshal(m.Content, &ev); err != nil {
		t.Fatal(err)
	}
	return ev.Event
}
