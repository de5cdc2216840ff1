package gateway_test

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"

	"natter/edge/gateway"
	"natter/shared/wire"
)

// FuzzFrame sends arbitrary bytes as one text frame on a real WebSocket: the
// edge answers with exactly one frame, a JSON reply (with the request's id when
// it has a usable one), or closes the connection with 1007 when the text is not
// UTF-8. A panic in the edge shows as a missing reply. limited picks a
// connection whose frames are all over the rate limit, answered unparsed.
//
//	go test -run '^$' -fuzz FuzzFrame -fuzztime 60s -parallel 1 ./edge/gateway/
func FuzzFrame(f *testing.F) {
	for _, seed := range []string{
		`{"id":"c1","op":"ping"}`,
		`{"id":"c2","op":"msg.send","data":{"text":"hi"}}`,
		`{"id":"c3","op":"msg.sync","data":{"sleep_ms":1}}`,
		`{"id":"c4","op":"account.logout"}`,
		`{"id":"c5","op":"account.devices"}`,
		`{"id":"c6","op":"session.touch"}`,
		`{"id":"c7","op":"no.such.op"}`,
		`{"op":"ping"}`,
		`{"id":"\u0001\u007f","op":"ping"}`,
		`{"id":12,"op":"ping"}`,
		`{"id":"c8","op":"ping","data":`,
		`[1,2]`,
		`null`,
		"\xff",
		``,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	fixtures := map[bool]*fixture{
		false: newFixture(f, func(c *gateway.Config) { c.RateLimit, c.RequestTimeout = -1, 300*time.Millisecond }),
		true:  newFixture(f, func(c *gateway.Config) { c.RateLimit, c.RateBurst = 1e-9, 1 }),
	}
	// Every 1007 costs a new connection: nobody reads the stubs' call records.
	stop := make(chan struct{})
	f.Cleanup(func() { close(stop) })
	for _, fx := range fixtures {
		go func() {
			for {
				select {
				case <-fx.stub.connects:
				case <-fx.stub.disconnects:
				case <-fx.stub.touches:
				case <-stop:
					return
				}
			}
		}()
	}
	uid := newUser()
	conns := map[bool]*client{}
	f.Cleanup(func() {
		for _, c := range conns {
			_ = c.sock.NetConn().Close()
		}
	})
	seq := 0
	f.Fuzz(func(t *testing.T, frame []byte, limited bool) {
		if len(frame) > wire.MaxFrame {
			t.Skip("over MaxFrame: TestFrameSizeLimit")
		}
		c := conns[limited]
		if c == nil || c.isClosed() {
			c = fixtures[limited].dial(t, uid, "fuzz", keepOpen)
			conns[limited] = c
			if limited { // use up the one token
				c.send(t, "burst", gateway.OpPing, nil)
				c.reply(t)
			}
		}
		if err := c.sock.WriteMessage(gws.OpcodeText, frame); err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(frame) {
			if code := c.closeCode(t); code != wire.CloseInvalidData {
				t.Fatalf("close code %d, want %d", code, wire.CloseInvalidData)
			}
			return
		}
		got := c.next(t)
		var r wire.Reply
		if !json.Valid(got) || json.Unmarshal(got, &r) != nil {
			t.Fatalf("reply %q is not JSON", got)
		}
		if r.OK == (r.Error != nil) || (r.Error != nil && !r.Error.Code.Valid()) {
			t.Fatalf("reply %s: want ok or a valid error", got)
		}
		var req wire.Request
		if !limited && json.Unmarshal(frame, &req) == nil && len(req.ID) <= wire.MaxID && r.ID != req.ID {
			t.Fatalf("reply id %q to a request with id %q", r.ID, req.ID)
		}
		// Exactly one: the next frame answers a ping sent now.
		seq++
		id := "after-" + strconv.Itoa(seq)
		c.send(t, id, gateway.OpPing, nil)
		if r := c.reply(t); r.ID != id {
			t.Fatalf("a second frame %+v after the reply to %q", r, frame)
		}
	})
}
