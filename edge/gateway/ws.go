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
	"time"
	"unicode/utf8"

	"github.com/lxzan/gws"
	"golang.org/x/time/rate"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// Ops the edge calls for every WebSocket.
const (
	opConnect    = "session.connect"
	opDisconnect = "session.disconnect"
)

const (
	sessionKey     = "natter.conn" // where a gws.Conn's session storage keeps its *conn
	maxPlatformLen = 64
)

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
	c := &conn{g: g, id: g.prefix + "-" + strconv.FormatUint(n, 36), slot: int(n % heartbeatSlots), claims: claims, platform: platform, addr: clientAddr(r)}
	c.out.room.L = &c.out.mu
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
	out, err := endpoint.Request(ctx, g.nc, opConnect, c.caller(reqID), body)
	cancel()
	var connected wire.ConnectResp
	if err == nil {
		err = json.Unmarshal(out, &connected)
	}
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
	subscribed, err := g.hub.attach(c, connected.Groups)
	if err != nil { // shutting down meanwhile
		c.closeNow(wire.CloseShutdown, "edge shutting down")
		g.disconnect(c)
		return
	}
	if subscribed {
		// As for the user's subject: the server has the new group subscriptions
		// before the client hears it is connected.
		if err := g.nc.FlushTimeout(g.cfg.RequestTimeout); err != nil {
			l.Debug().Err(err).Msg("confirm group subscriptions")
		}
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
	c.shutOut() // frees the queue and the requests waiting for room
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

// OnPing implements gws.Event: a client ping counts as a heartbeat and gets a
// pong. At most one pong waits on the write queue, with the latest ping's
// payload (RFC 6455 5.5.3 allows answering only the most recent ping): a client
// that pings without reading cannot grow the queue.
func (events) OnPing(sock *gws.Conn, payload []byte) {
	c := connOf(sock)
	if c == nil {
		return
	}
	c.touch()
	c.pongMu.Lock()
	c.pong = payload // gws allocates it for this ping
	queued := c.pongQueued
	c.pongQueued = true
	c.pongMu.Unlock()
	if !queued {
		sock.Async(c.writePong)
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
// gws reads the next frame only once fewer than Parallel run (a semaphore, not a
// queue), so waitRoom holding them back stops the connection's reads.
func (e events) OnMessage(sock *gws.Conn, msg *gws.Message) {
	g := e.g
	defer msg.Close()
	c := connOf(sock)
	if c == nil || c.closing.Load() {
		return
	}
	c.touch()
	g.m.framesIn.Inc()
	frame := msg.Bytes()
	// RFC 6455 requires text to be UTF-8 and the connection failed with 1007
	// otherwise. Checked here rather than with gws's CheckUtf8Enabled, which would
	// check every frame the edge writes too.
	if msg.Opcode == gws.OpcodeText && !utf8.Valid(frame) {
		c.refuseConn(wire.CloseInvalidData, "text frame not UTF-8")
		return
	}
	if !c.waitRoom() {
		return // closing
	}
	g.handleFrame(c, frame)
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
