package message_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/testenv"
)

// BenchmarkSendOdd measures sends that group commit used to push off its fast
// path: a conversation's first message (1 send in 16 here), and messages with
// mentions (every send). 256 concurrent callers, as BenchmarkSendInFlight. Run
// with a fixed count (-benchtime 20000x): the first-message case seeds a user
// pair per 16 sends.
func BenchmarkSendOdd(b *testing.B) {
	b.Run("first_message_1_in_16", func(b *testing.B) {
		e := testenv.Start(b)
		fntest.Start(b, e, fntest.Options{})
		const busy = 64
		users := fntest.SeedUsers(b, e, "odd", busy+2*(b.N/16+1))
		// Everyone takes messages from strangers: no friendships to seed.
		if _, err := e.DB.Exec("INSERT INTO user_privacy (user_id, messages) SELECT id, 'everyone' FROM users"); err != nil {
			b.Fatal(err)
		}
		content := text("benchmark message with a typical length of a chat line")
		var n, fresh atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				from, to := users[i%busy], users[(i+1)%busy]
				if i%16 == 0 {
					k := busy + 2*int(fresh.Add(1))
					from, to = users[k-2], users[k-1]
				}
				_, err := fntest.Call[message.SendResp](b, e, "msg.send", endpoint.Caller{UserID: from, DeviceID: "d"},
					message.SendReq{To: to, ClientMsgID: fmt.Sprint("o", i), Type: "text", Content: content})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("mentions", func(b *testing.B) {
		e := testenv.Start(b)
		fntest.Start(b, e, fntest.Options{})
		const groups, size = 16, 16
		ids := fntest.SeedUsers(b, e, "men", groups*size)
		convs := make([]string, groups)
		for g := range groups {
			members := ids[g*size : (g+1)*size]
			info := fntest.Must[group.Info](b, e, "group.create", endpoint.Caller{UserID: members[0], DeviceID: "d"},
				group.CreateReq{Name: fmt.Sprint("g", g), Members: members[1:]})
			convs[g] = info.ConvID
		}
		var n atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				g := i % groups
				from, mention := ids[g*size+i%size], ids[g*size+(i+1)%size]
				content, _ := json.Marshal(message.RichContent{Text: "@someone look", Mentions: []int64{mention}})
				_, err := fntest.Call[message.SendResp](b, e, "msg.send", endpoint.Caller{UserID: from, DeviceID: "d"},
					message.SendReq{ConvID: convs[g], ClientMsgID: fmt.Sprint("m", i), Type: "rich", Content: content})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}
