package gateway

import (
	"sync"
	"time"

	"github.com/lxzan/gws"

	"natter/shared/wire"
)

// outbox holds the frames waiting for a connection's writer. The first frame
// queues a flush on the socket's write queue (one writer goroutine per socket,
// started on demand by gws); frames that arrive before it runs leave with it in
// one write(2). Under load that is most of them: a group message reaching a
// connection whose writer is still busy costs no syscall of its own.
//
// It is bounded in bytes, replies included (Config.QueueBytes, QueueMax): a
// frame counts from enqueue until its write returns, so the frames a stuck
// write holds count too.
type outbox struct {
	mu       sync.Mutex
	room     sync.Cond // L is &mu; signalled when bytes fall to QueueBytes or the outbox shuts
	frames   [][]byte
	spare    [][]byte // the previous flush's slice, reused
	pending  int      // bytes of frames
	pendPush int      // push frames among frames
	bytes    int      // bytes queued and not yet written: frames plus what the running flush took
	pushes   int      // push frames among those (bounded by SendQueue)
	waiting  int      // requests waiting for room (waitRoom)
	dropped  bool     // a push was dropped since the running flush started
	shut     bool     // the connection is closing: nothing more is queued
	state    outState
	deadline time.Time // the socket's write deadline, moved only once it is a second stale
}

type outState uint8

const (
	idle    outState = iota // nothing queued
	held                    // pushes queued, released by the next WriteDelay tick
	flowing                 // a flush is on the socket's write queue
)

// heldPushes lists the connections whose pushes wait for the next WriteDelay
// tick: one ticker for the edge, not a timer per connection.
type heldPushes struct {
	mu    sync.Mutex
	conns []*conn
}

// releaseHeld puts a flush on the write queue of every held connection once per
// WriteDelay, and decides from the push rate (smoothed over about ten ticks)
// whether pushes are held at all.
func (g *Gateway) releaseHeld() {
	t := time.NewTicker(g.cfg.WriteDelay)
	defer t.Stop()
	var spare []*conn
	var rate float64
	last, lastAt := g.pushed.Load(), time.Now()
	for {
		var now time.Time
		select {
		case <-g.stop:
			return
		case now = <-t.C:
		}
		if g.cfg.WriteDelayAbove >= 0 {
			n := g.pushed.Load()
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				rate += (float64(n-last)/dt - rate) / 10
			}
			last, lastAt = n, now
			g.holding.Store(rate > g.cfg.WriteDelayAbove)
		}
		g.held.mu.Lock()
		conns := g.held.conns
		g.held.conns = spare[:0]
		g.held.mu.Unlock()
		for _, c := range conns {
			c.out.mu.Lock()
			release := c.out.state == held
			if release {
				c.out.state = flowing
			}
			c.out.mu.Unlock()
			if release {
				c.sock.Async(c.flush)
			}
		}
		clear(conns)
		spare = conns
	}
}

// enqueue adds frame to the outbox, so callers never block on a slow client,
// and reports whether it did. A push is refused when SendQueue pushes or
// QueueBytes bytes (with it) would wait; a reply (or kick notice) is never
// refused, but one that would take the queue over QueueMax closes the
// connection as a slow consumer. Nothing is queued once the outbox shut.
func (c *conn) enqueue(frame []byte, push bool) bool {
	cfg := &c.g.cfg
	o := &c.out
	n := len(frame)
	o.mu.Lock()
	switch {
	case o.shut:
		o.mu.Unlock()
		return false
	case push && (o.pushes >= cfg.SendQueue || o.bytes+n > cfg.QueueBytes):
		o.dropped = true
		c.over()
		o.mu.Unlock()
		return false
	case !push && o.bytes+n > cfg.QueueMax:
		o.mu.Unlock()
		c.dropSlow("send queue over its hard limit")
		return false
	}
	o.frames = append(o.frames, frame)
	o.pending += n
	o.bytes += n
	if push {
		o.pendPush++
		o.pushes++
	}
	if o.bytes > cfg.QueueBytes {
		c.over()
	}
	prev := o.state
	switch {
	case prev == flowing:
	case push && c.g.holding.Load():
		o.state = held
	default:
		o.state = flowing
	}
	next := o.state
	o.mu.Unlock()
	c.g.queued.Add(int64(n))
	switch {
	case next == flowing && prev != flowing:
		c.sock.Async(c.flush)
	case next == held && prev == idle:
		c.g.held.mu.Lock()
		c.g.held.conns = append(c.g.held.conns, c)
		c.g.held.mu.Unlock()
	}
	return true
}

// over notes that the queue is over QueueBytes (or lost a push to it) from now,
// unless it already was; o.mu is held. The heartbeat loop closes a connection
// over it for longer than QueueTimeout.
func (c *conn) over() {
	if c.overSince.Load() == 0 {
		c.overSince.Store(time.Now().UnixNano())
	}
}

// waitRoom holds a request of c back while c's queue is over QueueBytes: the
// edge starts nothing more for a client that does not read its replies. With
// Parallel requests waiting, gws reads no more of c's frames, so TCP pushes
// back on the client. It reports false once the connection is closing.
func (c *conn) waitRoom() bool {
	o := &c.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bytes > c.g.cfg.QueueBytes && !o.shut {
		c.g.m.paused.Inc()
		for o.bytes > c.g.cfg.QueueBytes && !o.shut {
			o.waiting++
			o.room.Wait()
			o.waiting--
		}
	}
	return !o.shut
}

// shutOut empties the outbox for good (the connection is closing) and wakes
// the requests waiting for room. The running flush, if any, accounts for what
// it took when its write returns.
func (c *conn) shutOut() {
	o := &c.out
	o.mu.Lock()
	if o.shut {
		o.mu.Unlock()
		return
	}
	o.shut = true
	dropped := o.pending
	o.bytes -= o.pending
	o.pushes -= o.pendPush
	o.pending, o.pendPush = 0, 0
	clear(o.frames)
	o.frames = o.frames[:0]
	o.room.Broadcast()
	o.mu.Unlock()
	c.g.queued.Add(-int64(dropped))
}

// flush writes every queued frame, corked into one write; it runs on the
// socket's write queue, so it is ordered with pings, kicks and closes.
func (c *conn) flush() {
	o := &c.out
	o.mu.Lock()
	frames, taken, takenPush := o.frames, o.pending, o.pendPush
	o.frames, o.spare = o.spare[:0], nil
	o.pending, o.pendPush = 0, 0
	o.dropped = false
	o.state = idle
	o.mu.Unlock()
	if len(frames) == 0 {
		return
	}
	// Moving the deadline costs a timer update; a deadline up to a second short of
	// WriteTimeout is as good. A connection dropped as a slow consumer keeps the
	// short one dropSlow set.
	if now := time.Now(); o.deadline.Sub(now) < c.g.cfg.WriteTimeout-time.Second && !c.slow.Load() {
		o.deadline = now.Add(c.g.cfg.WriteTimeout)
		_ = c.sock.SetWriteDeadline(o.deadline)
	}
	c.hc.cork()
	n := 0
	for _, f := range frames {
		if c.sock.WriteMessage(gws.OpcodeText, f) != nil {
			break // gws closes the connection
		}
		n++
	}
	if err := c.hc.uncork(); err != nil {
		_ = c.hc.Conn.Close() // the read loop fails and cleans up
		n = 0
	}
	if n > 0 {
		c.g.m.framesOut.Add(float64(n))
		c.g.m.writes.Inc()
	}
	clear(frames)
	o.mu.Lock()
	o.bytes -= taken
	o.pushes -= takenPush
	if o.bytes <= c.g.cfg.QueueBytes {
		// Caught up: nothing lost while this flush wrote, or nothing left at all
		// (a push dropped while this flush held the budget needs no flush of its
		// own to be forgiven).
		if !o.dropped || o.bytes == 0 {
			c.overSince.Store(0)
		}
		if o.waiting > 0 {
			o.room.Broadcast()
		}
	}
	if o.spare == nil && cap(frames) <= 64 {
		o.spare = frames
	}
	o.mu.Unlock()
	c.g.queued.Add(-int64(taken))
	if n < len(frames) { // the connection failed: wake whoever waits for room
		c.shutOut()
	}
}

// reply queues a reply frame. Replies are never dropped: a connection has at most
// Parallel requests in flight, none starts while its queue is over QueueBytes
// (waitRoom), and past QueueMax the connection is closed.
func (c *conn) reply(frame []byte) { c.enqueue(frame, false) }

// push queues a push frame unless SendQueue pushes or QueueBytes bytes already
// wait for this client, in which case it is dropped and counted; the client
// recovers it by seq.
func (c *conn) push(frame []byte) {
	if !c.enqueue(frame, true) {
		c.g.m.dropped.Inc()
		return
	}
	c.g.pushed.Add(1)
	c.g.m.pushes.Inc()
}

// dropSlow closes, with CloseSlowConsumer, a connection that does not read
// what is queued for it: its queue is discarded at once, a write stuck on it
// fails within closeTimeout, and the close frame follows whatever was being
// written (a client that reads nothing never sees it).
func (c *conn) dropSlow(reason string) {
	if c.slow.Swap(true) {
		return
	}
	c.closing.Store(true)
	c.g.m.slowCloses.Inc()
	c.shutOut()
	_ = c.sock.SetWriteDeadline(time.Now().Add(closeTimeout))
	c.sock.Async(func() { c.closeNow(wire.CloseSlowConsumer, reason) })
}
