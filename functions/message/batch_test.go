package message_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"natter/functions/fntest"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/testenv"
)

// TestBatchAcrossConversations makes batches (a long linger gathers concurrent
// sends) that mix several conversations, both directions of each, and a first
// message that creates its conversation. Every acked seq must be the stored one,
// each conversation gap-free, each sender's read cursor at their last message, and
// the message that found no conversation row stored once it was created. Contents
// full of SQL syntax come back byte for byte.
func TestBatchAcrossConversations(t *testing.T) {
	// Text that would break a script built by hand: placeholders, quotes, escapes,
	// statement ends, comments, and characters outside the BMP.
	const tricky = " ? ?? '; DROP TABLE messages; -- \\ \" ` 😀 ∑"
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{Message: message.Config{Writers: 2, BatchLinger: 20 * time.Millisecond}})
	const pairs, each = 4, 10
	users := make([]endpoint.Caller, 2*pairs)
	for i := range users {
		users[i], _ = fntest.User(t, e, fmt.Sprintf("batcher%d", i), "d")
		if i%2 == 1 {
			fntest.Befriend(t, e, users[i-1], users[i])
		}
	}
	// Pairs 1.. already talk; pair 0's first message arrives inside a batch.
	for p := 1; p < pairs; p++ {
		send(t, e, users[2*p], users[2*p+1].UserID, "warmup", "hi")
	}

	type ack struct {
		conv, cid string
		sender    int64
		seq       int64
	}
	acks := make(chan ack, 2*pairs*each)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := users[i^1]
			for k := range each {
				cid := fmt.Sprintf("u%d-%d", i, k)
				r := send(t, e, users[i], peer.UserID, cid, cid+tricky)
				acks <- ack{r.ConvID, cid, users[i].UserID, r.Seq}
			}
		}()
	}
	wg.Wait()
	close(acks)

	lastBy := map[[2]any]int64{}
	n := 0
	for a := range acks {
		n++
		var stored string
		var content []byte
		if err := e.DB.QueryRow("SELECT client_msg_id, content FROM messages WHERE conv_id = ? AND seq = ?", a.conv, a.seq).Scan(&stored, &content); err != nil || stored != a.cid {
			t.Fatalf("%s acked seq %d, which holds %q (%v)", a.cid, a.seq, stored, err)
		}
		var body message.TextContent
		if err := json.Unmarshal(content, &body); err != nil || body.Text != a.cid+tricky {
			t.Fatalf("%s stored as %s (%v)", a.cid, content, err)
		}
		k := [2]any{a.sender, a.conv}
		lastBy[k] = max(lastBy[k], a.seq)
	}
	if n != 2*pairs*each {
		t.Fatalf("%d acks, want %d", n, 2*pairs*each)
	}
	rows, err := e.DB.Query("SELECT c.id, c.last_seq, COUNT(m.seq), MIN(m.seq), MAX(m.seq) FROM conversations c JOIN messages m ON m.conv_id = c.id GROUP BY c.id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	convs := 0
	for rows.Next() {
		var id string
		var last, count, lo, hi int64
		if err := rows.Scan(&id, &last, &count, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if lo != 1 || hi != last || count != last {
			t.Fatalf("%s: last_seq %d, %d messages from %d to %d: not gap-free", id, last, count, lo, hi)
		}
		convs++
	}
	if convs != pairs {
		t.Fatalf("%d conversations, want %d", convs, pairs)
	}
	for k, seq := range lastBy {
		var read int64
		if err := e.DB.QueryRow("SELECT read_seq FROM conversation_members WHERE user_id = ? AND conv_id = ?", k[0], k[1]).Scan(&read); err != nil {
			t.Fatal(err)
		}
		if read != seq { // nobody read anything: the cursor is at their own last message
			t.Fatalf("user %v read cursor %d in %v, want their last message %d", k[0], read, k[1], seq)
		}
	}
}
