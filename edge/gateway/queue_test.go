package gateway_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/shared/wire"
)

// patient leaves only the send-queue limits under test to close a connection:
// no write timeout, no heartbeat timeout, no frame rate limit.
func patient(c *gateway.Config) {
	c.WriteTimeout, c.HeartbeatTimeout, c.RateLimit = time.Hour, time.Hour, -1
}

// bigRequest asks bigOp for a reply of about size bytes.
func bigRequest(id string, size int) string {
	return fmt.Sprintf(`{"id":%q,"op":%q,"data":{"reply_bytes":%d}}`, id, bigOp, size)
}

// TestRepliesBackpressure: a client that sends requests and reads none of the
// replies gets no more requests started once its queue is over QueueBytes; the
// edge stops reading its frames. When it reads, every reply arrives.
func TestRepliesBackpressure(t *testing.T) {
	const budget, size, n = 256 << 10, 64 << 10, 1000
	f := newFixture(t, func(c *gateway.Config) {
		patient(c)
		c.Parallel, c.QueueBytes, c.QueueMax, c.QueueTimeout = 2, budget, 4<<20, time.Hour
	})
	cl := f.dial(t, newUser(), "s1", noRead)
	sent := make(chan error, 1)
	go func() { // blocks once the edge stops reading, until the client reads
		for i := range n {
			if err := cl.sock.WriteString(bigRequest(strconv.Itoa(i), size)); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	// The socket buffers fill, then the queue, then nothing more is served.
	var served int64
	waitFor(t, "serving to stop", func() bool {
		s := f.stub.big.Load()
		time.Sleep(200 * time.Millisecond)
		served = f.stub.big.Load()
		return s > 0 && s == served
	})
	if served >= n/2 {
		t.Fatalf("%d of %d requests served to a client that reads nothing", served, n)
	}
	if f.metric(t, "natter_edge_requests_paused_total") == 0 {
		t.Fatal("no request counted as held back")
	}
	// At most the budget plus the replies of the Parallel requests let through.
	if q := f.metric(t, "natter_edge_queued_bytes"); q > budget+2*(size+64) {
		t.Fatalf("%v bytes queued, budget %d", q, budget)
	}
	t.Logf("%d requests served, %v bytes queued", served, f.metric(t, "natter_edge_queued_bytes"))

	cl.startReading()
	seen := map[string]bool{}
	for range n {
		r := cl.reply(t)
		if !r.OK || seen[r.ID] {
			t.Fatalf("reply %s: ok %v, seen before %v", r.ID, r.OK, seen[r.ID])
		}
		seen[r.ID] = true
	}
	if err := <-sent; err != nil {
		t.Fatalf("writing requests: %v", err)
	}
	if got := f.metric(t, "natter_edge_slow_consumer_closes_total"); got != 0 || cl.isClosed() {
		t.Fatalf("a client that reads in the end was closed (%v)", got)
	}
}

// TestSlowConsumerClosed: a connection whose queue stays over QueueBytes for
// QueueTimeout is closed, whether replies or pushes filled it.
func TestSlowConsumerClosed(t *testing.T) {
	const budget, timeout = 128 << 10, 200 * time.Millisecond
	tune := func(c *gateway.Config) {
		patient(c)
		c.QueueBytes, c.QueueTimeout = budget, timeout
		c.HeartbeatInterval = 300 * time.Millisecond // checked every 10 ms
	}
	tests := []struct {
		name string
		fill func(t *testing.T, uid int64, c *client)
	}{
		{"replies", func(t *testing.T, _ int64, c *client) {
			go func() { // ends with an error once the edge closes the connection
				for i := range 1000 {
					if c.sock.WriteString(bigRequest(strconv.Itoa(i), 64<<10)) != nil {
						return
					}
				}
			}()
		}},
		{"pushes", func(t *testing.T, uid int64, _ *client) {
			// A flood that goes on: a burst that ends with the queue drained is no
			// reason to close.
			push := []byte(`{"event":"msg.new","data":"` + blob(40<<10) + `"}`)
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			go func() {
				for range 2000 {
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
					}
					if env.NC.Publish("im.deliver."+strconv.FormatInt(uid, 10), push) != nil {
						return
					}
				}
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tune)
			uid := newUser()
			c := f.dial(t, uid, "s1", noRead)
			id := <-f.stub.connects
			start := time.Now()
			tt.fill(t, uid, c)
			waitFor(t, "the slow consumer closed", func() bool { return f.metric(t, "natter_edge_connections") == 0 })
			if d := f.stub.nextDisconnect(t); d.ConnID != id.Req.ConnID {
				t.Fatalf("disconnect of %q, want %q", d.ConnID, id.Req.ConnID)
			}
			if got := f.metric(t, "natter_edge_slow_consumer_closes_total"); got != 1 {
				t.Fatalf("slow_consumer_closes_total = %v", got)
			}
			if q := f.metric(t, "natter_edge_queued_bytes"); q != 0 {
				t.Fatalf("%v bytes still queued after the close", q)
			}
			t.Logf("closed %v after the load started", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestQueueHardLimit: a reply that would take a queue past QueueMax closes the
// connection with 3003 at once; one that stays within it is written. Held
// pushes (WriteDelay) fill the queue without a stuck write, so the client,
// which reads, sees the close code.
func TestQueueHardLimit(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) {
		patient(c)
		c.QueueBytes, c.QueueMax, c.QueueTimeout = 64<<10, 128<<10, time.Hour
		c.WriteDelay, c.WriteDelayAbove = time.Hour, -1
	})
	uid := newUser()
	cl := f.dial(t, uid, "s1")
	push := `{"event":"e","data":"` + blob(8<<10) + `"}`
	hold := func(total float64) {
		t.Helper()
		for range 7 { // 56 KiB and a little: under QueueBytes
			publish(t, uid, push, nil)
		}
		waitFor(t, "pushes held", func() bool { return f.metric(t, "natter_edge_pushes_total") == total })
	}

	hold(7)
	cl.sendRaw(t, bigRequest("fits", 60<<10)) // 116 KiB in all: over QueueBytes, within QueueMax
	for i := range 7 {
		if got := cl.next(t); string(got) != push {
			t.Fatalf("frame %d: %.40s..., want the push", i, got)
		}
	}
	if r := cl.reply(t); !r.OK || r.ID != "fits" {
		t.Fatalf("reply %+v", r)
	}

	// The client can read the reply before the edge has counted its bytes out
	// of the queue: pushes arriving in between would find it full.
	waitFor(t, "queue drained", func() bool { return f.metric(t, "natter_edge_queued_bytes") == 0 })
	hold(14)
	cl.sendRaw(t, bigRequest("too-big", 100<<10)) // 156 KiB: past QueueMax
	if code := cl.closeCode(t); code != wire.CloseSlowConsumer {
		t.Fatalf("close code %d, want %d", code, wire.CloseSlowConsumer)
	}
	select {
	case fr := <-cl.frames:
		t.Fatalf("a frame came before the close: %.40s...", fr)
	default:
	}
	if got := f.metric(t, "natter_edge_slow_consumer_closes_total"); got != 1 {
		t.Fatalf("slow_consumer_closes_total = %v", got)
	}
}

// TestPushesBoundedInBytes: pushes to a client that does not read stop at
// QueueBytes, however many SendQueue allows; the rest are dropped and counted,
// and what the client gets once it reads is in order.
func TestPushesBoundedInBytes(t *testing.T) {
	const budget, n = 256 << 10, 300
	f := newFixture(t, func(c *gateway.Config) {
		patient(c)
		c.SendQueue, c.QueueBytes, c.QueueTimeout = 100_000, budget, time.Hour
	})
	uid := newUser()
	cl := f.dial(t, uid, "s1", noRead)
	pad := blob(40 << 10)
	for i := range n {
		if err := env.NC.Publish("im.deliver."+strconv.FormatInt(uid, 10), fmt.Appendf(nil, `{"event":"msg.new","data":{"seq":%d,"pad":%q}}`, i, pad)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all pushes handled", func() bool {
		return f.metric(t, "natter_edge_pushes_total")+f.metric(t, "natter_edge_pushes_dropped_total") == n
	})
	if f.metric(t, "natter_edge_pushes_dropped_total") == 0 {
		t.Fatalf("12 MB pushed to a client that reads nothing, none dropped")
	}
	if q := f.metric(t, "natter_edge_queued_bytes"); q > budget {
		t.Fatalf("%v bytes queued, budget %d", q, budget)
	}

	cl.startReading()
	last, got := -1, 0
	for got < int(f.metric(t, "natter_edge_pushes_total")) {
		var p struct {
			Data struct{ Seq int } `json:"data"`
		}
		if err := json.Unmarshal(cl.next(t), &p); err != nil || p.Data.Seq <= last {
			t.Fatalf("push %d after %d (%v)", p.Data.Seq, last, err)
		}
		last = p.Data.Seq
		got++
	}
	t.Logf("%d of %d pushes delivered", got, n)
	if cl.isClosed() {
		t.Fatal("closed")
	}
}

// TestParallelBound: at most Parallel requests of one connection run at once;
// gws does not read ahead into a queue of its own.
func TestParallelBound(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { c.Parallel = 2 })
	cl := f.dial(t, newUser(), "s1")
	for i := range 10 {
		cl.send(t, strconv.Itoa(i), slowOp, map[string]int{"sleep_ms": 50})
	}
	for range 10 {
		if r := cl.reply(t); !r.OK {
			t.Fatalf("reply %+v", r)
		}
	}
	if m := f.stub.slowMax.Load(); m != 2 {
		t.Fatalf("%d requests of one connection ran at once, want Parallel (2)", m)
	}
}

// TestPongsCoalesce: pings from a client that does not read are answered with
// one pong once its writer is free, not one queued per ping.
func TestPongsCoalesce(t *testing.T) {
	f := newFixture(t, func(c *gateway.Config) { patient(c); c.QueueTimeout = time.Hour })
	uid := newUser()
	cl := f.dial(t, uid, "s1", noRead)
	// Fill the socket buffers and the queue: the edge's writer is stuck.
	push := `{"event":"e","data":"` + blob(40<<10) + `"}`
	for range 200 {
		publish(t, uid, push, nil)
	}
	waitFor(t, "a push dropped", func() bool { return f.metric(t, "natter_edge_pushes_dropped_total") > 0 })
	const pings = 20_000
	for range pings {
		if err := cl.sock.WritePing(nil); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // for the edge to read them
	cl.startReading()
	waitFor(t, "the pushes read", func() bool { return f.metric(t, "natter_edge_queued_bytes") == 0 })
	waitFor(t, "a pong", func() bool { return cl.pongs.Load() > 0 })
	time.Sleep(100 * time.Millisecond)
	if n := cl.pongs.Load(); n > 3 {
		t.Fatalf("%d pongs for %d pings sent while the writer was stuck", n, pings)
	}
}

// TestSlowConsumerRecovers: a client that falls behind, loses pushes, then
// reads everything is not closed later, though nothing more is sent to it.
func TestSlowConsumerRecovers(t *testing.T) {
	const timeout = time.Second
	f := newFixture(t, func(c *gateway.Config) {
		patient(c)
		c.SendQueue, c.QueueBytes, c.QueueTimeout = 100_000, 64<<10, timeout
		c.HeartbeatInterval = 300 * time.Millisecond // checked every 10 ms
	})
	uid := newUser()
	cl := f.dial(t, uid, "s1", noRead)
	push := []byte(`{"event":"e","data":"` + blob(60<<10) + `"}`)
	start := time.Now()
	// 9 MB, paced so that the writer keeps up until the socket buffers are full;
	// then a stuck write holds one push and the rest are dropped.
	for range 150 {
		if err := env.NC.Publish("im.deliver."+strconv.FormatInt(uid, 10), push); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "all pushes handled", func() bool {
		return f.metric(t, "natter_edge_pushes_total")+f.metric(t, "natter_edge_pushes_dropped_total") == 150
	})
	if f.metric(t, "natter_edge_pushes_dropped_total") == 0 {
		t.Fatal("nothing dropped")
	}
	if time.Since(start) > timeout/2 {
		t.Skipf("too slow for the timing (%v)", time.Since(start))
	}
	cl.startReading()
	waitFor(t, "the queue drained", func() bool { return f.metric(t, "natter_edge_queued_bytes") == 0 })
	time.Sleep(2 * timeout)
	if got := f.metric(t, "natter_edge_slow_consumer_closes_total"); got != 0 || cl.isClosed() {
		t.Fatalf("closed as a slow consumer after it caught up (%v)", got)
	}
}
