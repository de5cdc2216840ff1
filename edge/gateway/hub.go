package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/subject"
	"natter/shared/wire"
)

var errClosing = errors.New("edge shutting down")

// hub holds the open WebSockets by user and one delivery subscription per user
// that has at least one of them: subscribed with the first, unsubscribed with the
// last. All subscriptions feed one channel read by one dispatcher goroutine, so
// the number of users costs no goroutines and one user's pushes stay in order.
type hub struct {
	nc  *nats.Conn
	m   *metrics
	log zerolog.Logger
	ch  chan *nats.Msg

	mu      sync.RWMutex
	users   map[int64]*userConns
	n       int           // open connections
	closed  bool          // shutting down: no new connections
	drained chan struct{} // closed once closed is set and n is 0
}

type userConns struct {
	sub     *nats.Subscription
	conns   []*conn // a handful: the device limit
	pending int     // connections being set up (acquired, not yet attached)
}

func newHub(nc *nats.Conn, m *metrics, buffer int, log zerolog.Logger) *hub {
	return &hub{nc: nc, m: m, log: log, ch: make(chan *nats.Msg, buffer),
		users: map[int64]*userConns{}, drained: make(chan struct{})}
}

// acquire makes sure uid's delivery subject is subscribed, for a connection about
// to be set up; attach or release must follow. The edge calls it before
// session.connect, whose round trip on the same NATS connection then guarantees
// the server has the subscription before the client sees the upgrade. The lock
// spans subscribe and unsubscribe, so a connect and a close of the same user
// cannot interleave.
func (h *hub) acquire(uid int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errClosing
	}
	u := h.users[uid]
	if u == nil {
		sub, err := h.nc.ChanSubscribe(subject.Deliver(uid), h.ch)
		if err != nil {
			return fmt.Errorf("subscribe deliveries of user %d: %w", uid, err)
		}
		u = &userConns{sub: sub}
		h.users[uid] = u
		h.m.users.Inc()
	}
	u.pending++
	return nil
}

// attach registers an upgraded connection whose user was acquired; on error
// (shutting down) the acquisition is released.
func (h *hub) attach(c *conn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[c.claims.UserID]
	u.pending--
	if h.closed {
		h.forgetIfIdle(c.claims.UserID, u)
		return errClosing
	}
	u.conns = append(u.conns, c)
	h.n++
	h.m.conns.Inc()
	return nil
}

// release undoes acquire for a connection that was never attached.
func (h *hub) release(uid int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[uid]
	u.pending--
	h.forgetIfIdle(uid, u)
}

// remove forgets an attached connection.
func (h *hub) remove(c *conn) {
	uid := c.claims.UserID
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[uid]
	if u == nil {
		return
	}
	i := slices.Index(u.conns, c)
	if i < 0 {
		return
	}
	u.conns = slices.Delete(u.conns, i, i+1)
	h.n--
	h.m.conns.Dec()
	h.forgetIfIdle(uid, u)
	if h.closed && h.n == 0 {
		close(h.drained)
	}
}

// forgetIfIdle unsubscribes uid once it has no connection, open or being set up.
// h.mu is held.
func (h *hub) forgetIfIdle(uid int64, u *userConns) {
	if len(u.conns) > 0 || u.pending > 0 {
		return
	}
	if err := u.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		h.log.Warn().Err(err).Int64("user", uid).Msg("unsubscribe deliveries")
	}
	delete(h.users, uid)
	h.m.users.Dec()
}

// each calls f for every connection, under the read lock: f must not block.
func (h *hub) each(f func(*conn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, u := range h.users {
		for _, c := range u.conns {
			f(c)
		}
	}
}

// close refuses new connections and returns the open ones and a channel closed
// when they are all gone.
func (h *hub) close() ([]*conn, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		if h.n == 0 {
			close(h.drained)
		}
	}
	var all []*conn
	for _, u := range h.users {
		all = append(all, u.conns...)
	}
	return all, h.drained
}

// dispatch writes delivery messages to their users' connections until stop closes.
func (h *hub) dispatch(stop <-chan struct{}) {
	for {
		select {
		case msg := <-h.ch:
			h.deliver(msg)
		case <-stop:
			return
		}
	}
}

// deliver handles one message on im.deliver.<uid>. Its Data is a ready push frame,
// written verbatim to each of the user's connections except the one named by
// Natter-Skip-Conn; with Natter-Control: kick it instead closes the named
// connection (or session) with 3501, after writing Data to it if there is any.
// Nothing here blocks: writes go to each connection's queue. This is the hot path
// of every push.
func (h *hub) deliver(msg *nats.Msg) {
	uid, err := strconv.ParseInt(strings.TrimPrefix(msg.Subject, subject.DeliverPrefix), 10, 64)
	if err != nil {
		return
	}
	control := msg.Header.Get(wire.HeaderControl)
	h.mu.RLock()
	defer h.mu.RUnlock()
	u := h.users[uid]
	if u == nil {
		return // the user's last connection closed while this was queued
	}
	switch control {
	case "":
		if len(msg.Data) == 0 {
			return
		}
		skip := msg.Header.Get(wire.HeaderSkipConn)
		for _, c := range u.conns {
			if c.id != skip {
				c.push(msg.Data)
			}
		}
	case wire.ControlKick:
		conn, session := msg.Header.Get(wire.HeaderConn), msg.Header.Get(wire.HeaderSession)
		for _, c := range u.conns {
			if (conn != "" && c.id == conn) || (conn == "" && session != "" && c.claims.SessionID == session) {
				c.kick(msg.Data)
			}
		}
	default:
		h.log.Warn().Str("control", control).Int64("user", uid).Msg("unknown delivery control")
	}
}
