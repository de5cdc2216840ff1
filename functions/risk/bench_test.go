package risk_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"natter/functions/fntest"
	"natter/functions/message"
	"natter/functions/risk"
	"natter/functions/settings"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// BenchmarkSendRisk measures msg.send (through NATS into MySQL, pushes
// published, over 64 conversations) as the risk controls come on: none, then
// 10,000 sensitive words (no match in the message), then also a send rate
// limit high enough never to refuse (one Redis round trip per send).
func BenchmarkSendRisk(b *testing.B) {
	e := testenv.Start(b)
	fntest.Start(b, e, fntest.Options{})
	const users = 128
	callers := make([]endpoint.Caller, users)
	for i, id := range fntest.SeedUsers(b, e, "u", users) {
		callers[i] = endpoint.Caller{UserID: id, DeviceID: "d"}
		if i%2 == 1 {
			fntest.Befriend(b, e, callers[i-1], callers[i])
		}
	}
	content := text("benchmark message with a typical length of a chat line, 你好世界")
	var n atomic.Int64
	run := func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				p := int(i % (users / 2))
				_, err := fntest.Call[message.SendResp](b, e, "msg.send", callers[2*p], message.SendReq{To: callers[2*p+1].UserID, ClientMsgID: fmt.Sprint("b", i), Type: wire.TypeText, Content: content})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("plain", run)
	for k := 0; k < 10; k++ {
		words := make([]risk.WordIn, 1000)
		for i := range words {
			words[i] = risk.WordIn{Word: fmt.Sprintf("zq%dx%d", k, i), Action: "mask"}
		}
		fntest.Must[risk.WordsAddResp](b, e, "admin.words.add", operator, risk.WordsAddReq{Words: words})
	}
	probe := func(what string, ok func() bool) {
		start := time.Now()
		for !ok() {
			if time.Since(start) > 30*time.Second {
				b.Fatalf("%s: not in effect", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	probe("words", func() bool {
		r, err := fntest.Call[message.SendResp](b, e, "msg.send", callers[0], message.SendReq{To: callers[1].UserID, ClientMsgID: fmt.Sprint("p", n.Add(1)), Type: wire.TypeText, Content: text("zq9x999")})
		var c string
		return err == nil && e.DB.QueryRow("SELECT content FROM messages WHERE conv_id = ? AND seq = ?", r.ConvID, r.Seq).Scan(&c) == nil && strings.Contains(c, "*******")
	})
	b.Run("words=10000", run)
	v, _ := json.Marshal(100000)
	fntest.Must[settings.ConfigItem](b, e, "admin.config.set", super, settings.ConfigSetReq{Name: dynconf.RateDirectSecond, Value: v})
	time.Sleep(200 * time.Millisecond) // the event reaches the worker in milliseconds (TestConfigTakesEffect)
	b.Run("words=10000+rate_limit", run)
}
