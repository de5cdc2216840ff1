package friend_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/fntest"
	"natter/functions/friend"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// must calls op and fails the test on error.

func request(tb testing.TB, e *testenv.Env, from endpoint.Caller, to int64, msg string) friend.RequestResp {
	tb.Helper()
	return fntest.Must[friend.RequestResp](tb, e, "friend.request", from, friend.RequestReq{To: to, Message: msg})
}

func respond(tb testing.TB, e *testenv.Env, c endpoint.Caller, id int64, accept bool) (friend.RespondResp, error) {
	tb.Helper()
	return fntest.Call[friend.RespondResp](tb, e, "friend.respond", c, friend.RespondReq{RequestID: id, Accept: &accept})
}

// befriend makes a and b friends through the ops.
func befriend(tb testing.TB, e *testenv.Env, a, b endpoint.Caller) {
	tb.Helper()
	r := request(tb, e, a, b.UserID, "")
	if r.Status == friend.StatusAlreadyFriends {
		return
	}
	if _, err := respond(tb, e, b, r.RequestID, true); err != nil {
		tb.Fatalf("accept: %v", err)
	}
}

func count(tb testing.TB, e *testenv.Env, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := e.DB.QueryRow(query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func friendRows(tb testing.TB, e *testenv.Env, a, b int64) int {
	tb.Helper()
	return count(tb, e, "SELECT COUNT(*) FROM friendships WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)", a, b, b, a)
}

func requestStatus(tb testing.TB, e *testenv.Env, from, to int64) string {
	tb.Helper()
	var s string
	if err := e.DB.QueryRow("SELECT status FROM friend_requests WHERE from_id = ? AND to_id = ?", from, to).Scan(&s); err != nil {
		tb.Fatalf("request %d->%d: %v", from, to, err)
	}
	return s
}

func inbox(tb testing.TB, e *testenv.Env, uid int64) *nats.Subscription {
	tb.Helper()
	sub, err := e.NC.SubscribeSync(subject.Deliver(uid))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	return sub
}

// nextPush reads the next frame on sub, which must be event, into T.
func nextPush[T any](tb testing.TB, sub *nats.Subscription, event string) (T, *nats.Msg) {
	tb.Helper()
	var push struct {
		Event string `json:"event"`
		Data  T      `json:"data"`
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		tb.Fatalf("no %s push: %v", event, err)
	}
	if err := json.Unmarshal(m.Data, &push); err != nil || push.Event != event {
		tb.Fatalf("push %s (%v), want event %s", m.Data, err, event)
	}
	return push.Data, m
}

func noPush(tb testing.TB, sub *nats.Subscription) {
	tb.Helper()
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		tb.Fatalf("unexpected push %s", m.Data)
	}
}

func TestRequestAccept(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	bob.ConnID = "conn-b1"
	toAlice, toBob := inbox(t, e, alice.UserID), inbox(t, e, bob.UserID)
	events, err := e.NC.SubscribeSync(subject.EvtFriendRequestSent)
	if err != nil {
		t.Fatal(err)
	}

	first := request(t, e, alice, bob.UserID, "hi bob")
	if first.Status != friend.StatusPending || first.RequestID <= 0 {
		t.Fatalf("request %+v", first)
	}
	p, _ := nextPush[wire.FriendRequest](t, toBob, "friend.request")
	if p.RequestID != first.RequestID || p.From != alice.UserID || p.Message != "hi bob" || p.CreatedAt == 0 || p.User.Username != "alice" {
		t.Fatalf("friend.request push %+v", p)
	}
	m, err := events.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no %s event: %v", subject.EvtFriendRequestSent, err)
	}
	var evt friend.RequestSentEvent
	if err := json.Unmarshal(m.Data, &evt); err != nil || evt.RequestID != first.RequestID || evt.From != alice.UserID || evt.To != bob.UserID {
		t.Fatalf("event %s %v", m.Data, err)
	}

	// Re-sending is idempotent: same request, same created_at, new message.
	again := request(t, e, alice, bob.UserID, "hi bob, it's alice")
	if again != first {
		t.Fatalf("re-send %+v, want %+v", again, first)
	}
	p2, _ := nextPush[wire.FriendRequest](t, toBob, "friend.request")
	if p2.CreatedAt != p.CreatedAt || p2.Message != "hi bob, it's alice" {
		t.Fatalf("re-send push %+v", p2)
	}
	if n := count(t, e, "SELECT COUNT(*) FROM friend_requests"); n != 1 {
		t.Fatalf("%d request rows, want 1", n)
	}

	in := fntest.Must[friend.RequestsResp](t, e, "friend.requests", bob, friend.RequestsReq{})
	if len(in.Requests) != 1 || in.HasMore {
		t.Fatalf("incoming %+v", in)
	}
	if r := in.Requests[0]; r.RequestID != first.RequestID || r.From != alice.UserID || r.To != bob.UserID || r.Status != friend.StatusPending ||
		r.Message != "hi bob, it's alice" || r.User.UserID != alice.UserID || r.User.Nickname != "alice" || r.CreatedAt != p.CreatedAt {
		t.Fatalf("incoming request %+v", r)
	}
	out := fntest.Must[friend.RequestsResp](t, e, "friend.requests", alice, friend.RequestsReq{Direction: friend.Outgoing})
	if len(out.Requests) != 1 || out.Requests[0].User.UserID != bob.UserID {
		t.Fatalf("outgoing %+v", out)
	}
	if none := fntest.Must[friend.RequestsResp](t, e, "friend.requests", alice, friend.RequestsReq{}); len(none.Requests) != 0 {
		t.Fatalf("alice incoming %+v", none)
	}

	// Only the target may answer; to anyone else the request does not exist.
	for _, c := range []endpoint.Caller{alice, carol} {
		_, err := respond(t, e, c, first.RequestID, true)
		fntest.WantCode(t, err, imerr.NotFound)
	}
	_, err = respond(t, e, bob, first.RequestID+100, true)
	fntest.WantCode(t, err, imerr.NotFound)

	if r, err := respond(t, e, bob, first.RequestID, true); err != nil || r.Status != friend.StatusAccepted {
		t.Fatalf("accept: %+v %v", r, err)
	}
	rp, _ := nextPush[wire.FriendResponded](t, toAlice, "friend.responded")
	if rp != (wire.FriendResponded{RequestID: first.RequestID, By: bob.UserID, Accepted: true}) {
		t.Fatalf("friend.responded %+v", rp)
	}
	if a, _ := nextPush[wire.UserRef](t, toAlice, "friend.added"); a.UserID != bob.UserID {
		t.Fatalf("alice's friend.added %+v", a)
	}
	b, bm := nextPush[wire.UserRef](t, toBob, "friend.added")
	if b.UserID != alice.UserID || bm.Header.Get(wire.HeaderSkipConn) != "conn-b1" {
		t.Fatalf("bob's friend.added %+v skip %q", b, bm.Header.Get(wire.HeaderSkipConn))
	}

	// Answering again the same way is a no-op; the other way conflicts.
	if r, err := respond(t, e, bob, first.RequestID, true); err != nil || r.Status != friend.StatusAccepted {
		t.Fatalf("accept again: %+v %v", r, err)
	}
	_, err = respond(t, e, bob, first.RequestID, false)
	fntest.WantCode(t, err, imerr.Conflict)
	noPush(t, toAlice)

	for _, tt := range []struct {
		c    endpoint.Caller
		peer int64
	}{{alice, bob.UserID}, {bob, alice.UserID}} {
		l := fntest.Must[friend.ListResp](t, e, "friend.list", tt.c, struct{}{})
		if len(l.Friends) != 1 || l.Friends[0].UserID != tt.peer || l.Friends[0].Since == 0 || l.Friends[0].Blocked {
			t.Fatalf("friend.list of %d: %+v", tt.c.UserID, l)
		}
	}
	if r := request(t, e, bob, alice.UserID, ""); r.Status != friend.StatusAlreadyFriends || r.RequestID != first.RequestID {
		t.Fatalf("request between friends %+v", r)
	}
	acc := fntest.Must[friend.RequestsResp](t, e, "friend.requests", bob, friend.RequestsReq{Status: friend.StatusAccepted})
	pend := fntest.Must[friend.RequestsResp](t, e, "friend.requests", bob, friend.RequestsReq{Status: friend.StatusPending})
	if len(acc.Requests) != 1 || len(pend.Requests) != 0 {
		t.Fatalf("status filter: accepted %+v, pending %+v", acc, pend)
	}
}

func TestDeclineDeleteAndRequestAgain(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	alice.ConnID = "conn-a1"
	toAlice, toBob := inbox(t, e, alice.UserID), inbox(t, e, bob.UserID)

	first := request(t, e, alice, bob.UserID, "one")
	nextPush[wire.FriendRequest](t, toBob, "friend.request")
	if r, err := respond(t, e, bob, first.RequestID, false); err != nil || r.Status != friend.StatusDeclined {
		t.Fatalf("decline: %+v %v", r, err)
	}
	if rp, _ := nextPush[wire.FriendResponded](t, toAlice, "friend.responded"); rp.Accepted || rp.By != bob.UserID {
		t.Fatalf("decline push %+v", rp)
	}
	if r, err := respond(t, e, bob, first.RequestID, false); err != nil || r.Status != friend.StatusDeclined {
		t.Fatalf("decline again: %+v %v", r, err)
	}
	_, err := respond(t, e, bob, first.RequestID, true)
	fntest.WantCode(t, err, imerr.Conflict)
	if n := friendRows(t, e, alice.UserID, bob.UserID); n != 0 {
		t.Fatalf("%d friendship rows after decline", n)
	}

	// Asking again after a decline re-opens the same row as a new request.
	time.Sleep(2 * time.Millisecond)
	second := request(t, e, alice, bob.UserID, "two")
	if second.RequestID != first.RequestID || second.Status != friend.StatusPending {
		t.Fatalf("request after decline %+v", second)
	}
	in := fntest.Must[friend.RequestsResp](t, e, "friend.requests", bob, friend.RequestsReq{Status: friend.StatusPending})
	if len(in.Requests) != 1 || in.Requests[0].Message != "two" {
		t.Fatalf("re-opened request %+v", in)
	}
	if _, err := respond(t, e, bob, second.RequestID, true); err != nil {
		t.Fatal(err)
	}
	nextPush[wire.FriendRequest](t, toBob, "friend.request")
	nextPush[wire.UserRef](t, toBob, "friend.added")
	nextPush[wire.FriendResponded](t, toAlice, "friend.responded")
	nextPush[wire.UserRef](t, toAlice, "friend.added")

	// Delete: both directions go; alice's other devices hear of it, bob does not.
	fntest.Must[friend.Empty](t, e, "friend.delete", alice, friend.UserReq{UserID: bob.UserID})
	if n := friendRows(t, e, alice.UserID, bob.UserID); n != 0 {
		t.Fatalf("%d friendship rows after delete", n)
	}
	d, dm := nextPush[wire.UserRef](t, toAlice, "friend.deleted")
	if d.UserID != bob.UserID || dm.Header.Get(wire.HeaderSkipConn) != "conn-a1" {
		t.Fatalf("friend.deleted %+v", d)
	}
	noPush(t, toBob)
	fntest.Must[friend.Empty](t, e, "friend.delete", alice, friend.UserReq{UserID: bob.UserID})
	fntest.Must[friend.Empty](t, e, "friend.delete", bob, friend.UserReq{UserID: alice.UserID})
	noPush(t, toAlice)
	if l := fntest.Must[friend.ListResp](t, e, "friend.list", bob, struct{}{}); len(l.Friends) != 0 {
		t.Fatalf("bob's friends after delete %+v", l)
	}
	// The old, accepted request cannot bring the friendship back...
	if r, err := respond(t, e, bob, second.RequestID, true); err != nil || r.Status != friend.StatusAccepted || friendRows(t, e, alice.UserID, bob.UserID) != 0 {
		t.Fatalf("accepting a spent request: %+v %v", r, err)
	}
	// ...but a new request can, and it reuses the pair's row.
	if r := request(t, e, bob, alice.UserID, "sorry"); r.Status != friend.StatusPending {
		t.Fatalf("request after delete %+v", r)
	}
	if r := request(t, e, alice, bob.UserID, ""); r.Status != friend.StatusAccepted || r.RequestID != first.RequestID {
		t.Fatalf("answering request %+v", r)
	}
	if n := count(t, e, "SELECT COUNT(*) FROM friend_requests"); n != 2 || friendRows(t, e, alice.UserID, bob.UserID) != 2 {
		t.Fatalf("%d request rows, %d friendship rows", n, friendRows(t, e, alice.UserID, bob.UserID))
	}
}

// TestMutualRequestRace has two users ask each other at the same instant, for many
// pairs and twice per pair (a first request inserts rows, a later one re-opens
// them): each time both calls succeed, one answers pending and the other accepted,
// and exactly one friendship (two rows) results.
func TestMutualRequestRace(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	users := make([]endpoint.Caller, 7)
	for i := range users {
		users[i], _ = fntest.User(t, e, fmt.Sprintf("racer%d", i), "d")
	}
	race := func(a, b endpoint.Caller) {
		t.Helper()
		start := make(chan struct{})
		var wg sync.WaitGroup
		got := make([]friend.RequestResp, 2)
		errs := make([]error, 2)
		for k, pair := range [][2]endpoint.Caller{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[k], errs[k] = fntest.Call[friend.RequestResp](t, e, "friend.request", pair[0], friend.RequestReq{To: pair[1].UserID})
			}()
		}
		close(start)
		wg.Wait()
		for k := range errs {
			if errs[k] != nil {
				t.Fatalf("%d<->%d: request %d: %v", a.UserID, b.UserID, k, errs[k])
			}
		}
		statuses := got[0].Status + "," + got[1].Status
		if statuses != "pending,accepted" && statuses != "accepted,pending" {
			t.Fatalf("%d<->%d: statuses %s", a.UserID, b.UserID, statuses)
		}
		if n := friendRows(t, e, a.UserID, b.UserID); n != 2 {
			t.Fatalf("%d<->%d: %d friendship rows, want 2", a.UserID, b.UserID, n)
		}
	}
	for round := range 2 {
		for i := range users {
			for j := i + 1; j < len(users); j++ {
				race(users[i], users[j])
				if round == 0 {
					fntest.Must[friend.Empty](t, e, "friend.delete", users[i], friend.UserReq{UserID: users[j].UserID})
				}
			}
		}
	}
	n := len(users) * (len(users) - 1)
	if got := count(t, e, "SELECT COUNT(*) FROM friendships"); got != n {
		t.Fatalf("%d friendship rows, want %d", got, n)
	}
	if got := count(t, e, "SELECT COUNT(*) FROM friend_requests WHERE status <> 'accepted'"); got != 0 {
		t.Fatalf("%d requests left unaccepted", got)
	}
}

// TestConcurrentAccept answers one request from several devices at once: every
// call succeeds, one friendship results, and the pushes go out once.
func TestConcurrentAccept(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	phone, _ := fntest.User(t, e, "bob", "phone")
	laptop, _ := fntest.Login(t, e, "bob", "laptop")
	toAlice := inbox(t, e, alice.UserID)
	r := request(t, e, alice, phone.UserID, "")
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for k := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dev := phone
			if k%2 == 1 {
				dev = laptop
			}
			var resp friend.RespondResp
			resp, errs[k] = respond(t, e, dev, r.RequestID, true)
			if errs[k] == nil && resp.Status != friend.StatusAccepted {
				errs[k] = fmt.Errorf("status %s", resp.Status)
			}
		}()
	}
	close(start)
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("accept %d: %v", k, err)
		}
	}
	if n := friendRows(t, e, alice.UserID, phone.UserID); n != 2 {
		t.Fatalf("%d friendship rows", n)
	}
	nextPush[wire.FriendResponded](t, toAlice, "friend.responded")
	nextPush[wire.UserRef](t, toAlice, "friend.added")
	noPush(t, toAlice)
}

func TestBlock(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")

	// Blocking ends pending requests either way without saying "blocked": the
	// blocked user's request to alice reads declined, alice's own reads cancelled.
	request(t, e, bob, alice.UserID, "hi")
	request(t, e, alice, dave.UserID, "hi")
	befriend(t, e, alice, carol)
	for _, u := range []endpoint.Caller{bob, dave, carol} {
		fntest.Must[friend.Empty](t, e, "block.add", alice, friend.UserReq{UserID: u.UserID})
	}
	fntest.Must[friend.Empty](t, e, "block.add", alice, friend.UserReq{UserID: bob.UserID}) // idempotent
	if s := requestStatus(t, e, bob.UserID, alice.UserID); s != friend.StatusDeclined {
		t.Fatalf("blocked user's request is %s", s)
	}
	if s := requestStatus(t, e, alice.UserID, dave.UserID); s != friend.StatusCancelled {
		t.Fatalf("blocker's request is %s", s)
	}

	// Requests fail both ways with one neutral message.
	var msgs []string
	for _, tt := range []struct{ from, to endpoint.Caller }{{bob, alice}, {alice, bob}, {dave, alice}, {alice, dave}} {
		_, err := fntest.Call[friend.RequestResp](t, e, "friend.request", tt.from, friend.RequestReq{To: tt.to.UserID})
		fntest.WantCode(t, err, imerr.Forbidden)
		msgs = append(msgs, imerr.From(err).Message)
	}
	for _, m := range msgs {
		if m != msgs[0] || strings.Contains(strings.ToLower(m), "block") {
			t.Fatalf("messages %q: want one neutral message", msgs)
		}
	}

	bl := fntest.Must[friend.BlocksResp](t, e, "block.list", alice, struct{}{})
	if len(bl.Blocks) != 3 || bl.Blocks[0].UserID != bob.UserID || bl.Blocks[0].Nickname != "bob" || bl.Blocks[0].Since == 0 {
		t.Fatalf("block.list %+v", bl)
	}
	if l := fntest.Must[friend.BlocksResp](t, e, "block.list", bob, struct{}{}); len(l.Blocks) != 0 {
		t.Fatalf("bob's block.list %+v", l)
	}

	// Blocking keeps a friendship; the list marks it for the blocker only.
	l := fntest.Must[friend.ListResp](t, e, "friend.list", alice, struct{}{})
	if len(l.Friends) != 1 || l.Friends[0].UserID != carol.UserID || !l.Friends[0].Blocked {
		t.Fatalf("alice's friends %+v", l)
	}
	if l := fntest.Must[friend.ListResp](t, e, "friend.list", carol, struct{}{}); len(l.Friends) != 1 || l.Friends[0].Blocked {
		t.Fatalf("carol's friends %+v", l)
	}

	for range 2 {
		fntest.Must[friend.Empty](t, e, "block.remove", alice, friend.UserReq{UserID: bob.UserID})
	}
	if l := fntest.Must[friend.BlocksResp](t, e, "block.list", alice, struct{}{}); len(l.Blocks) != 2 {
		t.Fatalf("block.list after remove %+v", l)
	}
	if r := request(t, e, bob, alice.UserID, "again"); r.Status != friend.StatusPending {
		t.Fatalf("request after unblock %+v", r)
	}
}

func TestPrivacy(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	str := func(s string) *string { return &s }

	defaults := friend.Privacy{FriendRequests: "everyone", Messages: "friends", Groups: "everyone", Presence: "friends", Search: "everyone"}
	if p := fntest.Must[friend.Privacy](t, e, "account.privacy.get", alice, struct{}{}); p != defaults {
		t.Fatalf("defaults %+v", p)
	}
	tests := []struct {
		name string
		req  friend.PrivacySetReq
		want friend.Privacy
		rows int
	}{
		{"no requests", friend.PrivacySetReq{FriendRequests: str("nobody")}, friend.Privacy{FriendRequests: "nobody", Messages: "friends", Groups: "everyone", Presence: "friends", Search: "everyone"}, 1},
		{"open messages", friend.PrivacySetReq{Messages: str("everyone")}, friend.Privacy{FriendRequests: "nobody", Messages: "everyone", Groups: "everyone", Presence: "friends", Search: "everyone"}, 1},
		{"both", friend.PrivacySetReq{FriendRequests: str("everyone"), Messages: str("everyone")}, friend.Privacy{FriendRequests: "everyone", Messages: "everyone", Groups: "everyone", Presence: "friends", Search: "everyone"}, 1},
		{"back to defaults", friend.PrivacySetReq{Messages: str("friends")}, defaults, 0},
		{"groups", friend.PrivacySetReq{Groups: str("friends")}, friend.Privacy{FriendRequests: "everyone", Messages: "friends", Groups: "friends", Presence: "friends", Search: "everyone"}, 1},
		{"groups back", friend.PrivacySetReq{Groups: str("everyone")}, defaults, 0},
		{"search", friend.PrivacySetReq{Search: str("friends")}, friend.Privacy{FriendRequests: "everyone", Messages: "friends", Groups: "everyone", Presence: "friends", Search: "friends"}, 1},
		{"search back", friend.PrivacySetReq{Search: str("everyone")}, defaults, 0},
		{"nobody again", friend.PrivacySetReq{FriendRequests: str("nobody")}, friend.Privacy{FriendRequests: "nobody", Messages: "friends", Groups: "everyone", Presence: "friends", Search: "everyone"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := fntest.Must[friend.Privacy](t, e, "account.privacy.set", alice, tt.req); p != tt.want {
				t.Fatalf("set: %+v, want %+v", p, tt.want)
			}
			if p := fntest.Must[friend.Privacy](t, e, "account.privacy.get", alice, struct{}{}); p != tt.want {
				t.Fatalf("get: %+v, want %+v", p, tt.want)
			}
			if n := count(t, e, "SELECT COUNT(*) FROM user_privacy"); n != tt.rows {
				t.Fatalf("%d user_privacy rows, want %d", n, tt.rows)
			}
		})
	}

	// alice takes no requests: bob gets the neutral refusal; but alice may still
	// ask carol, and carol's request-back then accepts.
	_, err := fntest.Call[friend.RequestResp](t, e, "friend.request", bob, friend.RequestReq{To: alice.UserID})
	fntest.WantCode(t, err, imerr.Forbidden)
	request(t, e, alice, carol.UserID, "")
	if r := request(t, e, carol, alice.UserID, ""); r.Status != friend.StatusAccepted {
		t.Fatalf("request-back to a private user %+v", r)
	}
	if p := fntest.Must[friend.Privacy](t, e, "account.privacy.get", bob, struct{}{}); p != defaults {
		t.Fatalf("bob's privacy %+v", p)
	}
}

func TestRemark(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	befriend(t, e, alice, bob)
	remark := func(c endpoint.Caller, uid int64, s string) error {
		_, err := fntest.Call[friend.Empty](t, e, "friend.remark", c, friend.RemarkReq{UserID: uid, Remark: s})
		return err
	}
	for _, s := range []string{"Bobby 🐝", "Bobby 🐝", strings.Repeat("é", 64)} { // the same value twice is fine
		if err := remark(alice, bob.UserID, s); err != nil {
			t.Fatalf("remark %q: %v", s, err)
		}
		l := fntest.Must[friend.ListResp](t, e, "friend.list", alice, struct{}{})
		if l.Friends[0].Remark != s {
			t.Fatalf("remark %q, want %q", l.Friends[0].Remark, s)
		}
	}
	// Each side has its own remark.
	if l := fntest.Must[friend.ListResp](t, e, "friend.list", bob, struct{}{}); l.Friends[0].Remark != "" {
		t.Fatalf("bob's remark %q", l.Friends[0].Remark)
	}
	fntest.WantCode(t, remark(alice, carol.UserID, "x"), imerr.NotFound)
	fntest.WantCode(t, remark(alice, 999999, "x"), imerr.NotFound)
}

func TestRequestsPaging(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	var ids []int64
	for i := range 5 {
		u, _ := fntest.User(t, e, fmt.Sprintf("fan%d", i), "d")
		ids = append(ids, request(t, e, u, alice.UserID, fmt.Sprint("from fan ", i)).RequestID)
		if i == 2 {
			if _, err := respond(t, e, alice, ids[i], false); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []int64
	var before int64
	for page := 0; ; page++ {
		r := fntest.Must[friend.RequestsResp](t, e, "friend.requests", alice, friend.RequestsReq{Direction: friend.Incoming, Before: before, Limit: 2})
		for _, q := range r.Requests {
			got = append(got, q.RequestID)
		}
		if !r.HasMore {
			break
		}
		before = r.Requests[len(r.Requests)-1].RequestID
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]int64{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
		t.Fatalf("pages %v, want newest first of %v", got, ids)
	}
	pending := fntest.Must[friend.RequestsResp](t, e, "friend.requests", alice, friend.RequestsReq{Status: friend.StatusPending, Limit: 3})
	if len(pending.Requests) != 3 || !pending.HasMore || pending.Requests[0].RequestID != ids[4] || pending.Requests[2].RequestID != ids[1] {
		t.Fatalf("pending page %+v", pending)
	}
	declined := fntest.Must[friend.RequestsResp](t, e, "friend.requests", alice, friend.RequestsReq{Status: friend.StatusDeclined})
	if len(declined.Requests) != 1 || declined.Requests[0].RequestID != ids[2] || declined.Requests[0].User.Username != "fan2" {
		t.Fatalf("declined %+v", declined)
	}
}

// TestCaps fills the lists to the default caps with rows for made-up users: a
// friendship or block past the cap is refused with conflict.
func TestCaps(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fill := func(insert string, uid int64) {
		t.Helper()
		var sb strings.Builder
		sb.WriteString(insert)
		for i := range 5000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, %d, NOW(3))", uid, 1_000_000+i)
		}
		if _, err := e.DB.Exec(sb.String()); err != nil {
			t.Fatal(err)
		}
	}
	fill("INSERT INTO friendships (user_id, friend_id, created_at) VALUES ", bob.UserID)
	r := request(t, e, alice, bob.UserID, "")
	_, err := respond(t, e, bob, r.RequestID, true)
	fntest.WantCode(t, err, imerr.Conflict)
	_, err = fntest.Call[friend.RequestResp](t, e, "friend.request", bob, friend.RequestReq{To: alice.UserID})
	fntest.WantCode(t, err, imerr.Conflict)
	if n := friendRows(t, e, alice.UserID, bob.UserID); n != 0 || requestStatus(t, e, alice.UserID, bob.UserID) != friend.StatusPending {
		t.Fatalf("refused accept changed state: %d rows", n)
	}

	fill("INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ", alice.UserID)
	_, err = fntest.Call[friend.Empty](t, e, "block.add", alice, friend.UserReq{UserID: bob.UserID})
	fntest.WantCode(t, err, imerr.Conflict)
}

func TestBadInput(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	long := func(n int) string { return strings.Repeat("ü", n) }
	tests := []struct {
		name string
		op   string
		c    endpoint.Caller
		req  any
		want imerr.Code
	}{
		{"no login", "friend.request", endpoint.Caller{}, friend.RequestReq{To: bob.UserID}, imerr.Unauthorized},
		{"request no target", "friend.request", alice, map[string]any{}, imerr.BadRequest},
		{"request negative", "friend.request", alice, friend.RequestReq{To: -1}, imerr.BadRequest},
		{"request self", "friend.request", alice, friend.RequestReq{To: alice.UserID}, imerr.BadRequest},
		{"request nobody", "friend.request", alice, friend.RequestReq{To: 999999}, imerr.NotFound},
		{"request long message", "friend.request", alice, friend.RequestReq{To: bob.UserID, Message: long(201)}, imerr.BadRequest},
		{"request wrong type", "friend.request", alice, map[string]any{"to": "bob"}, imerr.BadRequest},
		{"respond no accept", "friend.respond", bob, map[string]any{"request_id": 1}, imerr.BadRequest},
		{"respond no id", "friend.respond", bob, map[string]any{"accept": true}, imerr.BadRequest},
		{"respond unknown", "friend.respond", bob, map[string]any{"request_id": 12345, "accept": true}, imerr.NotFound},
		{"requests direction", "friend.requests", alice, friend.RequestsReq{Direction: "sideways"}, imerr.BadRequest},
		{"requests status", "friend.requests", alice, friend.RequestsReq{Status: "maybe"}, imerr.BadRequest},
		{"requests negative limit", "friend.requests", alice, friend.RequestsReq{Limit: -1}, imerr.BadRequest},
		{"requests negative limit", "friend.requests", alice, friend.RequestsReq{Limit: -1}, imerr.BadRequest},
		{"requests before", "friend.requests", alice, friend.RequestsReq{Before: -5}, imerr.BadRequest},
		{"delete no user", "friend.delete", alice, map[string]any{}, imerr.BadRequest},
		{"delete self", "friend.delete", alice, friend.UserReq{UserID: alice.UserID}, imerr.BadRequest},
		{"remark stranger", "friend.remark", alice, friend.RemarkReq{UserID: bob.UserID, Remark: "x"}, imerr.NotFound},
		{"remark long", "friend.remark", alice, friend.RemarkReq{UserID: bob.UserID, Remark: long(65)}, imerr.BadRequest},
		{"remark no user", "friend.remark", alice, friend.RemarkReq{Remark: "x"}, imerr.BadRequest},
		{"block self", "block.add", alice, friend.UserReq{UserID: alice.UserID}, imerr.BadRequest},
		{"block no user", "block.add", alice, map[string]any{}, imerr.BadRequest},
		{"block nobody", "block.add", alice, friend.UserReq{UserID: 999999}, imerr.NotFound},
		{"unblock no user", "block.remove", alice, map[string]any{}, imerr.BadRequest},
		{"privacy nothing", "account.privacy.set", alice, map[string]any{}, imerr.BadRequest},
		{"privacy bad requests", "account.privacy.set", alice, map[string]any{"friend_requests": "friends"}, imerr.BadRequest},
		{"privacy bad messages", "account.privacy.set", alice, map[string]any{"messages": "nobody", "friend_requests": "nobody"}, imerr.BadRequest},
		{"privacy wrong type", "account.privacy.set", alice, map[string]any{"messages": true}, imerr.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fntest.Call[map[string]any](t, e, tt.op, tt.c, tt.req)
			fntest.WantCode(t, err, tt.want)
		})
	}
	for _, table := range []string{"friend_requests", "friendships", "blocks", "user_privacy"} {
		if n := count(t, e, "SELECT COUNT(*) FROM "+table); n != 0 {
			t.Fatalf("%d rows in %s after bad input", n, table)
		}
	}
}

// TestLookup: exact usernames only; someone who takes no friend requests is
// found by friends only, someone who blocked the caller not at all, and both
// answer like a username nobody has.
func TestLookup(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")
	fntest.Befriend(t, e, alice, carol)
	nobody := "nobody"
	fntest.Must[friend.Privacy](t, e, "account.privacy.set", carol, friend.PrivacySetReq{FriendRequests: &nobody})
	fntest.Must[map[string]any](t, e, "block.add", dave, friend.UserReq{UserID: alice.UserID})

	tests := []struct {
		name     string
		c        endpoint.Caller
		username string
		want     int64 // 0: not found
	}{
		{"exact", alice, "bob", bob.UserID},
		{"case-insensitive like login", alice, "BOB", bob.UserID},
		{"no prefix", alice, "bo", 0},
		{"unknown", alice, "zed", 0},
		{"private, by a friend", alice, "carol", carol.UserID},
		{"private, by a stranger", bob, "carol", 0},
		{"blocked the caller", alice, "dave", 0},
		{"blocked someone else", bob, "dave", dave.UserID},
		{"oneself", carol, "carol", carol.UserID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := fntest.Call[wire.UserCard](t, e, "user.lookup", tt.c, friend.LookupReq{Username: tt.username})
			if tt.want == 0 {
				fntest.WantCode(t, err, imerr.NotFound)
				if err != nil && imerr.From(err).Message != "no user with this username" {
					t.Fatalf("message %q tells why", imerr.From(err).Message)
				}
				return
			}
			if err != nil || u.UserID != tt.want || u.Username == "" {
				t.Fatalf("got %+v, %v; want user %d", u, err, tt.want)
			}
		})
	}
}
