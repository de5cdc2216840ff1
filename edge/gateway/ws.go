package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"natter/shared/auth"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/wire"
)

// OpPing is the edge's built-in op: {"id":"x","op":"ping"} is answered
// {"id":"x","ok":true} by the edge itself, without a NATS round trip. It is not in
// op.All because no function serves it.
const OpPing = "ping"

// Ops the edge calls for every WebSocket.
const (
	opConnect    = "session.connect"
	opDisconnect = "session.disconnect"
)

const (
	sessionKey     = "natter.conn" // where a gws.Conn's session storage keeps its *conn
	closeTimeout   = time.Second   // to write a close frame
	maxPlatformLen = 64
)

// conn is one client WebSocket.
type conn struct {
	g        *Gateway
	id       string
	claims   auth.Claims
	platform string
	sock     *gws.Conn
	hc       *heldConn // sock's net.Conn
	limiter  *rate.Limiter
	slot     int          // which heartbeat tick pings it (connections spread over the interval)
	lastSeen atomic.Int64 // unix nanoseconds of the last frame, ping or pong received
	out      outbox
}

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

func (c *conn) caller(reqID string) endpoint.Caller {
	return endpoint.Caller{
		UserID:    c.claims.UserID,
		DeviceID:  c.claims.DeviceID,
		SessionID: c.claims.SessionID,
		Role:      c.claims.Role,
		ConnID:    c.id,
		RequestID: reqID,
	}
}

func (c *conn) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

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

func (c *conn) closeNow(code uint16, reason string) {
	_ = c.sock.SetWriteDeadline(time.Now().Add(closeTimeout))
	_ = c.sock.WriteClose(code, []byte(reason))
}

// serveWS authenticates, asks session.connect, and only then upgrades. Any
// refusal is an HTTP error with a JSON body, before the upgrade.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if g.notReady.Load() {
		writeJSONError(w, imerr.New(imerr.Unavailable, "edge shutting down"))
		return
	}
	token := r.URL.Query().Get("token")
	if token == "" {
		token = bearer(r)
	}
	claims, aerr := g.authenticate(token)
	if aerr != nil {
		writeJSONError(w, aerr)
		return
	}
	if !isUpgrade(r) {
		writeJSONError(w, imerr.New(imerr.BadRequest, "websocket upgrade required"))
		return
	}
	platform := r.URL.Query().Get("platform")
	if len(platform) > maxPlatformLen {
		writeJSONError(w, imerr.New(imerr.BadRequest, "platform too long"))
		return
	}
	n := g.connSeq.Add(1)
	c := &conn{g: g, id: g.prefix + "-" + strconv.FormatUint(n, 36), slot: int(n % heartbeatSlots), claims: claims, platform: platform}
	if g.cfg.RateLimit > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(g.cfg.RateLimit), g.cfg.RateBurst)
	}
	reqID := requestID(r, g)
	l := g.log.With().Str("req_id", reqID).Str("conn", c.id).Int64("user", claims.UserID).Logger()

	// Subscribe first: the session.connect round trip below then also confirms the
	// subscription, so no push sent after the client sees the upgrade is missed.
	if err := g.hub.acquire(claims.UserID); err != nil {
		if !errors.Is(err, errClosing) {
			l.Error().Err(err).Msg("subscribe deliveries")
		}
		writeJSONError(w, imerr.Wrap(imerr.Unavailable, err, "edge unavailable"))
		return
	}
	body, _ := json.Marshal(wire.ConnectReq{ConnID: c.id, EdgeID: g.cfg.ID, Platform: platform})
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	_, err := endpoint.Request(ctx, g.nc, opConnect, c.caller(reqID), body)
	cancel()
	g.m.observe("ws", opConnect, err, time.Since(start))
	if err != nil {
		g.hub.release(claims.UserID)
		e := clientError(err)
		logFailure(l.Warn(), e)
		l.Debug().Str("code", string(e.Code)).Msg("connection refused")
		writeJSONError(w, e)
		return
	}

	sock, hc, err := g.upgrade(w, r, c)
	if err != nil {
		g.hub.release(claims.UserID)
		l.Debug().Err(err).Msg("upgrade failed")
		g.disconnect(c)
		return
	}
	c.sock, c.hc = sock, hc
	c.touch()
	sock.Session().Store(sessionKey, c)
	if err := g.hub.attach(c); err != nil { // shutting down meanwhile
		c.closeNow(wire.CloseShutdown, "edge shutting down")
		g.disconnect(c)
		return
	}
	// Only now does the client get the 101, unless a push queued meanwhile sent it first.
	if err := hc.release(); err != nil {
		l.Debug().Err(err).Msg("write upgrade response") // the read loop fails and cleans up
	}
	l.Debug().Str("platform", platform).Msg("connected")
	go sock.ReadLoop()
}

// upgrade hijacks the connection and hands it to gws, reading through a
// frameGuard and writing through a heldConn whose 101 the caller releases.
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request, c *conn) (*gws.Conn, *heldConn, error) {
	netConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	_ = netConn.SetDeadline(time.Time{}) // the http.Server's timeouts end here
	var src io.Reader = netConn
	if n := brw.Reader.Buffered(); n > 0 { // bytes the client sent right behind the handshake
		early, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(early)), netConn)
	}
	guard := &frameGuard{src: src, limit: wire.MaxFrame, onOver: func() {
		c.closeNow(wire.CloseTooLarge, "frame over 1 MB")
	}}
	hc := &heldConn{Conn: netConn}
	sock, err := g.upgrader.UpgradeFromConn(hc, bufio.NewReaderSize(guard, 4096), r)
	return sock, hc, err
}

// disconnect tells the account domain that c is gone, in the background and with
// a short timeout; Shutdown waits for these calls before NATS is drained.
func (g *Gateway) disconnect(c *conn) {
	g.calls.add()
	go func() {
		defer g.calls.done()
		body, _ := json.Marshal(wire.DisconnectReq{ConnID: c.id})
		ctx, cancel := context.WithTimeout(context.Background(), min(g.cfg.RequestTimeout, 3*time.Second))
		defer cancel()
		reqID := g.newID(&g.reqSeq)
		start := time.Now()
		_, err := endpoint.Request(ctx, g.nc, opDisconnect, c.caller(reqID), body)
		g.m.observe("ws", opDisconnect, err, time.Since(start))
		if err != nil {
			g.log.Warn().Err(err).Str("req_id", reqID).Str("conn", c.id).Int64("user", c.claims.UserID).Msg("session.disconnect")
		}
	}()
}

func connOf(sock *gws.Conn) *conn {
	v, _ := sock.Session().Load(sessionKey)
	c, _ := v.(*conn)
	return c
}

// events receives gws's callbacks for every WebSocket of g (kept off Gateway's
// exported API).
type events struct{ g *Gateway }

// OnOpen implements gws.Event; registration happened before the read loop.
func (events) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event: forget the connection and report it gone.
func (e events) OnClose(sock *gws.Conn, err error) {
	g := e.g
	c := connOf(sock)
	if c == nil {
		return
	}
	g.hub.remove(c)
	ev := g.log.Debug().Str("conn", c.id).Int64("user", c.claims.UserID)
	var ce *gws.CloseError
	if errors.As(err, &ce) {
		ev = ev.Uint16("close_code", ce.Code)
	} else if err != nil {
		ev = ev.Str("reason", err.Error())
	}
	ev.Msg("disconnected")
	g.disconnect(c)
}

// OnPing implements gws.Event: a client ping counts as a heartbeat and gets a pong.
func (events) OnPing(sock *gws.Conn, payload []byte) {
	if c := connOf(sock); c != nil {
		c.touch()
		sock.Async(func() { _ = sock.WritePong(payload) })
	}
}

// OnPong implements gws.Event: the answer to our ping refreshes the heartbeat.
func (events) OnPong(sock *gws.Conn, _ []byte) {
	if c := connOf(sock); c != nil {
		c.touch()
	}
}

// OnMessage implements gws.Event. With ParallelEnabled it runs on its own
// goroutine (at most Parallel per connection), so a slow request does not stop
// the connection's reads and replies may leave in any order; ids correlate them.
func (e events) OnMessage(sock *gws.Conn, msg *gws.Message) {
	g := e.g
	defer msg.Close()
	c := connOf(sock)
	if c == nil {
		return
	}
	c.touch()
	g.m.framesIn.Inc()
	g.handleFrame(c, msg.Bytes())
}

// handleFrame answers one client frame: a request for an op of the table.
func (g *Gateway) handleFrame(c *conn, frame []byte) {
	start := time.Now()
	var req wire.Request
	if err := json.Unmarshal(frame, &req); err != nil {
		g.refuse(c, "", opInvalid, imerr.New(imerr.BadRequest, "malformed frame: want {\"id\":...,\"op\":...,\"data\":...}"), start)
		return
	}
	o, known := op.Lookup(req.Op)
	label := req.Op
	if !known || o.Access == op.Internal {
		known, label = false, opInvalid
	}
	if req.Op == OpPing {
		known, label = true, OpPing
	}
	if c.limiter != nil && !c.limiter.Allow() {
		g.refuse(c, req.ID, label, imerr.New(imerr.RateLimited, "too many frames: slow down"), start)
		return
	}
	switch {
	case req.ID == "":
		g.refuse(c, "", label, imerr.New(imerr.BadRequest, "missing id"), start)
		return
	case !known:
		g.refuse(c, req.ID, label, imerr.New(imerr.BadRequest, "unknown op"), start)
		return
	case req.Op == OpPing:
		c.reply(wire.AppendReplyOK(nil, req.ID, nil))
		g.m.observe("ws", OpPing, nil, time.Since(start))
		return
	}

	reqID := g.newID(&g.reqSeq)
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
	out, err := endpoint.Request(ctx, g.nc, o.Name, c.caller(reqID), req.Data)
	cancel()
	dur := time.Since(start)
	g.m.observe("ws", o.Name, err, dur)
	if err != nil {
		e := clientError(err)
		logFailure(g.log.Warn().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id), e)
		c.reply(wire.AppendReplyError(nil, req.ID, e))
		g.log.Debug().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id).Str("code", string(e.Code)).Dur("dur", dur).Msg("request")
		return
	}
	c.reply(wire.AppendReplyOK(make([]byte, 0, len(out)+len(req.ID)+32), req.ID, out))
	g.log.Debug().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id).Str("code", "ok").Dur("dur", dur).Msg("request")
}

// refuse answers a frame the edge rejects itself; the connection stays open.
func (g *Gateway) refuse(c *conn, id, label string, e *imerr.Error, start time.Time) {
	c.reply(wire.AppendReplyError(nil, id, e))
	g.m.observe("ws", label, e, time.Since(start))
}

// heartbeatSlots spreads pings over the interval: each tick pings one slot's
// connections, so 20,000 connections do not all get (and answer) a ping at once.
const heartbeatSlots = 30

// heartbeat pings every connection once per HeartbeatInterval and closes (3002)
// those silent for longer than HeartbeatTimeout. One loop serves all connections.
func (g *Gateway) heartbeat() {
	t := time.NewTicker(g.cfg.HeartbeatInterval / heartbeatSlots)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			slot := tick % heartbeatSlots
			deadline := now.Add(-g.cfg.HeartbeatTimeout).UnixNano()
			g.hub.each(func(c *conn) {
				if c.slot != slot {
					return
				}
				if c.lastSeen.Load() < deadline {
					c.closeAsync(wire.CloseHeartbeat, "heartbeat timeout")
					return
				}
				c.sock.Async(func() {
					_ = c.sock.SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
					_ = c.sock.WritePing(nil)
				})
			})
		}
	}
}

// touch tells the account domain every TouchInterval which connections this edge
// still holds, in batches of wire.MaxTouch, so that the connections of an edge
// that died stop counting as online and against the device limit.
func (g *Gateway) touch() {
	t := time.NewTicker(g.cfg.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			var conns []wire.TouchConn
			g.hub.each(func(c *conn) {
				conns = append(conns, wire.TouchConn{UserID: c.claims.UserID, ConnID: c.id})
			})
			for start := 0; start < len(conns); start += wire.MaxTouch {
				body, err := json.Marshal(wire.TouchReq{EdgeID: g.cfg.ID, Conns: conns[start:min(start+wire.MaxTouch, len(conns))]})
				if err != nil {
					continue
				}
				ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
				if _, err := endpoint.Request(ctx, g.nc, "session.touch", endpoint.Caller{RequestID: g.newID(&g.reqSeq)}, body); err != nil {
					g.log.Warn().Err(err).Int("conns", len(conns)).Msg("session.touch failed")
				}
				cancel()
			}
		}
	}
}

// authenticate checks an access token: signature, expiry, and that its session
// was not revoked.
func (g *Gateway) authenticate(token string) (auth.Claims, *imerr.Error) {
	if token == "" {
		return auth.Claims{}, imerr.New(imerr.Unauthorized, "missing access token")
	}
	claims, err := g.signer.Verify(token)
	if err != nil {
		return auth.Claims{}, imerr.Wrap(imerr.Unauthorized, err, "invalid or expired access token")
	}
	if g.rev.revoked(claims.SessionID, time.Now()) {
		return auth.Claims{}, imerr.New(imerr.Unauthorized, "session revoked: log in again")
	}
	return claims, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header.Get("Connection"), "upgrade")
}

func headerHasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}
