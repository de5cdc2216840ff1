package group_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/fntest"
	friendpkg "natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// cast is the set of people a permission case plays with.
type cast struct {
	owner, admin, admin2, member, member2, outsider endpoint.Caller
}

func (c cast) by(name string) endpoint.Caller {
	return map[string]endpoint.Caller{"owner": c.owner, "admin": c.admin, "admin2": c.admin2, "member": c.member, "member2": c.member2, "outsider": c.outsider}[name]
}

func newCast(t *testing.T, e *testenv.Env) cast {
	t.Helper()
	var c cast
	for i, p := range []*endpoint.Caller{&c.owner, &c.admin, &c.admin2, &c.member, &c.member2, &c.outsider} {
		*p, _ = fntest.User(t, e, fmt.Sprint("user", i), "d")
	}
	return c
}

// newGroup makes a group where owner, two admins and two members play their roles.
func newGroup(t *testing.T, e *testenv.Env, c cast, policy string) group.Info {
	t.Helper()
	g := fntest.Must[group.Info](t, e, "group.create", c.owner, group.CreateReq{Name: "team", JoinPolicy: policy,
		Members: []int64{c.admin.UserID, c.admin2.UserID, c.member.UserID, c.member2.UserID}})
	for _, a := range []endpoint.Caller{c.admin, c.admin2} {
		fntest.Must[group.Empty](t, e, "group.role.set", c.owner, group.RoleReq{GroupID: g.GroupID, UserID: a.UserID, Role: "admin"})
	}
	return g
}

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

var seq atomic.Int64

func sendTo(tb testing.TB, e *testenv.Env, c endpoint.Caller, conv, body string) (message.SendResp, error) {
	return fntest.Call[message.SendResp](tb, e, "msg.send", c, message.SendReq{ConvID: conv, ClientMsgID: fmt.Sprint("m", seq.Add(1)), Type: "text", Content: text(body)})
}

// TestPermissionTable runs every row of the permission table (functions/group/perm)
// through the real endpoints: each case gets a fresh group.
func TestPermissionTable(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	c := newCast(t, e)

	type act func(t *testing.T, g group.Info, actor endpoint.Caller, target endpoint.Caller) error
	op := func(name string, req func(g group.Info, target endpoint.Caller) any) act {
		return func(t *testing.T, g group.Info, actor, target endpoint.Caller) error {
			_, err := fntest.Call[json.RawMessage](t, e, name, actor, req(g, target))
			return err
		}
	}
	update := op("group.update", func(g group.Info, _ endpoint.Caller) any {
		n := "renamed"
		return group.UpdateReq{GroupID: g.GroupID, Name: &n}
	})
	invite := op("group.invite", func(g group.Info, _ endpoint.Caller) any {
		return group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{c.outsider.UserID}}
	})
	kick := op("group.kick", func(g group.Info, x endpoint.Caller) any {
		return group.MemberReq{GroupID: g.GroupID, UserID: x.UserID}
	})
	promote := op("group.role.set", func(g group.Info, x endpoint.Caller) any {
		return group.RoleReq{GroupID: g.GroupID, UserID: x.UserID, Role: "admin"}
	})
	demote := op("group.role.set", func(g group.Info, x endpoint.Caller) any {
		return group.RoleReq{GroupID: g.GroupID, UserID: x.UserID, Role: "member"}
	})
	transfer := op("group.transfer", func(g group.Info, x endpoint.Caller) any {
		return group.MemberReq{GroupID: g.GroupID, UserID: x.UserID}
	})
	mute := op("group.mute", func(g group.Info, x endpoint.Caller) any {
		return group.MuteReq{GroupID: g.GroupID, UserID: x.UserID, Seconds: 60}
	})
	muteAll := op("group.mute.all", func(g group.Info, _ endpoint.Caller) any { return group.MuteAllReq{GroupID: g.GroupID, Muted: true} })
	announce := op("group.announce", func(g group.Info, _ endpoint.Caller) any {
		return group.AnnounceReq{GroupID: g.GroupID, ClientID: "a1", Text: "hello all"}
	})
	dismiss := op("group.dismiss", func(g group.Info, _ endpoint.Caller) any { return group.GroupReq{GroupID: g.GroupID} })
	leave := op("group.leave", func(g group.Info, _ endpoint.Caller) any { return group.GroupReq{GroupID: g.GroupID} })
	members := op("group.members", func(g group.Info, _ endpoint.Caller) any { return group.MembersReq{GroupID: g.GroupID} })
	send := func(t *testing.T, g group.Info, actor, _ endpoint.Caller) error {
		_, err := sendTo(t, e, actor, g.ConvID, "hi")
		return err
	}
	history := func(t *testing.T, g group.Info, actor, _ endpoint.Caller) error {
		_, err := fntest.Call[message.HistoryResp](t, e, "msg.history", actor, message.HistoryReq{ConvID: g.ConvID})
		return err
	}
	review := func(t *testing.T, g group.Info, actor, _ endpoint.Caller) error {
		j := fntest.Must[group.JoinResp](t, e, "group.join", c.outsider, group.JoinReq{GroupID: g.GroupID})
		_, err := fntest.Call[group.RespondResp](t, e, "group.join.respond", actor, group.RespondReq{GroupID: g.GroupID, RequestID: j.RequestID, Accept: true})
		return err
	}
	// State set up before the action.
	muteTarget := func(t *testing.T, g group.Info, target endpoint.Caller) {
		fntest.Must[group.Empty](t, e, "group.mute", c.owner, group.MuteReq{GroupID: g.GroupID, UserID: target.UserID, Seconds: 3600})
	}
	muteEveryone := func(t *testing.T, g group.Info, _ endpoint.Caller) {
		fntest.Must[group.Empty](t, e, "group.mute.all", c.owner, group.MuteAllReq{GroupID: g.GroupID, Muted: true})
	}
	kicked := func(t *testing.T, g group.Info, target endpoint.Caller) {
		fntest.Must[group.Empty](t, e, "group.kick", c.owner, group.MemberReq{GroupID: g.GroupID, UserID: target.UserID})
	}

	tests := []struct {
		action, actor, target string
		policy                string
		before                func(*testing.T, group.Info, endpoint.Caller)
		do                    act
		want                  imerr.Code // "" = allowed
	}{
		{"update_info", "owner", "", "", nil, update, ""},
		{"update_info", "admin", "", "", nil, update, ""},
		{"update_info", "member", "", "", nil, update, imerr.Forbidden},
		{"update_info", "outsider", "", "", nil, update, imerr.Forbidden},
		{"invite", "owner", "", "", nil, invite, ""},
		{"invite", "admin", "", "", nil, invite, ""},
		{"invite", "member", "", "approval", nil, invite, imerr.Forbidden},
		{"invite", "member", "", "open", nil, invite, ""},
		{"invite", "outsider", "", "open", nil, invite, imerr.Forbidden},
		{"review_join", "admin", "", "", nil, review, ""},
		{"review_join", "member", "", "", nil, review, imerr.Forbidden},
		{"kick", "owner", "admin", "", nil, kick, ""},
		{"kick", "owner", "member", "", nil, kick, ""},
		{"kick", "admin", "member", "", nil, kick, ""},
		{"kick", "admin", "admin2", "", nil, kick, imerr.Forbidden},
		{"kick", "admin", "owner", "", nil, kick, imerr.Forbidden},
		{"kick", "member", "member2", "", nil, kick, imerr.Forbidden},
		{"kick", "owner", "owner", "", nil, kick, imerr.Forbidden},
		{"kick", "owner", "outsider", "", nil, kick, imerr.NotFound},
		{"set_role", "owner", "member", "", nil, promote, ""},
		{"set_role", "owner", "admin", "", nil, demote, ""},
		{"set_role", "admin", "member", "", nil, promote, imerr.Forbidden},
		{"set_role", "admin", "admin2", "", nil, demote, imerr.Forbidden},
		{"transfer", "owner", "member", "", nil, transfer, ""},
		{"transfer", "admin", "member", "", nil, transfer, imerr.Forbidden},
		{"transfer", "owner", "outsider", "", nil, transfer, imerr.NotFound},
		{"mute_member", "owner", "admin", "", nil, mute, ""},
		{"mute_member", "admin", "member", "", nil, mute, ""},
		{"mute_member", "admin", "admin2", "", nil, mute, imerr.Forbidden},
		{"mute_member", "admin", "owner", "", nil, mute, imerr.Forbidden},
		{"mute_member", "member", "member2", "", nil, mute, imerr.Forbidden},
		{"mute_all", "admin", "", "", nil, muteAll, ""},
		{"mute_all", "member", "", "", nil, muteAll, imerr.Forbidden},
		{"announce", "admin", "", "", nil, announce, ""},
		{"announce", "member", "", "", nil, announce, imerr.Forbidden},
		{"dismiss", "owner", "", "", nil, dismiss, ""},
		{"dismiss", "admin", "", "", nil, dismiss, imerr.Forbidden},
		{"leave", "member", "", "", nil, leave, ""},
		{"leave", "admin", "", "", nil, leave, ""},
		{"leave", "owner", "", "", nil, leave, imerr.Forbidden},
		{"send", "member", "", "", nil, send, ""},
		{"send", "outsider", "", "", nil, send, imerr.NotFound},
		{"send", "member", "member", "", muteTarget, send, imerr.Forbidden},
		{"send", "member", "", "", muteEveryone, send, imerr.Forbidden},
		{"send", "admin", "", "", muteEveryone, send, ""},
		{"send", "member", "member", "", kicked, send, imerr.NotFound},
		{"read_history", "member", "", "", nil, history, ""},
		{"read_history", "outsider", "", "", nil, history, imerr.NotFound},
		{"read_history", "member", "member", "", kicked, history, imerr.NotFound},
		{"read_members", "member", "", "", nil, members, ""},
		{"read_members", "outsider", "", "", nil, members, imerr.Forbidden},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s/%s", tt.action, tt.actor)
		if tt.target != "" {
			name += "->" + tt.target
		}
		if tt.policy != "" {
			name += "/" + tt.policy
		}
		if tt.before != nil {
			name += "/prepared"
		}
		t.Run(name, func(t *testing.T) {
			g := newGroup(t, e, c, tt.policy)
			target := c.by(tt.target)
			if tt.before != nil {
				tt.before(t, g, target)
			}
			err := tt.do(t, g, c.by(tt.actor), target)
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMemberCapUnderConcurrency(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Group: group.Config{MaxMembers: 10}})
	owner, _ := fntest.User(t, e, "owner", "d")
	g := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{Name: "small", JoinPolicy: group.PolicyOpen})
	users := fntest.SeedUsers(t, e, "joiner", 30)
	var joined, full atomic.Int64
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := fntest.Call[group.JoinResp](t, e, "group.join", endpoint.Caller{UserID: u}, group.JoinReq{GroupID: g.GroupID})
			switch imerr.CodeOf(err) {
			case "":
				joined.Add(1)
			case imerr.Conflict:
				full.Add(1)
			default:
				t.Errorf("join: %v", err)
			}
		}()
	}
	wg.Wait()
	if joined.Load() != 9 || full.Load() != 21 {
		t.Fatalf("joined %d, refused %d; want 9 and 21", joined.Load(), full.Load())
	}
	var rows, count int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM group_members WHERE group_id = ?", g.GroupID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.QueryRow("SELECT member_count FROM chat_groups WHERE id = ?", g.GroupID).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if rows != 10 || count != 10 {
		t.Fatalf("%d member rows, member_count %d; want 10", rows, count)
	}
}

func TestLargeGroupFanOutAndSync(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	owner, _ := fntest.User(t, e, "owner", "d")
	ids := fntest.SeedUsers(t, e, "m", 4999)
	start := time.Now()
	g := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{ClientID: "big-1", Name: "everyone", Members: ids})
	t.Logf("created a 5,000-member group in %v", time.Since(start))
	if g.MemberCount != 5000 {
		t.Fatalf("member_count %d", g.MemberCount)
	}
	// A retried create answers the same group; one more member does not fit.
	if again := fntest.Must[group.Info](t, e, "group.create", owner, group.CreateReq{ClientID: "big-1", Name: "everyone", Members: ids}); again.GroupID != g.GroupID {
		t.Fatalf("retried create made group %d, want %d", again.GroupID, g.GroupID)
	}
	extra := fntest.SeedUsers(t, e, "late", 1)
	_, err := fntest.Call[group.InviteResp](t, e, "group.invite", owner, group.UsersReq{GroupID: g.GroupID, UserIDs: extra})
	if imerr.CodeOf(err) != imerr.Conflict {
		t.Fatalf("inviting member 5,001: %v, want conflict", err)
	}

	// A group message is published once, on the group's subject, in order: the
	// edges fan it out to members' connections (edge/e2e covers that part).
	const msgs = 5
	var mu sync.Mutex
	var got []int64
	sub, err := e.NC.Subscribe(subject.DeliverGroup(g.GroupID), func(m *nats.Msg) {
		var p struct {
			Event string       `json:"event"`
			Data  wire.Message `json:"data"`
		}
		if json.Unmarshal(m.Data, &p) == nil && p.Data.Type == wire.TypeText {
			mu.Lock()
			got = append(got, p.Data.Seq)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	var sent []int64
	for i := range msgs {
		start := time.Now()
		r, err := sendTo(t, e, owner, g.ConvID, fmt.Sprint("broadcast ", i))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("send %d acked in %v", r.Seq, time.Since(start))
		sent = append(sent, r.Seq)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n, seqs := len(got), append([]int64(nil), got...)
		mu.Unlock()
		if n >= msgs {
			if fmt.Sprint(seqs) != fmt.Sprint(sent) {
				t.Fatalf("the group's subject got seqs %v, want %v once each, in order", seqs, sent)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group's subject got %d of %d messages", n, msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// An offline member syncs the messages and the system events it missed.
	fntest.Must[group.Empty](t, e, "group.mute", owner, group.MuteReq{GroupID: g.GroupID, UserID: ids[1], Seconds: 60})
	fntest.Must[group.Announcement](t, e, "group.announce", owner, group.AnnounceReq{GroupID: g.GroupID, ClientID: "x", Text: "read the rules"})
	s := fntest.Must[message.SyncResp](t, e, "msg.sync", endpoint.Caller{UserID: ids[0]}, message.SyncReq{})
	if len(s.Conversations) != 1 {
		t.Fatalf("sync conversations %+v", s.Conversations)
	}
	var events []string
	for _, m := range s.Conversations[0].Messages {
		if m.Type == wire.TypeSystem {
			var ev group.SystemEvent
			_ = json.Unmarshal(m.Content, &ev)
			events = append(events, ev.Event)
		}
	}
	if got := fmt.Sprint(events); got != "[group.created member.muted group.announcement]" {
		t.Fatalf("synced system events %s", got)
	}
	if n := len(s.Conversations[0].Messages); n != 1+msgs+2 {
		t.Fatalf("synced %d messages, want %d", n, 1+msgs+2)
	}
}

func TestHistoryVisibilityAndKick(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	c := newCast(t, e)
	for _, visible := range []bool{false, true} {
		t.Run(fmt.Sprint("history_visible=", visible), func(t *testing.T) {
			g := fntest.Must[group.Info](t, e, "group.create", c.owner, group.CreateReq{Name: "g", HistoryVisible: visible, Members: []int64{c.member.UserID}})
			for i := range 3 {
				if _, err := sendTo(t, e, c.owner, g.ConvID, fmt.Sprint("before ", i)); err != nil {
					t.Fatal(err)
				}
			}
			fntest.Must[group.InviteResp](t, e, "group.invite", c.owner, group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{c.outsider.UserID}})
			if _, err := sendTo(t, e, c.owner, g.ConvID, "after"); err != nil {
				t.Fatal(err)
			}
			h := fntest.Must[message.HistoryResp](t, e, "msg.history", c.outsider, message.HistoryReq{ConvID: g.ConvID})
			want := 2 // the join notice and "after"
			if visible {
				want = 6 // plus creation and the three earlier messages
			}
			if len(h.Messages) != want {
				t.Fatalf("newcomer sees %d messages, want %d", len(h.Messages), want)
			}
			// Kicked: the kicked user hears of it, then stops receiving and reading.
			inbox, _ := e.NC.SubscribeSync(subject.Deliver(c.outsider.UserID))
			fntest.Must[group.Empty](t, e, "group.kick", c.owner, group.MemberReq{GroupID: g.GroupID, UserID: c.outsider.UserID})
			// Pushes of earlier messages may still be on their way (fan-out is
			// asynchronous); what matters is the notice, and nothing after it.
			var kickSeq int64
			for kickSeq == 0 {
				m, err := inbox.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatal("kicked user got no notice")
				}
				var p struct{ Data wire.Message }
				_ = json.Unmarshal(m.Data, &p)
				var ev group.SystemEvent
				if p.Data.Type == wire.TypeSystem && json.Unmarshal(p.Data.Content, &ev) == nil && ev.Event == group.EvtKicked {
					kickSeq = p.Data.Seq
				}
			}
			if _, err := sendTo(t, e, c.owner, g.ConvID, "without you"); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := inbox.NextMsg(300 * time.Millisecond)
				if err != nil {
					break
				}
				var p struct{ Data wire.Message }
				if json.Unmarshal(m.Data, &p) == nil && p.Data.Seq > kickSeq {
					t.Fatalf("kicked user still receives: %s", m.Data)
				}
			}
			_, err := fntest.Call[message.HistoryResp](t, e, "msg.history", c.outsider, message.HistoryReq{ConvID: g.ConvID})
			if imerr.CodeOf(err) != imerr.NotFound {
				t.Fatalf("kicked user reads history: %v", err)
			}
		})
	}
}

func TestJoinApprovalFlow(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	c := newCast(t, e)
	g := newGroup(t, e, c, group.PolicyApproval)
	adminInbox, _ := e.NC.SubscribeSync(subject.Deliver(c.admin.UserID))
	j := fntest.Must[group.JoinResp](t, e, "group.join", c.outsider, group.JoinReq{GroupID: g.GroupID, Message: "let me in"})
	again := fntest.Must[group.JoinResp](t, e, "group.join", c.outsider, group.JoinReq{GroupID: g.GroupID, Message: "please"})
	if j.Status != "pending" || again.RequestID != j.RequestID {
		t.Fatalf("join %+v, again %+v", j, again)
	}
	for { // skip the role changes' system messages
		m, err := adminInbox.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal("admins were not told of the request")
		}
		var p struct{ Event string }
		if json.Unmarshal(m.Data, &p); p.Event == "group.join.requested" {
			break
		}
	}
	list := fntest.Must[group.JoinRequestsResp](t, e, "group.join.requests", c.admin, group.GroupReq{GroupID: g.GroupID})
	if len(list.Requests) != 1 || list.Requests[0].Message != "please" {
		t.Fatalf("requests %+v", list.Requests)
	}
	r := fntest.Must[group.RespondResp](t, e, "group.join.respond", c.admin, group.RespondReq{GroupID: g.GroupID, RequestID: j.RequestID, Accept: true})
	r2 := fntest.Must[group.RespondResp](t, e, "group.join.respond", c.admin2, group.RespondReq{GroupID: g.GroupID, RequestID: j.RequestID, Accept: false})
	if r.Status != "accepted" || r2.Status != "accepted" {
		t.Fatalf("respond %+v then %+v", r, r2)
	}
	info := fntest.Must[group.Info](t, e, "group.get", c.outsider, group.GroupReq{GroupID: g.GroupID})
	if info.MyRole != "member" || info.MemberCount != 6 {
		t.Fatalf("after approval %+v", info)
	}
	// Invite-only groups refuse joins.
	fntest.Must[group.Info](t, e, "group.update", c.owner, group.UpdateReq{GroupID: g.GroupID, JoinPolicy: ptr(group.PolicyInvite)})
	fntest.Must[group.Empty](t, e, "group.leave", c.outsider, group.GroupReq{GroupID: g.GroupID})
	_, err := fntest.Call[group.JoinResp](t, e, "group.join", c.outsider, group.JoinReq{GroupID: g.GroupID})
	if imerr.CodeOf(err) != imerr.Forbidden {
		t.Fatalf("join invite-only: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	c := newCast(t, e)
	long := string(make([]byte, 100))
	tests := []struct {
		name string
		op   string
		req  any
		want imerr.Code
	}{
		{"no name", "group.create", group.CreateReq{}, imerr.BadRequest},
		{"long name", "group.create", group.CreateReq{Name: long}, imerr.BadRequest},
		{"bad policy", "group.create", group.CreateReq{Name: "x", JoinPolicy: "whoever"}, imerr.BadRequest},
		{"unknown member", "group.create", group.CreateReq{Name: "x", Members: []int64{99999}}, imerr.NotFound},
		{"negative member", "group.create", group.CreateReq{Name: "x", Members: []int64{-1}}, imerr.BadRequest},
		{"no such group", "group.get", group.GroupReq{GroupID: 424242}, imerr.NotFound},
		{"no group id", "group.members", group.MembersReq{}, imerr.BadRequest},
		{"role owner", "group.role.set", group.RoleReq{GroupID: 1, UserID: 2, Role: "owner"}, imerr.BadRequest},
		{"mute too long", "group.mute", group.MuteReq{GroupID: 1, UserID: 2, Seconds: 1 << 30}, imerr.BadRequest},
		{"empty announcement", "group.announce", group.AnnounceReq{GroupID: 1, ClientID: "a"}, imerr.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[json.RawMessage](t, e, tt.op, c.owner, tt.req)
			if got := imerr.CodeOf(err); got != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
	var n int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM chat_groups").Scan(&n); err != nil || n != 0 {
		t.Fatalf("bad input created %d groups (%v)", n, err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestWhoMayBeAdded: creating a group with someone, or inviting them, needs their
// consent as their privacy gives it ("groups": everyone, friends, nobody), and
// never works for someone who blocked the actor; joining by oneself is not
// adding. The refusal does not say whom or why.
func TestWhoMayBeAdded(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	actor, _ := fntest.User(t, e, "actor", "a")
	friend, _ := fntest.User(t, e, "friend", "f")
	fntest.Befriend(t, e, actor, friend)
	str := func(s string) *string { return &s }
	users := map[string]endpoint.Caller{}
	setup := map[string]func(u endpoint.Caller){
		"open":         func(endpoint.Caller) {},
		"friends-only": func(u endpoint.Caller) { privacy(t, e, u, str("friends")) },
		"nobody":       func(u endpoint.Caller) { privacy(t, e, u, str("nobody")) },
		"blocked the actor": func(u endpoint.Caller) {
			fntest.Must[map[string]any](t, e, "block.add", u, friendpkg.UserReq{UserID: actor.UserID})
		},
	}
	for name, prepare := range setup {
		u, _ := fntest.User(t, e, strings.ReplaceAll(name, " ", "_"), "d")
		prepare(u)
		users[name] = u
	}
	friendNobody, _ := fntest.User(t, e, "friend_nobody", "d")
	fntest.Befriend(t, e, actor, friendNobody)
	privacy(t, e, friendNobody, str("nobody"))
	friendOnly, _ := fntest.User(t, e, "friend_only", "d")
	fntest.Befriend(t, e, actor, friendOnly)
	privacy(t, e, friendOnly, str("friends"))

	tests := []struct {
		name string
		user endpoint.Caller
		ok   bool
	}{
		{"privacy everyone (the default)", users["open"], true},
		{"privacy friends, a stranger", users["friends-only"], false},
		{"privacy friends, a friend", friendOnly, true},
		{"privacy nobody, a stranger", users["nobody"], false},
		{"privacy nobody, a friend", friendNobody, false},
		{"blocked the actor", users["blocked the actor"], false},
		{"a friend", friend, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[group.Info](t, e, "group.create", actor, group.CreateReq{Name: "with " + tt.name, Members: []int64{tt.user.UserID}})
			if tt.ok != (err == nil) {
				t.Fatalf("create: %v", err)
			}
			g := fntest.Must[group.Info](t, e, "group.create", actor, group.CreateReq{Name: "empty", JoinPolicy: group.PolicyOpen})
			_, err = fntest.Call[group.InviteResp](t, e, "group.invite", actor, group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{tt.user.UserID}})
			if tt.ok != (err == nil) {
				t.Fatalf("invite: %v", err)
			}
			if err != nil && (imerr.CodeOf(err) != imerr.Forbidden || imerr.From(err).Message != "1 of the users cannot be added to a group by you") {
				t.Fatalf("refusal %v tells more than it should", err)
			}
			// Joining an open group by oneself needs nobody's consent.
			if !tt.ok {
				if _, err := fntest.Call[group.JoinResp](t, e, "group.join", tt.user, group.JoinReq{GroupID: g.GroupID}); err != nil {
					t.Fatalf("joining by oneself: %v", err)
				}
			}
		})
	}
}

func privacy(t *testing.T, e *testenv.Env, u endpoint.Caller, groups *string) {
	t.Helper()
	fntest.Must[friendpkg.Privacy](t, e, "account.privacy.set", u, friendpkg.PrivacySetReq{Groups: groups})
}
