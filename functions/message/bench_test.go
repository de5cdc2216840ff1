package message_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"natter/functions/fntest"
	"natter/functions/message"
	"natter/shared/endpoint"
	"natter/shared/testenv"
)

// BenchmarkSend measures msg.send through NATS into MySQL with the pushes
// published, as a client behind the edge would see it (minus the WebSocket hop).
// "one_conversation" serialises on one conversation's seq row lock; "pairs"
// spreads the load over 64 conversations the way real traffic does.
func BenchmarkSend(b *testing.B) {
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	const users = 128
	callers := friendPairs(b, e, users)
	content := text("benchmark message with a typical length of a chat line")
	var n atomic.Int64
	run := func(b *testing.B, pick func(i int64) (endpoint.Caller, int64)) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				from, to := pick(i)
				_, err := fntest.Call[message.SendResp](b, e, "msg.send", from, message.SendReq{To: to, ClientMsgID: fmt.Sprint("b", i), Type: "text", Content: content})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("one_conversation", func(b *testing.B) {
		run(b, func(int64) (endpoint.Caller, int64) { return callers[0], callers[1].UserID })
	})
	b.Run("pairs", func(b *testing.B) {
		run(b, func(i int64) (endpoint.Caller, int64) {
			p := int(i % (users / 2))
			return callers[2*p], callers[2*p+1].UserID
		})
	})
}

// BenchmarkSendInFlight shows why the adapter runs requests on their own
// goroutines: micro serves one request at a time per endpoint subscription, so
// with one in flight a process handles one send at a time however many clients
// wait, and group commit has nothing to batch.
func BenchmarkSendInFlight(b *testing.B) {
	for _, inflight := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			e := testenv.Start(b)
			fntest.Start(b, e, fntest.Options{InFlight: inflight})
			const users = 64
			callers := friendPairs(b, e, users)
			content := text("benchmark message with a typical length of a chat line")
			var n atomic.Int64
			b.SetParallelism(16) // 16 × GOMAXPROCS concurrent callers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					p := int(i % (users / 2))
					_, err := fntest.Call[message.SendResp](b, e, "msg.send", callers[2*p], message.SendReq{To: callers[2*p+1].UserID, ClientMsgID: fmt.Sprint("b", i), Type: "text", Content: content})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// friendPairs seeds n users and befriends them in pairs (0-1, 2-3, ...).
func friendPairs(b *testing.B, e *testenv.Env, n int) []endpoint.Caller {
	callers := make([]endpoint.Caller, n)
	for i, id := range fntest.SeedUsers(b, e, "u", n) {
		callers[i] = endpoint.Caller{UserID: id, DeviceID: "d"}
		if i%2 == 1 {
			fntest.Befriend(b, e, callers[i-1], callers[i])
		}
	}
	return callers
}
