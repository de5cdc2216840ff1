package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"natter/shared/auth"
	"natter/shared/endpoint"
	"natter/shared/wire"
)

const closeTimeout = time.Second // to write a close frame

// conn is one client WebSocket.
type conn struct {
	g        *Gateway
	id       string
	claims   auth.Claims
	platform string
	addr     string // the client's address: per-address limits, audit
	sock     *gws.Conn
	hc       *heldConn // sock's net.Conn
	limiter  *rate.Limiter
	slot     int          // which heartbeat tick pings it (connections spread over the interval)
	lastSeen atomic.Int64 // unix nanoseconds of the last frame, ping or pong received
	timedOut atomic.Bool  // the heartbeat is closing it (3002)
	closing  atomic.Bool  // the edge is closing it for what the client sent: no more frames are handled
	slow     atomic.Bool  // closed as a slow consumer (3003)
	// overSince is when (unix nanoseconds) its queue went over QueueBytes, or
	// first lost a push to it, without recovering since; 0 if it is not.
	overSince atomic.Int64
	out       outbox

	pongMu     sync.Mutex
	pong       []byte // payload of the latest ping, while pongQueued
	pongQueued bool   // a pong is on the write queue
}

func (c *conn) caller(reqID string) endpoint.Caller {
	return endpoint.Caller{
		UserID:    c.claims.UserID,
		DeviceID:  c.claims.DeviceID,
		SessionID: c.claims.SessionID,
		Role:      c.claims.Role,
		ConnID:    c.id,
		RequestID: reqID,
		ClientIP:  c.addr,
	}
}

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

// writePong answers the latest ping; it runs on the socket's write queue.
func (c *conn) writePong() {
	c.pongMu.Lock()
	p := c.pong
	c.pong, c.pongQueued = nil, false
	c.pongMu.Unlock()
	_ = c.sock.WritePong(p)
}

// kick writes frame (if any) after everything already queued, then closes with 3501.
func (c *conn) kick(frame []byte) {
	if len(frame) > 0 {
		c.enqueue(frame, false)
	}
	c.closeAsync(wire.CloseKicked, "kicked")
}

// closeAsync closes the connection with code once the frames queued before it are
// written (flush first: a flush already on the write queue then finds nothing).
func (c *conn) closeAsync(code uint16, reason string) {
	c.sock.Async(func() {
		c.flush()
		c.closeNow(code, reason)
	})
}

// refuseConn closes the connection with code, once, after the frames already
// queued, and stops handling its frames meanwhile: for a client that broke the
// protocol.
func (c *conn) refuseConn(code uint16, reason string) {
	if !c.closing.Swap(true) {
		c.closeAsync(code, reason)
	}
}

func (c *conn) closeNow(code uint16, reason string) {
	_ = c.sock.SetWriteDeadline(time.Now().Add(closeTimeout))
	_ = c.sock.WriteClose(code, []byte(reason))
}
