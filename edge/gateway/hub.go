package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/endpoint"
	"natter/shared/subject"
	"natter/shared/wire"
)

var errClosing = errors.New("edge shutting down")

// hub holds the open WebSockets by user, one delivery subscription per user that
// has at least one of them (subscribed with the first, unsubscribed with the
// last), and one per group with at least one member connected here: a group
// message arrives once and goes to the local members' connections. All
// subscriptions feed one channel read by one dispatcher goroutine, so the number
// of users and groups costs no goroutines, one user's pushes stay in order, and a
// group's leave control takes effect in order with the group's messages.
type hub struct {
	nc  *nats.Conn
	m   *metrics
	log zerolog.Logger
	ch  chan *nats.Msg

	mu      sync.RWMutex
	users   map[int64]*userConns
	groups  map[int64]*groupSub
	n       int           // open connections
	closed  bool          // shutting down: no new connections
	drained chan struct{} // closed once closed is set and n is 0
}

type userConns struct {
	sub     *nats.Subscription
	conns   []*conn // a handful: the device limit
	pending int     // connections being set up (acquired, not yet attached)
	groups  map[int64]struct{}
	// left holds groups the user left while a connection was being set up: its
	// session.connect answer may predate the leave, and must not bring them back.
	// Emptied once no connection is being set up.
	left map[int64]struct{}
}

// groupSub is a group with members connected here.
type groupSub struct {
	sub     *nats.Subscription
	members map[int64]struct{} // users with a connection here
}

func newHub(nc *nats.Conn, m *metrics, buffer int, log zerolog.Logger) *hub {
	return &hub{nc: nc, m: m, log: log, ch: make(chan *nats.Msg, buffer),
		users: map[int64]*userConns{}, groups: map[int64]*groupSub{}, drained: make(chan struct{})}
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
		u = &userConns{sub: sub, groups: map[int64]struct{}{}}
		h.users[uid] = u
		h.m.users.Inc()
	}
	u.pending++
	return nil
}

// attach registers an upgraded connection whose user was acquired, with the
// user's groups (session.connect's answer); on error (shutting down) the
// acquisition is released. It reports whether it subscribed a group here: the
// caller then makes sure the server has the subscription before the client is
// told it is connected.
func (h *hub) attach(c *conn, groups []int64) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	uid := c.claims.UserID
	u := h.users[uid]
	u.pending--
	if h.closed {
		h.forgetIfIdle(uid, u)
		return false, errClosing
	}
	u.conns = append(u.conns, c)
	h.n++
	h.m.conns.Inc()
	subscribed := false
	for _, g := range groups {
		if _, gone := u.left[g]; !gone && h.join(uid, u, g) {
			subscribed = true
		}
	}
	if u.pending == 0 {
		u.left = nil
	}
	return subscribed, nil
}

// join makes uid a local member of group g, subscribing its subject if it is the
// first; it reports whether it subscribed. h.mu is held.
func (h *hub) join(uid int64, u *userConns, g int64) bool {
	u.groups[g] = struct{}{}
	gs := h.groups[g]
	if gs != nil {
		gs.members[uid] = struct{}{}
		return false
	}
	sub, err := h.nc.ChanSubscribe(subject.DeliverGroup(g), h.ch)
	if err != nil {
		// The member's devices miss the group's live pushes; sync fills the gaps.
		h.log.Warn().Err(err).Int64("group", g).Msg("subscribe group deliveries")
		delete(u.groups, g)
		return false
	}
	h.groups[g] = &groupSub{sub: sub, members: map[int64]struct{}{uid: {}}}
	h.m.groups.Inc()
	return true
}

// leave removes uid from group g here, unsubscribing the group when it has no
// member left. h.mu is held.
func (h *hub) leave(uid int64, u *userConns, g int64) {
	if u != nil {
		delete(u.groups, g)
	}
	gs := h.groups[g]
	if gs == nil {
		return
	}
	delete(gs.members, uid)
	if len(gs.members) > 0 {
		return
	}
	if err := gs.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		h.log.Warn().Err(err).Int64("group", g).Msg("unsubscribe group deliveries")
	}
	delete(h.groups, g)
	h.m.groups.Dec()
}

// setGroups replaces the groups of the users in want with the given ones (an
// answer to session.groups after the edge lost NATS). Users no longer here are
// skipped. It reports whether it subscribed a group.
func (h *hub) setGroups(want map[int64][]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for uid, groups := range want {
		u := h.users[uid]
		if u == nil {
			continue
		}
		keep := make(map[int64]struct{}, len(groups))
		for _, g := range groups {
			keep[g] = struct{}{}
			h.join(uid, u, g)
		}
		for g := range u.groups {
			if _, ok := keep[g]; !ok {
				h.leave(uid, u, g)
			}
		}
	}
}

// userIDs lists the users with a connection here.
func (h *hub) userIDs() []int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]int64, 0, len(h.users))
	for uid := range h.users {
		out = append(out, uid)
	}
	return out
}

// release undoes acquire for a connection that was never attached.
func (h *hub) release(uid int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[uid]
	u.pending--
	if u.pending == 0 {
		u.left = nil
	}
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
	for g := range u.groups {
		h.leave(uid, nil, g)
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

// deliver handles one message on a delivery subject: a user's
// (im.deliver.<uid>) or a group's (im.deliver.g.<gid>). Its Data is a ready push
// frame, written verbatim to each of the recipients' connections except the one
// named by Natter-Skip-Conn. Controls: kick closes the named connection (or
// session) with 3501, after writing Data to it if there is any; group-join (on a
// user's subject) adds a group to the user's; group-leave takes the listed users
// (on a group's subject) or the user (on theirs) out of the group. Nothing here blocks: writes go to each
// connection's queue. This is the hot path of every push.
func (h *hub) deliver(msg *nats.Msg) {
	if rest, ok := strings.CutPrefix(msg.Subject, subject.DeliverGroupPrefix); ok {
		g, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return
		}
		if msg.Header.Get(wire.HeaderControl) == wire.ControlGroupLeave {
			h.groupLeave(g, msg.Header.Get(wire.HeaderUsers))
			return
		}
		h.groupPush(g, msg)
		return
	}
	uid, err := strconv.ParseInt(strings.TrimPrefix(msg.Subject, subject.DeliverPrefix), 10, 64)
	if err != nil {
		return
	}
	control := msg.Header.Get(wire.HeaderControl)
	if control == wire.ControlGroupJoin || control == wire.ControlGroupLeave {
		h.userGroupControl(uid, control, msg.Header.Get(wire.HeaderGroup))
		return
	}
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

// userGroupControl applies a group join or leave sent on uid's subject.
func (h *hub) userGroupControl(uid int64, control, group string) {
	g, err := strconv.ParseInt(group, 10, 64)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.users[uid]
	if u == nil {
		return
	}
	if control == wire.ControlGroupJoin {
		delete(u.left, g)
		h.join(uid, u, g)
		return
	}
	h.leave(uid, u, g)
	if u.pending > 0 {
		if u.left == nil {
			u.left = map[int64]struct{}{}
		}
		u.left[g] = struct{}{}
	}
}

// groupPush writes a group's push to the connections of its members here,
// except the connection and users its headers name.
func (h *hub) groupPush(g int64, msg *nats.Msg) {
	if len(msg.Data) == 0 {
		return
	}
	skip := msg.Header.Get(wire.HeaderSkipConn)
	var skipUsers map[int64]struct{} // rare: a join's message, up to 5,000 ids
	if s := msg.Header.Get(wire.HeaderSkipUsers); s != "" {
		ids := parseIDs(s)
		skipUsers = make(map[int64]struct{}, len(ids))
		for _, id := range ids {
			skipUsers[id] = struct{}{}
		}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	gs := h.groups[g]
	if gs == nil {
		return // its last member here left while this was queued
	}
	for uid := range gs.members {
		if _, skipped := skipUsers[uid]; skipped {
			continue
		}
		for _, c := range h.users[uid].conns {
			if c.id != skip {
				c.push(msg.Data)
			}
		}
	}
}

// groupLeave takes users (comma-separated ids) out of group g here.
func (h *hub) groupLeave(g int64, users string) {
	ids := parseIDs(users)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, uid := range ids {
		h.leave(uid, h.users[uid], g)
	}
}

// parseIDs reads a comma-separated list of user ids, skipping what is not one.
func parseIDs(s string) []int64 {
	out := make([]int64, 0, strings.Count(s, ",")+1)
	for part := range strings.SplitSeq(s, ",") {
		if id, err := strconv.ParseInt(part, 10, 64); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// opGroups is the internal op that tells users' groups.
const opGroups = "session.groups"

// resyncGroups asks the groups of every user connected here again and applies the
// answer: after the edge lost NATS, group joins and leaves published meanwhile
// never arrived (a member would get nothing of a group they joined, or keep
// getting one they left, until they reconnect).
func (g *Gateway) resyncGroups() {
	users := g.hub.userIDs()
	for start := 0; start < len(users); start += wire.MaxGroupsUsers {
		batch := users[start:min(start+wire.MaxGroupsUsers, len(users))]
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
		resp, err := endpoint.Call[wire.GroupsResp](ctx, g.nc, opGroups, endpoint.Caller{RequestID: g.newID(&g.reqSeq)}, wire.GroupsReq{UserIDs: batch})
		cancel()
		if err != nil {
			g.log.Warn().Err(err).Int("users", len(batch)).Msg("group memberships not resynced after a NATS reconnect")
			continue
		}
		want := make(map[int64][]int64, len(batch))
		for _, u := range batch {
			want[u] = resp.Groups[u] // none: the user left all of them
		}
		g.hub.setGroups(want)
	}
}

// resyncOnReconnect resyncs group memberships after each NATS reconnect.
func (g *Gateway) resyncOnReconnect() {
	reconnected := g.nc.StatusChanged(nats.CONNECTED)
	defer g.nc.RemoveStatusListener(reconnected)
	for {
		select {
		case <-g.stop:
			return
		case <-reconnected:
			g.resyncGroups()
		}
	}
}
