package conv_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"natter/functions/conv"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/testenv"
)

// reportPercentiles adds p50/p95/p99 of the recorded latencies to the benchmark.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkList measures conv.list through NATS for a user with 1,000
// conversations (seeded with batched SQL), each with a last message and unread.
func BenchmarkList(b *testing.B) {
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	me, _ := fntest.User(b, e, "reader", "d")
	peers := fntest.SeedUsers(b, e, "peer", 1000)
	seedDirect(b, e, me.UserID, peers)
	for _, limit := range []int{100, 500} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				l := fntest.Must[conv.ListResp](b, e, "conv.list", me, conv.ListReq{Limit: limit})
				lat = append(lat, time.Since(start))
				if len(l.Conversations) != limit || l.Conversations[0].Unread != 10 {
					b.Fatalf("listed %d", len(l.Conversations))
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

func seedDirect(b *testing.B, e *testenv.Env, me int64, peers []int64) {
	b.Helper()
	now := time.Now().UTC()
	for start := 0; start < len(peers); start += 500 {
		chunk := peers[start:min(start+500, len(peers))]
		var convs, members, msgs []any
		q1, q2, q3 := "", "", ""
		for i, p := range chunk {
			id := fmt.Sprintf("d:%d:%d", min(me, p), max(me, p))
			at := now.Add(-time.Duration(start+i) * time.Minute)
			sep := ","
			if i == 0 {
				sep = ""
			}
			q1 += sep + "(?, 1, 10, ?)"
			convs = append(convs, id, at)
			q2 += sep + "(?, ?, ?), (?, ?, ?)"
			members = append(members, me, id, p, p, id, me)
			q3 += sep + "(?, 10, ?, ?, 'x', 'text', '{\"text\":\"the last message\"}', ?)"
			msgs = append(msgs, id, int64(1e12)+int64(start+i), p, at)
		}
		for _, s := range []struct {
			q    string
			args []any
		}{
			{"INSERT INTO conversations (id, kind, last_seq, last_msg_at) VALUES " + q1, convs},
			{"INSERT INTO conversation_members (user_id, conv_id, target_id) VALUES " + q2, members},
			{"INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, content, created_at) VALUES " + q3, msgs},
		} {
			if _, err := e.DB.Exec(s.q, s.args...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkReceipts measures msg.receipts ("read by N of M" plus the first page of
// readers) for a message in a 5,000-member group where 2,000 have read it.
func BenchmarkReceipts(b *testing.B) {
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	owner, _ := fntest.User(b, e, "owner", "d")
	ids := fntest.SeedUsers(b, e, "m", 4999)
	g := fntest.Must[group.Info](b, e, "group.create", owner, group.CreateReq{Name: "big", Members: ids})
	msg := fntest.Must[message.SendResp](b, e, "msg.send", owner, message.SendReq{ConvID: g.ConvID, ClientMsgID: "x", Type: "text", Content: []byte(`{"text":"read me"}`)})
	if _, err := e.DB.Exec("UPDATE conversation_members SET read_seq = ? WHERE conv_id = ? AND user_id <= ?", msg.Seq, g.ConvID, ids[1999]); err != nil {
		b.Fatal(err)
	}
	for _, limit := range []int{0, 100} {
		b.Run(fmt.Sprintf("readers=%d", limit), func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				r := fntest.Must[message.ReceiptsResp](b, e, "msg.receipts", owner, message.ReceiptsReq{MsgRef: message.MsgRef{ID: msg.ID}, Limit: limit})
				lat = append(lat, time.Since(start))
				if r.Read != 2000 || r.Members != 4999 {
					b.Fatalf("read %d of %d", r.Read, r.Members)
				}
			}
			reportPercentiles(b, lat)
		})
	}
}
