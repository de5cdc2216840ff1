package gateway

import (
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// outbox holds the frames waiting for a connection's writer. The first frame
// queues a flush on the socket's write queue (one writer goroutine per socket,
// started on demand by gws); frames that arrive before it runs leave with it in
// one write(2). Under load that is most of them: a group message reaching a
// connection whose writer is still busy costs no syscall of its own.
type outbox struct {
	mu       sync.Mutex
	frames   [][]byte
	spare    [][]byte // the previous flush's slice, reused
	pushes   int      // push frames among frames (bounded by SendQueue)
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

// enqueue adds frame to the outbox, so callers never block on a slow client; a
// client that does not read within WriteTimeout fails the write and is closed. A
// push is refused (false) when SendQueue pushes already wait.
func (c *conn) enqueue(frame []byte, push bool) bool {
	o := &c.out
	o.mu.Lock()
	if push && o.pushes >= c.g.cfg.SendQueue {
		o.mu.Unlock()
		return false
	}
	o.frames = append(o.frames, frame)
	if push {
		o.pushes++
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

// flush writes every queued frame, corked into one write; it runs on the
// socket's write queue, so it is ordered with pings, kicks and closes.
func (c *conn) flush() {
	o := &c.out
	o.mu.Lock()
	frames := o.frames
	o.frames, o.spare = o.spare[:0], nil
	o.pushes = 0
	o.state = idle
	o.mu.Unlock()
	if len(frames) == 0 {
		return
	}
	// Moving the deadline costs a timer update; a deadline up to a second short of
	// WriteTimeout is as good.
	if now := time.Now(); o.deadline.Sub(now) < c.g.cfg.WriteTimeout-time.Second {
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
	if o.spare == nil && cap(frames) <= 64 {
		o.spare = frames
	}
	o.mu.Unlock()
}

// reply queues a reply frame. Replies are never dropped: a connection has at most
// Parallel requests in flight, and the client waits for each.
func (c *conn) reply(frame []byte) { c.enqueue(frame, false) }

// push queues a push frame unless SendQueue pushes already wait for this client,
// in which case it is dropped and counted.
func (c *conn) push(frame []byte) {
	if !c.enqueue(frame, true) {
		c.g.m.dropped.Inc()
		return
	}
	c.g.pushed.Add(1)
	c.g.m.pushes.Inc()
}
