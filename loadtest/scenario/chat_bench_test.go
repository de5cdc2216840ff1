package scenario

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"natter/shared/wire"
)

// BenchmarkOnPush is the generator's receive path after the WebSocket read: a
// msg.new push of a group message scanned and checked by seq by one of 200
// online members (each op is one delivery). It must not allocate.
func BenchmarkOnPush(b *testing.B) {
	const members = 200
	c := newChat(b.Context(), chatConfig{Common: Common{Prefix: "ltbench-"}})
	ms := make([]*member, members)
	for i := range ms {
		ms[i] = c.addMember(int64(1000 + i))
	}
	f := c.addFlow(0, "")
	conv := c.addConv(f, "g:1", ms)
	c.addSender(f, ms[0], conv, `"conv_id":"g:1"`)
	pushes := make([]func(ev, data []byte, at time.Time) bool, members)
	for i, m := range ms {
		pushes[i] = c.onPush(m)
	}
	frames := make([][]byte, b.N/members+1)
	sched := time.Now().UnixNano()
	for i := range frames {
		seq := int64(i + 1)
		cmid := string(c.tag) + "0." + strconv.FormatInt(seq, 10) + "." + strconv.FormatInt(sched, 10)
		f, err := wire.EncodeEvent(wire.MsgNew{Message: wire.Message{
			ConvID: "g:1", Seq: seq, ID: 1 << 40, Sender: 1000, ClientMsgID: cmid, Type: "text",
			Content: json.RawMessage(`{"text":"load message xxxxxxxxxxxxxxxxxxx"}`), SentAt: sched / 1e6,
		}})
		if err != nil {
			b.Fatal(err)
		}
		// The push's data, as client.Client hands it over.
		frames[i] = f[bytes.IndexByte(f, ':')+1:]
		frames[i] = frames[i][bytes.Index(frames[i], []byte(`"data":`))+7 : len(frames[i])-1]
	}
	ev, at := []byte("msg.new"), time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pushes[i%members](ev, frames[i/members], at)
	}
	b.StopTimer()
	if c.foreign.Load() != 0 || c.tallies[0].delivered.Load() == 0 {
		b.Fatalf("foreign %d, delivered %d", c.foreign.Load(), c.tallies[0].delivered.Load())
	}
}
