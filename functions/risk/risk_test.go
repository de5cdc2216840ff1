package risk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/risk"
	"natter/functions/sensitive"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// Operators are not chat users: their ids are the admin domain's.
var (
	auditor  = endpoint.Caller{UserID: 9001, Role: op.RoleAuditor}
	operator = endpoint.Caller{UserID: 9002, Role: op.RoleOperator}
	super    = endpoint.Caller{UserID: 9003, Role: op.RoleSuperadmin}
)

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

func addWords(t *testing.T, e *testenv.Env, words ...risk.WordIn) {
	t.Helper()
	fntest.Must[risk.WordsAddResp](t, e, "admin.words.add", operator, risk.WordsAddReq{Words: words})
}

// waitFor polls cond (every 5 ms, up to 10 s) and returns how long it took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: not after 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestPermissions: each risk op against each role: an auditor reads, an
// operator also changes, a chat user reaches no admin op and an operator no
// chat op (report).
func TestPermissions(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	user, _ := fntest.User(t, e, "perm_user", "d")
	chat := endpoint.Caller{UserID: user.UserID, Role: "user"}
	ops := []string{"admin.words.list", "admin.words.add", "admin.words.remove", "admin.review.list", "admin.review.approve", "admin.review.delete"}
	for _, name := range ops {
		o := op.Must(name)
		for _, c := range []endpoint.Caller{chat, auditor, operator, super} {
			_, err := fntest.Call[json.RawMessage](t, e, name, c, map[string]any{})
			code := imerr.CodeOf(err)
			switch {
			case op.AdminRank(c.Role) == 0:
				if code != imerr.Unauthorized {
					t.Errorf("%s by a chat user: %v, want unauthorized", name, err)
				}
			case op.AdminRank(c.Role) < op.AdminRank(o.Role):
				if code != imerr.Forbidden {
					t.Errorf("%s by %s: %v, want forbidden", name, c.Role, err)
				}
			default:
				if code == imerr.Forbidden || code == imerr.Unauthorized {
					t.Errorf("%s by %s: %v, want admitted", name, c.Role, err)
				}
			}
		}
	}
	_, err := fntest.Call[risk.ReportResp](t, e, "report.submit", operator, risk.ReportReq{UserID: user.UserID, Reason: "spam"})
	fntest.WantCode(t, err, imerr.Forbidden)
}

// TestWordsOnEverySurface: block, mask and review words on text and rich
// messages, edits, nicknames (register and update), group names (create and
// update) and announcements, with Chinese and full-width input.
func TestWordsOnEverySurface(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	fntest.Befriend(t, e, alice, bob)
	addWords(t, e,
		risk.WordIn{Word: "darn", Category: "rude", Action: "mask"},
		risk.WordIn{Word: "敏感词", Category: "politics", Action: "mask"},
		risk.WordIn{Word: "ＦＯＲＢＩＤＤＥＮ", Action: "block"}, // stored folded: "forbidden"
		risk.WordIn{Word: "违禁品", Action: "block"},
		risk.WordIn{Word: "wirefraud", Category: "fraud", Action: "review"},
	)
	// The worker hears of the change by an event; wait until it applies.
	waitFor(t, "word list loaded", func() bool {
		r, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("probe%d", time.Now().UnixNano()), Type: wire.TypeText, Content: text("darn")})
		return err == nil && stored(t, e, r.ConvID, r.Seq) == `{"text":"****"}`
	})
	conv := convid.OfDirect(alice.UserID, bob.UserID).Raw
	sends := []struct {
		name, typ string
		content   json.RawMessage
		code      imerr.Code
		want      string // stored content
	}{
		{"text mask", wire.TypeText, text("oh DARN it"), "", `{"text":"oh **** it"}`},
		{"text mask full-width", wire.TypeText, text("oh ｄａｒｎ it"), "", `{"text":"oh **** it"}`},
		{"text mask chinese", wire.TypeText, text("这是敏感词。"), "", `{"text":"这是***。"}`},
		{"text block", wire.TypeText, text("a Forbidden thing"), imerr.Forbidden, ""},
		{"text block full-width", wire.TypeText, text("ＦＯＲＢＩＤＤＥＮ"), imerr.Forbidden, ""},
		{"text block chinese", wire.TypeText, text("出售违禁品"), imerr.Forbidden, ""},
		{"rich mask keeps spans", wire.TypeRich, json.RawMessage(`{"text":"darn it","spans":[{"start":0,"end":4,"style":"bold"}]}`), "",
			`{"text":"**** it","spans":[{"start":0,"end":4,"style":"bold"}]}`},
		{"rich block", wire.TypeRich, json.RawMessage(`{"text":"forbidden"}`), imerr.Forbidden, ""},
		{"clean", wire.TypeText, text("hello"), "", `{"text":"hello"}`},
	}
	for i, tt := range sends {
		t.Run(tt.name, func(t *testing.T) {
			r, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("s%d", i), Type: tt.typ, Content: tt.content})
			fntest.WantCode(t, err, tt.code)
			if tt.code == "" {
				if got := stored(t, e, r.ConvID, r.Seq); got != tt.want {
					t.Errorf("stored %s, want %s", got, tt.want)
				}
			}
		})
	}
	// Edits.
	r := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "e1", Type: wire.TypeText, Content: text("fine")})
	ref := message.MsgRef{ConvID: conv, Seq: r.Seq}
	_, err := fntest.Call[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: ref, Content: text("违禁品")})
	fntest.WantCode(t, err, imerr.Forbidden)
	fntest.Must[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: ref, Content: text("darn 敏感词")})
	if got := stored(t, e, conv, r.Seq); got != `{"text":"**** ***"}` {
		t.Errorf("edited: stored %s", got)
	}
	// Review: the message goes through as sent and waits in the queue.
	r = fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: "rv1", Type: wire.TypeText, Content: text("pay by WIREFRAUD")})
	if got := stored(t, e, conv, r.Seq); got != `{"text":"pay by WIREFRAUD"}` {
		t.Errorf("review word: stored %s", got)
	}
	q := fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{})
	if len(q.Items) != 1 || q.Items[0].Source != "word" || q.Items[0].Seq != r.Seq || q.Items[0].TargetUser != alice.UserID || q.Items[0].Words != "wirefraud" {
		t.Fatalf("queue %+v", q.Items)
	}
	// An edit into a review word queues the message too.
	fntest.Must[wire.Message](t, e, "msg.edit", alice, message.EditReq{MsgRef: ref, Content: text("now wirefraud")})
	q = fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{})
	if len(q.Items) != 2 || q.Items[1].Seq != ref.Seq || q.Items[1].Excerpt != "now wirefraud" {
		t.Fatalf("queue after the edit %+v", q.Items)
	}

	// Nicknames.
	_, err = fntest.Call[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "carol", Password: "password-123", Nickname: "Ｆorbidden"})
	fntest.WantCode(t, err, imerr.Forbidden)
	reg := fntest.Must[account.RegisterResp](t, e, "account.register", endpoint.Caller{}, account.RegisterReq{Username: "dave", Password: "password-123", Nickname: "Darn敏感词"})
	var nick string
	if err := e.DB.QueryRow("SELECT nickname FROM users WHERE id = ?", reg.UserID).Scan(&nick); err != nil || nick != "*******" {
		t.Errorf("registered nickname %q %v", nick, err)
	}
	p := fntest.Must[account.Profile](t, e, "account.profile.update", alice, account.UpdateProfileReq{Nickname: ptr("not darn")})
	if p.Nickname != "not ****" {
		t.Errorf("updated nickname %q", p.Nickname)
	}
	_, err = fntest.Call[account.Profile](t, e, "account.profile.update", alice, account.UpdateProfileReq{Nickname: ptr("违禁品")})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[account.Profile](t, e, "account.profile.update", alice, account.UpdateProfileReq{Nickname: ptr("wirefraud")})
	fntest.WantCode(t, err, imerr.Forbidden) // nothing waits for review on a name

	// Groups: names and announcements.
	_, err = fntest.Call[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "forbidden club"})
	fntest.WantCode(t, err, imerr.Forbidden)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "darn club", Members: []int64{bob.UserID}})
	if g.Name != "**** club" {
		t.Errorf("group name %q", g.Name)
	}
	g = fntest.Must[group.Info](t, e, "group.update", alice, group.UpdateReq{GroupID: g.GroupID, Name: ptr("敏感词群")})
	if g.Name != "***群" {
		t.Errorf("updated group name %q", g.Name)
	}
	_, err = fntest.Call[group.Info](t, e, "group.update", alice, group.UpdateReq{GroupID: g.GroupID, Name: ptr("违禁品群")})
	fntest.WantCode(t, err, imerr.Forbidden)
	a := fntest.Must[group.Announcement](t, e, "group.announce", alice, group.AnnounceReq{GroupID: g.GroupID, ClientID: "a1", Text: "no ＤＡＲＮ spam"})
	if a.Text != "no **** spam" {
		t.Errorf("announcement %q", a.Text)
	}
	_, err = fntest.Call[group.Announcement](t, e, "group.announce", alice, group.AnnounceReq{GroupID: g.GroupID, ClientID: "a2", Text: "违禁品"})
	fntest.WantCode(t, err, imerr.Forbidden)
	// A group message takes the list too.
	gr := fntest.Must[message.SendResp](t, e, "msg.send", bob, message.SendReq{ConvID: g.ConvID, ClientMsgID: "g1", Type: wire.TypeText, Content: text("darn")})
	if got := stored(t, e, g.ConvID, gr.Seq); got != `{"text":"****"}` {
		t.Errorf("group message stored %s", got)
	}

	// Listing and removal.
	l := fntest.Must[risk.WordsListResp](t, e, "admin.words.list", auditor, risk.WordsListReq{Q: "ＤＡＲ"})
	if l.Total != 1 || l.Words[0].Word != "darn" || l.Words[0].Category != "rude" || l.Words[0].CreatedBy != operator.UserID {
		t.Fatalf("list %+v", l)
	}
	fntest.Must[risk.Empty](t, e, "admin.words.remove", operator, risk.WordsRemoveReq{ID: l.Words[0].ID})
	_, err = fntest.Call[risk.Empty](t, e, "admin.words.remove", operator, risk.WordsRemoveReq{ID: l.Words[0].ID})
	fntest.WantCode(t, err, imerr.NotFound)
	waitFor(t, "word removed", func() bool {
		r, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("probe%d", time.Now().UnixNano()), Type: wire.TypeText, Content: text("darn")})
		return err == nil && stored(t, e, r.ConvID, r.Seq) == `{"text":"darn"}`
	})
	_, err = fntest.Call[risk.WordsAddResp](t, e, "admin.words.add", operator, risk.WordsAddReq{Words: []risk.WordIn{{Word: " ", Action: "mask"}}})
	fntest.WantCode(t, err, imerr.BadRequest)
	_, err = fntest.Call[risk.WordsAddResp](t, e, "admin.words.add", operator, risk.WordsAddReq{Words: []risk.WordIn{{Word: "x", Action: "delete"}}})
	fntest.WantCode(t, err, imerr.BadRequest)
}

func ptr[T any](v T) *T { return &v }

// stored is a message's stored content.
func stored(t *testing.T, e *testenv.Env, conv string, seq int64) string {
	t.Helper()
	var c string
	if err := e.DB.QueryRow("SELECT content FROM messages WHERE conv_id = ? AND seq = ?", conv, seq).Scan(&c); err != nil {
		t.Fatalf("stored %s/%d: %v", conv, seq, err)
	}
	return c
}

// TestReloadWhileSending: two workers serve sends without pause while an
// operator adds a word; every send succeeds, and the list reaches both
// workers' subscriptions and every later send. The propagation time is logged.
func TestReloadWhileSending(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	fntest.StartWorker(t, e, fntest.Options{})
	// Two more subscribers, as two more workers' lists.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lists := []*sensitive.List{sensitive.NewList(e.DB, zerolog.Nop()), sensitive.NewList(e.DB, zerolog.Nop())}
	for _, l := range lists {
		if err := l.Watch(ctx, e.Connect(t), 0); err != nil {
			t.Fatal(err)
		}
	}
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	fntest.Befriend(t, e, alice, bob)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("w%d-%d", w, i), Type: wire.TypeText, Content: text("load darn")})
				if err != nil {
					failed.Add(1)
					t.Errorf("send during reload: %v", err)
				}
				sent.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	added := time.Now()
	addWords(t, e, risk.WordIn{Word: "darn", Action: "mask"})
	for i, l := range lists {
		waitFor(t, fmt.Sprintf("list %d", i), func() bool { return l.Check("darn").Action == sensitive.Mask })
		t.Logf("subscriber %d: word list applied %v after the add", i, time.Since(added))
	}
	// Then every send is masked, on whichever worker: 20 in a row.
	masked := 0
	waitFor(t, "sends masked", func() bool {
		r, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("after%d", time.Now().UnixNano()), Type: wire.TypeText, Content: text("darn")})
		if err == nil && stored(t, e, r.ConvID, r.Seq) == `{"text":"****"}` {
			masked++
		} else {
			masked = 0
		}
		return masked == 20
	})
	t.Logf("both workers masking %v after the add", time.Since(added))
	close(stop)
	wg.Wait()
	if sent.Load() == 0 || failed.Load() > 0 {
		t.Fatalf("%d sends during the reload, %d failed", sent.Load(), failed.Load())
	}
}

// TestReviewFlow: a report and a flagged message wait in the queue; approve
// keeps the message, delete recalls it for everyone with a system notice, and
// a ban without a Banner is unavailable.
func TestReviewFlow(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	eve, _ := fntest.User(t, e, "eve", "d")
	fntest.Befriend(t, e, alice, bob)
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "club", Members: []int64{bob.UserID}})
	m1 := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: g.ConvID, ClientMsgID: "m1", Type: wire.TypeText, Content: text("buy my stuff")})
	m2 := fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: g.ConvID, ClientMsgID: "m2", Type: wire.TypeText, Content: text("just chatting")})

	// Reports: bob reports both messages and eve; eve, not a member, cannot
	// report the group's messages.
	rep := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{ConvID: g.ConvID, Seq: m1.Seq, Reason: "spam", Note: "ads"})
	again := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{ConvID: g.ConvID, Seq: m1.Seq, Reason: "spam"})
	if again.ID != rep.ID {
		t.Errorf("a repeated report made a new item: %d, %d", rep.ID, again.ID)
	}
	rep2 := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{ConvID: g.ConvID, Seq: m2.Seq, Reason: "other"})
	repUser := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{UserID: eve.UserID, Reason: "abuse"})
	for _, tt := range []struct {
		name string
		c    endpoint.Caller
		req  risk.ReportReq
		code imerr.Code
	}{
		{"not a member", eve, risk.ReportReq{ConvID: g.ConvID, Seq: m1.Seq, Reason: "spam"}, imerr.NotFound},
		{"own message", alice, risk.ReportReq{ConvID: g.ConvID, Seq: m1.Seq, Reason: "spam"}, imerr.BadRequest},
		{"no such seq", bob, risk.ReportReq{ConvID: g.ConvID, Seq: 999, Reason: "spam"}, imerr.NotFound},
		{"system message", bob, risk.ReportReq{ConvID: g.ConvID, Seq: 1, Reason: "spam"}, imerr.BadRequest},
		{"self", bob, risk.ReportReq{UserID: bob.UserID, Reason: "spam"}, imerr.BadRequest},
		{"no such user", bob, risk.ReportReq{UserID: 1 << 40, Reason: "spam"}, imerr.NotFound},
		{"bad reason", bob, risk.ReportReq{UserID: eve.UserID, Reason: "boring"}, imerr.BadRequest},
		{"both targets", bob, risk.ReportReq{UserID: eve.UserID, ConvID: g.ConvID, Seq: 2, Reason: "spam"}, imerr.BadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[risk.ReportResp](t, e, "report.submit", tt.c, tt.req)
			fntest.WantCode(t, err, tt.code)
		})
	}
	q := fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{Limit: 2})
	if len(q.Items) != 2 || !q.HasMore || q.Items[0].ID != rep.ID || q.Items[0].Excerpt != "buy my stuff" || q.Items[0].ReporterID != bob.UserID || q.Items[0].TargetUser != alice.UserID {
		t.Fatalf("first page %+v", q)
	}
	q = fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{After: q.Items[1].ID})
	if len(q.Items) != 1 || q.Items[0].ID != repUser.ID || q.Items[0].Kind != "user" || q.HasMore {
		t.Fatalf("second page %+v", q)
	}

	// Approve m2's report; approving again is a no-op, deleting it a conflict.
	it := fntest.Must[risk.Item](t, e, "admin.review.approve", operator, risk.ReviewReq{ID: rep2.ID})
	if it.Status != risk.StatusApproved || it.HandledBy != operator.UserID {
		t.Errorf("approved %+v", it)
	}
	fntest.Must[risk.Item](t, e, "admin.review.approve", operator, risk.ReviewReq{ID: rep2.ID})
	_, err := fntest.Call[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: rep2.ID})
	fntest.WantCode(t, err, imerr.Conflict)
	if stored(t, e, g.ConvID, m2.Seq) != `{"text":"just chatting"}` {
		t.Error("approval changed the message")
	}

	// Delete m1: recalled for everyone, a system notice follows, pushed live.
	sub, err := e.NC.SubscribeSync("im.deliver.>")
	if err != nil {
		t.Fatal(err)
	}
	it = fntest.Must[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: rep.ID})
	if it.Status != risk.StatusDeleted {
		t.Errorf("deleted %+v", it)
	}
	var recalledBy int64
	var content string
	if err := e.DB.QueryRow("SELECT content, recalled_by FROM messages WHERE conv_id = ? AND seq = ?", g.ConvID, m1.Seq).Scan(&content, &recalledBy); err != nil {
		t.Fatal(err)
	}
	if content != "{}" || recalledBy == 0 {
		t.Errorf("after delete: content %s recalled_by %d", content, recalledBy)
	}
	var kind, notice string
	if err := e.DB.QueryRow("SELECT kind, content FROM messages WHERE conv_id = ? ORDER BY seq DESC LIMIT 1", g.ConvID).Scan(&kind, &notice); err != nil {
		t.Fatal(err)
	}
	var rm message.Removed
	if kind != wire.TypeSystem || json.Unmarshal([]byte(notice), &rm) != nil || rm.Event != "message.removed" || rm.Seq != m1.Seq {
		t.Errorf("system notice %s %s", kind, notice)
	}
	events := map[string]bool{}
	for len(events) < 2 {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("pushes: %v (got %v)", err, events)
		}
		var f struct {
			Event string `json:"event"`
		}
		_ = json.Unmarshal(msg.Data, &f)
		events[f.Event] = true
	}
	if !events["msg.recalled"] || !events["msg.new"] {
		t.Errorf("pushes %v, want msg.recalled and msg.new", events)
	}
	// A retry is answered as it is; a user report cannot be "deleted" without a ban.
	fntest.Must[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: rep.ID})
	_, err = fntest.Call[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: repUser.ID})
	fntest.WantCode(t, err, imerr.BadRequest)
	_, err = fntest.Call[risk.Item](t, e, "admin.review.approve", operator, risk.ReviewReq{ID: 1 << 40})
	fntest.WantCode(t, err, imerr.NotFound)
	done := fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{Status: risk.StatusDeleted})
	if len(done.Items) != 1 || done.Items[0].ID != rep.ID {
		t.Errorf("deleted items %+v", done.Items)
	}
}

// bans records the bans the review queue asks for (the admin domain carries
// them out; here only the hook is under test).
type bans struct {
	mu  sync.Mutex
	got []string
}

func (b *bans) Ban(_ context.Context, operator, user int64, reason string, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := int64(0)
	if !until.IsZero() {
		u = until.UnixMilli()
	}
	b.got = append(b.got, fmt.Sprintf("%d bans %d until %d: %s", operator, user, u, reason))
	return nil
}

// TestReviewDeleteAndBan: a message a review word flagged is deleted and its
// sender banned through the Banner hook; a reported user is banned without a
// message to delete.
func TestReviewDeleteAndBan(t *testing.T) {
	e := testenv.Start(t)
	b := &bans{}
	fntest.Start(t, e, fntest.Options{Banner: b})
	alice, _ := fntest.User(t, e, "alice", "d")
	bob, _ := fntest.User(t, e, "bob", "d")
	fntest.Befriend(t, e, alice, bob)
	addWords(t, e, risk.WordIn{Word: "刷单", Category: "fraud", Action: "review"})
	var flagged risk.Item
	waitFor(t, "flagged", func() bool {
		_, err := fntest.Call[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprintf("f%d", time.Now().UnixNano()), Type: wire.TypeText, Content: text("高薪刷单")})
		if err != nil {
			t.Fatal(err)
		}
		q := fntest.Must[risk.ReviewListResp](t, e, "admin.review.list", auditor, risk.ReviewListReq{})
		if len(q.Items) > 0 {
			flagged = q.Items[0]
		}
		return len(q.Items) > 0
	})
	if flagged.Source != "word" || flagged.Words != "刷单" || flagged.TargetUser != alice.UserID {
		t.Fatalf("flagged %+v", flagged)
	}
	until := time.Now().Add(24 * time.Hour).UnixMilli()
	it := fntest.Must[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: flagged.ID, Ban: true, BanReason: "fraud", BanUntil: until})
	if it.Status != risk.StatusDeleted || stored(t, e, flagged.ConvID, flagged.Seq) != "{}" {
		t.Errorf("after delete: %+v, content %s", it, stored(t, e, flagged.ConvID, flagged.Seq))
	}
	rep := fntest.Must[risk.ReportResp](t, e, "report.submit", bob, risk.ReportReq{UserID: alice.UserID, Reason: "fraud"})
	fntest.Must[risk.Item](t, e, "admin.review.delete", operator, risk.ReviewDeleteReq{ID: rep.ID, Ban: true, BanReason: "again"})
	want := []string{
		fmt.Sprintf("%d bans %d until %d: fraud", operator.UserID, alice.UserID, until),
		fmt.Sprintf("%d bans %d until 0: again", operator.UserID, alice.UserID),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if fmt.Sprint(b.got) != fmt.Sprint(want) {
		t.Errorf("bans %q, want %q", b.got, want)
	}
}
