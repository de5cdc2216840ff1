package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/functions/conv"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/search"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/testenv"
	"natter/shared/wire"
)

func text(s string) json.RawMessage {
	b, _ := json.Marshal(message.TextContent{Text: s})
	return b
}

var clientIDs int

func send(t *testing.T, e *testenv.Env, c endpoint.Caller, convID, s string) message.SendResp {
	t.Helper()
	clientIDs++
	return fntest.Must[message.SendResp](t, e, "msg.send", c, message.SendReq{ConvID: convID, ClientMsgID: fmt.Sprintf("c%d", clientIDs), Type: wire.TypeText, Content: text(s)})
}

func searchMsgs(t *testing.T, e *testenv.Env, c endpoint.Caller, r search.MsgSearchReq) search.MsgSearchResp {
	t.Helper()
	return fntest.Must[search.MsgSearchResp](t, e, "msg.search", c, r)
}

// seqs are the (conv, seq) of hits, as "conv/seq".
func seqs(hits []search.MsgHit) []string {
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		out = append(out, fmt.Sprintf("%s/%d", h.ConvID, h.Seq))
	}
	return out
}

func key(r message.SendResp) string { return fmt.Sprintf("%s/%d", r.ConvID, r.Seq) }

// eventually polls msg.search until the hits are want (in order), or fails
// after a generous bound: the index follows the message events.
func eventually(t *testing.T, e *testenv.Env, c endpoint.Caller, r search.MsgSearchReq, want ...string) search.MsgSearchResp {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	var got search.MsgSearchResp
	for deadline := time.Now().Add(20 * time.Second); ; {
		got = searchMsgs(t, e, c, r)
		if slices.Equal(seqs(got.Hits), want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("msg.search %+v as %d: got %v, want %v", r, c.UserID, seqs(got.Hits), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// never checks that r finds nothing once the index caught up with everything
// sent so far (a marker message sent last is found first).
func never(t *testing.T, e *testenv.Env, c endpoint.Caller, marker string, r search.MsgSearchReq) {
	t.Helper()
	eventually(t, e, c, search.MsgSearchReq{Query: marker}, marker2key[marker])
	if got := searchMsgs(t, e, c, r); len(got.Hits) != 0 {
		t.Fatalf("msg.search %+v as %d found %v", r, c.UserID, seqs(got.Hits))
	}
}

var marker2key = map[string]string{}

// TestMessagePermissions: the rows of who finds what: a member, a
// non-member, a member who left, a newcomer to a group that hides history, a
// recalled message, an edited one, a hidden conversation.
func TestMessagePermissions(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	carol, _ := fntest.User(t, e, "carol", "c1")
	dave, _ := fntest.User(t, e, "dave", "d1")
	fntest.Befriend(t, e, alice, bob)
	direct := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)

	m1 := send(t, e, alice, direct, "明天的会议纪要发一下")
	m2 := send(t, e, alice, direct, "Project meeting at noon, Café Central")
	m3 := send(t, e, bob, direct, "明天的meeting改到3点")

	// CJK, English (prefix, case, accents) and mixed.
	eventually(t, e, bob, search.MsgSearchReq{Query: "会议纪要"}, key(m1))
	eventually(t, e, alice, search.MsgSearchReq{Query: "meet"}, key(m3), key(m2))
	eventually(t, e, alice, search.MsgSearchReq{Query: "PROJECT cafe"}, key(m2))
	eventually(t, e, alice, search.MsgSearchReq{Query: "明天 meeting"}, key(m3))
	eventually(t, e, alice, search.MsgSearchReq{Query: "明天"}, key(m3), key(m1))
	eventually(t, e, alice, search.MsgSearchReq{Query: "纪要会议"})
	// One letter is a prefix like any word; one CJK character is found
	// wherever it stands in its run, its end included.
	eventually(t, e, alice, search.MsgSearchReq{Query: "p"}, key(m2))
	eventually(t, e, alice, search.MsgSearchReq{Query: "点"}, key(m3))
	eventually(t, e, alice, search.MsgSearchReq{Query: "3 改"}, key(m3))
	// Filters: sender, conversation, time.
	eventually(t, e, alice, search.MsgSearchReq{Query: "明天", Sender: bob.UserID}, key(m3))
	eventually(t, e, alice, search.MsgSearchReq{Query: "明天", ConvID: direct, Until: m3.SentAt}, key(m1))
	// The snippet marks the match.
	got := eventually(t, e, bob, search.MsgSearchReq{Query: "纪要"}, key(m1))
	if sn := got.Hits[0].Snippet; sn.Text != "明天的会议纪要发一下" || len(sn.Highlights) != 1 || sn.Highlights[0] != [2]int{5, 7} {
		t.Fatalf("snippet %+v", sn)
	}

	// A non-member finds nothing, and naming the conversation is not_found.
	fntest.Befriend(t, e, dave, carol)
	marker2key["zzmarker1"] = key(send(t, e, dave, fmt.Sprintf("d:%d:%d", min(dave.UserID, carol.UserID), max(dave.UserID, carol.UserID)), "zzmarker1"))
	never(t, e, dave, "zzmarker1", search.MsgSearchReq{Query: "meeting"})
	_, err := fntest.Call[search.MsgSearchResp](t, e, "msg.search", dave, search.MsgSearchReq{Query: "meeting", ConvID: direct})
	fntest.WantCode(t, err, imerr.NotFound)

	// A group that hides history from newcomers (the default): carol, invited
	// later, finds only what came after; bob, there from the start, finds all.
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "budget team", Members: []int64{bob.UserID}})
	before := send(t, e, alice, g.ConvID, "budget review draft")
	fntest.Must[json.RawMessage](t, e, "group.invite", alice, group.UsersReq{GroupID: g.GroupID, UserIDs: []int64{carol.UserID}})
	after := send(t, e, alice, g.ConvID, "budget final")
	eventually(t, e, bob, search.MsgSearchReq{Query: "budget"}, key(after), key(before))
	eventually(t, e, carol, search.MsgSearchReq{Query: "budget"}, key(after))
	eventually(t, e, carol, search.MsgSearchReq{Query: "budget", ConvID: g.ConvID}, key(after))

	// A recalled message is found no more; an edited one in its new words only.
	fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: m1.ID}})
	eventually(t, e, bob, search.MsgSearchReq{Query: "会议纪要"})
	fntest.Must[json.RawMessage](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: m2.ID}, Content: text("Project sync at noon")})
	eventually(t, e, bob, search.MsgSearchReq{Query: "sync"}, key(m2))
	eventually(t, e, bob, search.MsgSearchReq{Query: "meeting"}, key(m3))

	// A hidden conversation is still searched.
	fntest.Must[json.RawMessage](t, e, "conv.hide", bob, conv.HideReq{ConvID: direct})
	eventually(t, e, bob, search.MsgSearchReq{Query: "meeting"}, key(m3))

	// A member who left finds nothing of the group any more.
	fntest.Must[json.RawMessage](t, e, "group.leave", bob, group.GroupReq{GroupID: g.GroupID})
	eventually(t, e, bob, search.MsgSearchReq{Query: "budget"})
	_, err = fntest.Call[search.MsgSearchResp](t, e, "msg.search", bob, search.MsgSearchReq{Query: "budget", ConvID: g.ConvID})
	fntest.WantCode(t, err, imerr.NotFound)

	// Bad queries.
	_, err = fntest.Call[search.MsgSearchResp](t, e, "msg.search", bob, search.MsgSearchReq{Query: "  !! "})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestPaging: newest first in pages with next_before; relevance ranks the
// closest match first.
func TestPaging(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)
	direct := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)
	var want []string
	for i := range 7 {
		want = append(want, key(send(t, e, alice, direct, fmt.Sprintf("report number %d with some padding words around it", i))))
	}
	best := send(t, e, alice, direct, "report")
	want = append(want, key(best))
	slices.Reverse(want)
	eventually(t, e, bob, search.MsgSearchReq{Query: "report"}, want...)
	var got []string
	r := search.MsgSearchReq{Query: "report", Limit: 3}
	for range 10 {
		page := searchMsgs(t, e, bob, r)
		got = append(got, seqs(page.Hits)...)
		if !page.HasMore {
			break
		}
		r.Before = page.NextBefore
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
	rel := searchMsgs(t, e, bob, search.MsgSearchReq{Query: "report", Order: search.OrderRelevance, Limit: 2})
	if len(rel.Hits) != 2 || rel.Hits[0].Seq != best.Seq || !rel.HasMore || rel.NextOffset != 2 {
		t.Fatalf("relevance %+v", rel)
	}
}

// TestCatchUpAndReindex: messages sent, edited and recalled while no indexer
// runs are all indexed once one starts again (the durable consumer resumes);
// a reindex from scratch rebuilds the same index from the messages table.
func TestCatchUpAndReindex(t *testing.T) {
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Search: search.Config{IndexerOff: true}})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)
	direct := fmt.Sprintf("d:%d:%d", alice.UserID, bob.UserID)

	start := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := search.New(search.Deps{DB: e.DB, NC: e.Connect(t), Log: zerolog.Nop(), Config: search.Config{AckWait: 2 * time.Second, Backoff: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return cancel
	}
	stop := start()
	first := send(t, e, alice, direct, "alpha one")
	eventually(t, e, bob, search.MsgSearchReq{Query: "alpha"}, key(first))
	stop()

	var want []string
	for i := range 30 {
		want = append(want, key(send(t, e, alice, direct, fmt.Sprintf("alpha %d 下线期间", i))))
	}
	fntest.Must[json.RawMessage](t, e, "msg.edit", alice, message.EditReq{MsgRef: message.MsgRef{ID: first.ID}, Content: text("omega one")})
	gone := send(t, e, alice, direct, "alpha recalled")
	fntest.Must[message.RecallResp](t, e, "msg.recall", alice, message.RecallReq{MsgRef: message.MsgRef{ID: gone.ID}})
	// Nothing indexes meanwhile.
	if got := searchMsgs(t, e, bob, search.MsgSearchReq{Query: "下线期间"}); len(got.Hits) != 0 {
		t.Fatalf("indexed without an indexer: %v", seqs(got.Hits))
	}

	stop = start()
	defer stop()
	slices.Reverse(want)
	eventually(t, e, bob, search.MsgSearchReq{Query: "alpha", Limit: 50}, want...)
	eventually(t, e, bob, search.MsgSearchReq{Query: "omega"}, key(first))

	// From scratch: the same answers.
	s, err := search.New(search.Deps{DB: e.DB, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	var docs, postings int
	count := func() (int, int) {
		var d, p int
		if err := e.DB.QueryRow("SELECT (SELECT COUNT(*) FROM search_docs), (SELECT COUNT(*) FROM search_postings)").Scan(&d, &p); err != nil {
			t.Fatal(err)
		}
		return d, p
	}
	docs, postings = count()
	n, err := s.Rebuild(context.Background(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n < 32 {
		t.Fatalf("reindex read %d messages, want at least 32", n)
	}
	if d, p := count(); d != docs || p != postings {
		t.Fatalf("after reindex %d docs and %d postings, before %d and %d", d, p, docs, postings)
	}
	eventually(t, e, bob, search.MsgSearchReq{Query: "alpha", Limit: 50}, want...)
	eventually(t, e, bob, search.MsgSearchReq{Query: "omega"}, key(first))
}
