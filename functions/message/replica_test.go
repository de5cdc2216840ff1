package message_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"natter/functions/conv"
	"natter/functions/fntest"
	"natter/functions/message"
	"natter/shared/db"
	"natter/shared/testenv"
)

// TestReadReplica: with a replica, history, sync and conv.list read it once it has
// applied what the primary had when the request came, and the primary when it
// lags: a sender always reads its own messages, and a lagging replica never makes
// a sync skip what a later sync could not fill.
func TestReadReplica(t *testing.T) {
	e := testenv.StartWith(t, testenv.Options{MySQLReplica: true})
	ctx := context.Background()
	replica, err := db.Open(ctx, e.Replica)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	reads, err := db.NewReader(ctx, e.DB, replica, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	fntest.Start(t, e, fntest.Options{Reads: reads})
	alice, _ := fntest.User(t, e, "alice", "a1")
	bob, _ := fntest.User(t, e, "bob", "b1")
	fntest.Befriend(t, e, alice, bob)

	send := func(i int) message.SendResp {
		body, _ := json.Marshal(message.TextContent{Text: fmt.Sprint("m", i)})
		return fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{To: bob.UserID, ClientMsgID: fmt.Sprint("c", i), Type: "text", Content: body})
	}
	// check reads history, sync and the list as each side, right after a write.
	check := func(convID string, want int64) {
		t.Helper()
		h := fntest.Must[message.HistoryResp](t, e, "msg.history", alice, message.HistoryReq{ConvID: convID, Limit: 100})
		if len(h.Messages) == 0 || h.Messages[len(h.Messages)-1].Seq != want { // ascending seq
			t.Fatalf("alice's history right after sending seq %d: %d messages, newest %+v", want, len(h.Messages), h.Messages)
		}
		s := fntest.Must[message.SyncResp](t, e, "msg.sync", bob, message.SyncReq{Cursors: map[string]int64{}})
		if len(s.Conversations) != 1 || s.Conversations[0].LastSeq != want || int64(len(s.Conversations[0].Messages)) != want {
			t.Fatalf("bob's sync after seq %d: %+v", want, s.Conversations)
		}
		l := fntest.Must[conv.ListResp](t, e, "conv.list", alice, conv.ListReq{})
		if len(l.Conversations) != 1 || l.Conversations[0].LastSeq != want {
			t.Fatalf("alice's list after seq %d: %+v", want, l.Conversations)
		}
	}

	var last message.SendResp
	for i := range 10 {
		last = send(i)
		check(last.ConvID, last.Seq)
	}
	onReplica, onPrimary := reads.Counts()
	t.Logf("caught up: %d reads on the replica, %d on the primary", onReplica, onPrimary)
	if onReplica == 0 {
		t.Fatal("no read went to the caught-up replica")
	}

	// The replica stops applying: reads fall back to the primary, and see everything.
	if _, err := replica.ExecContext(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	r0, p0 := reads.Counts()
	for i := 10; i < 13; i++ {
		last = send(i)
		check(last.ConvID, last.Seq)
	}
	r1, p1 := reads.Counts()
	t.Logf("lagging: %d more on the replica, %d more on the primary", r1-r0, p1-p0)
	if r1 != r0 || p1-p0 != 9 {
		t.Errorf("a lagging replica served %d reads (want 0) and the primary %d (want 9)", r1-r0, p1-p0)
	}

	// It catches up and serves again.
	if _, err := replica.ExecContext(ctx, "START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	check(last.ConvID, last.Seq)
	if r2, _ := reads.Counts(); r2 == r1 {
		t.Error("the replica served nothing after catching up")
	}
}
