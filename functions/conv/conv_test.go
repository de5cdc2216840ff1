package conv_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"natter/functions/conv"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

var n int

func send(tb testing.TB, e *testenv.Env, from endpoint.Caller, req message.SendReq) message.SendResp {
	tb.Helper()
	n++
	req.ClientMsgID = fmt.Sprint("c", n)
	if req.Type == "" {
		req.Type = wire.TypeText
		req.Content = json.RawMessage(`{"text":"hello"}`)
	}
	return fntest.Must[message.SendResp](tb, e, "msg.send", from, req)
}

func byID(t *testing.T, l conv.ListResp) map[string]conv.Conversation {
	t.Helper()
	m := map[string]conv.Conversation{}
	for _, c := range l.Conversations {
		m[c.ConvID] = c
	}
	return m
}

func TestListUnreadPinMuteHide(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "phone")
	aliceLaptop, _ := fntest.Login(t, e, "alice", "laptop")
	bob, _ := fntest.User(t, e, "bob", "b")
	carol, _ := fntest.User(t, e, "carol", "c")
	fntest.Befriend(t, e, alice, bob)
	fntest.Befriend(t, e, alice, carol)

	ab := send(t, e, bob, message.SendReq{To: alice.UserID}).ConvID
	send(t, e, bob, message.SendReq{To: alice.UserID})
	send(t, e, alice, message.SendReq{To: bob.UserID}) // alice's own reply: reads what came before
	send(t, e, bob, message.SendReq{To: alice.UserID})
	// The list orders by last message time (ms), then by id: let each of these
	// conversations' last messages land in a later millisecond.
	tick := func() { time.Sleep(2 * time.Millisecond) }
	tick()
	ac := send(t, e, carol, message.SendReq{To: alice.UserID}).ConvID
	tick()
	g := fntest.Must[group.Info](t, e, "group.create", carol, group.CreateReq{Name: "trio", Members: []int64{alice.UserID, bob.UserID}})
	send(t, e, bob, message.SendReq{ConvID: g.ConvID, Type: wire.TypeRich, Content: json.RawMessage(fmt.Sprintf(`{"text":"@alice look","mentions":[%d]}`, alice.UserID))})

	l := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{})
	if len(l.Conversations) != 3 || l.Conversations[0].ConvID != g.ConvID || l.Conversations[2].ConvID != ab {
		t.Fatalf("order %+v", l.Conversations)
	}
	got := byID(t, l)
	if got[ab].Unread != 1 || got[ac].Unread != 1 || got[g.ConvID].Unread != 2 {
		t.Fatalf("unread ab %d ac %d group %d, want 1 1 2", got[ab].Unread, got[ac].Unread, got[g.ConvID].Unread)
	}
	if !got[g.ConvID].Mentioned || got[ab].Mentioned || got[g.ConvID].Name != "trio" || got[ab].Name != "bob" || got[ab].PeerID != bob.UserID {
		t.Fatalf("flags and names %+v", got)
	}
	if last := got[ab].Last; last == nil || last.Seq != 4 || string(last.Content) != `{"text":"hello"}` {
		t.Fatalf("preview %+v", got[ab].Last)
	}

	// Flags are always present, false too: strict decoders need every field.
	raw := fntest.Must[json.RawMessage](t, e, "conv.list", alice, conv.ListReq{Limit: 1})
	for _, field := range []string{`"pinned":false`, `"muted":false`, `"mentioned":`} {
		if !strings.Contains(string(raw), field) {
			t.Fatalf("conv.list lacks %s: %s", field, raw)
		}
	}

	// Pin the oldest: it comes first. Changes reach alice's other device.
	laptopInbox, _ := e.NC.SubscribeSync(subject.Deliver(alice.UserID))
	alice.ConnID = "phone-conn"
	if st := fntest.Must[wire.ConvState](t, e, "conv.pin", alice, conv.PinReq{ConvID: ab, Pinned: true}); !st.Pinned {
		t.Fatalf("pin %+v", st)
	}
	// Pushes of the group messages sent above may still be on their way.
	for {
		m, err := laptopInbox.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("other device not told: %v", err)
		}
		if jsonHas(m.Data, `"event":"conv.updated"`) {
			break
		}
	}
	fntest.Must[wire.ConvState](t, e, "conv.mute", alice, conv.MuteReq{ConvID: ac, Muted: true})
	l = fntest.Must[conv.ListResp](t, e, "conv.list", aliceLaptop, conv.ListReq{})
	if l.Conversations[0].ConvID != ab || !l.Conversations[0].Pinned || !byID(t, l)[ac].Muted {
		t.Fatalf("after pin/mute %+v", l.Conversations)
	}

	// Read: unread drops, the mention flag clears, bob gets a receipt.
	bobInbox, _ := e.NC.SubscribeSync(subject.Deliver(bob.UserID))
	st := fntest.Must[wire.ConvState](t, e, "conv.read", alice, conv.ReadReq{ConvID: ab, Seq: 4})
	if st.Unread != 0 || st.ReadSeq != 4 {
		t.Fatalf("after read %+v", st)
	}
	m, err := bobInbox.NextMsg(5 * time.Second)
	if err != nil || !jsonHas(m.Data, `"event":"msg.read"`) || !jsonHas(m.Data, `"seq":4`) {
		t.Fatalf("receipt to bob: %v %v", err, m)
	}
	// Reading backwards is a no-op; past the end is refused.
	if st := fntest.Must[wire.ConvState](t, e, "conv.read", alice, conv.ReadReq{ConvID: ab, Seq: 2}); st.ReadSeq != 4 {
		t.Fatalf("cursor went back: %+v", st)
	}
	if _, err := fntest.Call[wire.ConvState](t, e, "conv.read", alice, conv.ReadReq{ConvID: ab, Seq: 99}); imerr.CodeOf(err) != imerr.BadRequest {
		t.Fatalf("read past the end: %v", err)
	}
	fntest.Must[wire.ConvState](t, e, "conv.read", alice, conv.ReadReq{ConvID: g.ConvID, Seq: 2})
	if got := byID(t, fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{})); got[g.ConvID].Mentioned {
		t.Fatal("mention flag survives reading past it")
	}

	// Counts come from MySQL alone: the same after Redis loses everything.
	before := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{})
	e.FlushRedis(t)
	after := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{})
	if b, a := mustJSON(t, before), mustJSON(t, after); b != a {
		t.Fatalf("list changed after FLUSHALL:\n%s\n%s", b, a)
	}

	// Hide: gone until the next message.
	fntest.Must[wire.ConvState](t, e, "conv.hide", alice, conv.HideReq{ConvID: ac})
	if _, ok := byID(t, fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{}))[ac]; ok {
		t.Fatal("hidden conversation listed")
	}
	send(t, e, carol, message.SendReq{To: alice.UserID})
	if c, ok := byID(t, fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{}))[ac]; !ok || c.Unread != 2 {
		t.Fatalf("hidden conversation back with unread 2: %+v %v", c, ok)
	}

	// Paging and someone else's conversation.
	p1 := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{Limit: 2})
	p2 := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{Limit: 2, Offset: 2})
	if len(p1.Conversations) != 2 || !p1.HasMore || len(p2.Conversations) != 1 || p2.HasMore {
		t.Fatalf("pages %d/%v %d/%v", len(p1.Conversations), p1.HasMore, len(p2.Conversations), p2.HasMore)
	}
	if _, err := fntest.Call[wire.ConvState](t, e, "conv.pin", carol, conv.PinReq{ConvID: ab, Pinned: true}); imerr.CodeOf(err) != imerr.NotFound {
		t.Fatalf("pinning someone else's conversation: %v", err)
	}
}

func TestGroupReceipts(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	owner, _ := fntest.User(t, e, "owner", "d")
	ids := fntest.SeedUsers(t, e, "m", 4999)
	g := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{Name: "big", Members: ids})
	msg := send(t, e, owner, message.SendReq{ConvID: g.ConvID})
	for _, u := range ids[:1200] {
		if _, err := e.DB.Exec("UPDATE conversation_members SET read_seq = ? WHERE user_id = ? AND conv_id = ?", msg.Seq, u, g.ConvID); err != nil {
			t.Fatal(err)
		}
	}
	fntest.Must[wire.ConvState](t, e, "conv.read", endpoint.Caller{UserID: ids[1500]}, conv.ReadReq{ConvID: g.ConvID, Seq: msg.Seq})
	r := fntest.Must[message.ReceiptsResp](t, e, "msg.receipts", owner, message.ReceiptsReq{MsgRef: message.MsgRef{ID: msg.ID}})
	if r.Read != 1201 || r.Members != 4999 || r.Readers != nil {
		t.Fatalf("receipts read %d of %d, readers %v", r.Read, r.Members, r.Readers)
	}
	var readers []int64
	for after := int64(0); ; {
		p := fntest.Must[message.ReceiptsResp](t, e, "msg.receipts", owner, message.ReceiptsReq{MsgRef: message.MsgRef{ConvID: g.ConvID, Seq: msg.Seq}, After: after, Limit: 500})
		readers = append(readers, p.Readers...)
		if !p.HasMore {
			break
		}
		after = p.Readers[len(p.Readers)-1]
	}
	if len(readers) != 1201 || readers[0] != ids[0] || readers[1200] != ids[1500] {
		t.Fatalf("paged %d readers", len(readers))
	}
	if _, err := fntest.Call[message.ReceiptsResp](t, e, "msg.receipts", endpoint.Caller{UserID: 999999}, message.ReceiptsReq{MsgRef: message.MsgRef{ID: msg.ID}}); imerr.CodeOf(err) != imerr.NotFound {
		t.Fatalf("outsider asking receipts: %v", err)
	}
}

func jsonHas(b []byte, s string) bool { return strings.Contains(string(b), s) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
