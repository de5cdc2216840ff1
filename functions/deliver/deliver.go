// Package deliver is the only code that publishes to delivery subjects: every push
// a client receives and every control message to the edges (kicks) leaves here.
// Callers say what happened (a wire.Event) and to whom (a Target); this package
// encodes the frame once, resolves the recipients and decides how it travels.
//
// Today a push is one core-NATS publish per recipient user on im.deliver.<uid>,
// which every edge holding a connection of that user subscribes to. Delivery is at
// most once: clients find gaps by seq and fill them with msg.sync. Pushes to one
// conversation's members leave in the order they were handed over: a group's are
// published by one goroutine per shard of conversations, a 1:1 conversation's by
// the caller (the message writer, in commit order).
//
// Whatever later changes how pushes travel (one publish per edge, presence-aware
// routing, offline push to devices without a connection) changes this package
// only: it alone knows the recipients of every push.
package deliver

import (
	"context"
	"database/sql"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/shared/config"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/metrics"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Config tunes delivery (env prefix DELIVER_ in the worker).
type Config struct {
	// FanoutWorkers is how many goroutines publish group conversations' pushes;
	// conversations are spread over them by a hash of their id.
	FanoutWorkers int `env:"FANOUT_WORKERS" envDefault:"4"`
	// FanoutQueue is how many group pushes wait per worker; past it the caller
	// publishes inline (slower for it, nothing dropped).
	FanoutQueue int `env:"FANOUT_QUEUE" envDefault:"1024"`
}

// Deps are what delivery needs; main wires them.
type Deps struct {
	NC      *nats.Conn
	DB      *sql.DB // group member lists
	Log     zerolog.Logger
	Metrics prometheus.Registerer // may be nil
	Config  Config
}

// Deliverer publishes pushes and control messages.
type Deliverer struct {
	nc     *nats.Conn
	db     *sql.DB
	log    zerolog.Logger
	shards []chan job
	seed   maphash.Seed
	m      *deliverMetrics

	mu      sync.Mutex
	members map[string]memberList // group conversation -> members under a version
}

type memberList struct {
	version int64
	users   []int64
}

// maxCachedLists bounds the member-list cache; past it the cache starts over.
const maxCachedLists = 10000

type job struct {
	to    Target
	event string
	frame []byte
	from  Origin
}

type deliverMetrics struct {
	pushes  *prometheus.CounterVec
	failed  *prometheus.CounterVec
	inline  prometheus.Counter
	lookups prometheus.Counter
}

// New starts the fan-out goroutines; they live until ctx ends.
func New(ctx context.Context, d Deps) (*Deliverer, error) {
	cfg := config.WithDefaults(d.Config)
	m := &deliverMetrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "pushes_total",
			Help: "Push frames published, one per recipient user, by event."}, []string{"event"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "failures_total",
			Help: "Pushes not published (the recipients catch up by sync), by event."}, []string{"event"}),
		inline: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "fanout_inline_total",
			Help: "Group pushes published by the caller because their fan-out queue was full."}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "member_lookups_total",
			Help: "Group member lists read from MySQL (the cache missed)."}),
	}
	var err error
	if m.pushes, err = metrics.Register(d.Metrics, m.pushes); err != nil {
		return nil, err
	}
	if m.failed, err = metrics.Register(d.Metrics, m.failed); err != nil {
		return nil, err
	}
	if m.inline, err = metrics.Register(d.Metrics, m.inline); err != nil {
		return nil, err
	}
	if m.lookups, err = metrics.Register(d.Metrics, m.lookups); err != nil {
		return nil, err
	}
	dl := &Deliverer{nc: d.NC, db: d.DB, log: d.Log, seed: maphash.MakeSeed(), m: m, members: map[string]memberList{}}
	for range max(cfg.FanoutWorkers, 1) {
		ch := make(chan job, max(cfg.FanoutQueue, 1))
		dl.shards = append(dl.shards, ch)
		go dl.run(ctx, ch)
	}
	return dl, nil
}

// Target says who receives a push.
type Target struct {
	users   []int64
	conv    convid.ID
	version int64
}

// ToUser is every device of one user.
func ToUser(u int64) Target { return Target{users: []int64{u}} }

// ToUsers is every device of each user.
func ToUsers(users ...int64) Target { return Target{users: users} }

// ToMembers is every current member of a conversation. A 1:1 conversation's two
// users come from its id. A group's come from a list cached under version (the
// group's members_version as the caller read it; -1 when unknown: the list is
// read fresh), and its pushes are published after the caller returns, in order.
func ToMembers(conv convid.ID, version int64) Target {
	if conv.Kind == convid.Direct {
		return Target{users: conv.Users()}
	}
	return Target{conv: conv, version: version}
}

// Origin is the connection that caused a push: it has the reply already, so the
// edge does not send it the push too. The zero Origin skips nothing.
type Origin struct {
	User int64
	Conn string
}

// From is the connection that made the call c.
func From(c endpoint.Caller) Origin { return Origin{User: c.UserID, Conn: c.ConnID} }

// header returns the skip header for a publish to user, or nil.
func (o Origin) header(user int64) nats.Header {
	if o.Conn == "" || user != o.User {
		return nil
	}
	return nats.Header{wire.HeaderSkipConn: []string{o.Conn}}
}

// Push sends ev to the target's devices, except from's connection. It does not
// fail: a push that cannot leave is logged and counted, and its recipients catch
// up by sync.
func (d *Deliverer) Push(ctx context.Context, to Target, ev wire.Event, from Origin) {
	name := ev.EventName()
	frame, err := wire.EncodeEvent(ev)
	if err != nil {
		d.m.failed.WithLabelValues(name).Inc()
		d.log.Error().Err(err).Str("event", name).Msg("encode push")
		return
	}
	j := job{to: to, event: name, frame: frame, from: from}
	if to.conv.Kind != convid.Group {
		d.publish(j, to.users)
		return
	}
	shard := d.shards[maphash.String(d.seed, to.conv.Raw)%uint64(len(d.shards))]
	select {
	case shard <- j:
	default:
		d.m.inline.Inc()
		d.toMembers(ctx, j)
	}
}

// Kick tells the edges to close a user's connection (Conn) or every connection
// of one of the user's sessions (Session) with close code 3501, after a
// session.kicked push carrying reason.
func (d *Deliverer) Kick(user int64, k Kick) {
	frame, err := wire.EncodeEvent(wire.SessionKicked{Reason: k.Reason})
	if err == nil {
		m := &nats.Msg{Subject: subject.Deliver(user), Data: frame, Header: nats.Header{}}
		m.Header.Set(wire.HeaderControl, wire.ControlKick)
		if k.Conn != "" {
			m.Header.Set(wire.HeaderConn, k.Conn)
		} else {
			m.Header.Set(wire.HeaderSession, k.Session)
		}
		err = d.nc.PublishMsg(m)
	}
	if err != nil {
		d.m.failed.WithLabelValues(wire.EvtSessionKicked).Inc()
		d.log.Warn().Err(err).Int64("user", user).Msg("kick not sent")
		return
	}
	d.m.pushes.WithLabelValues(wire.EvtSessionKicked).Inc()
}

// Kick names what to close: one connection, or every connection of a session.
type Kick struct {
	Conn    string
	Session string
	Reason  string
}

func (d *Deliverer) run(ctx context.Context, jobs <-chan job) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			d.toMembers(jctx, j)
			cancel()
		}
	}
}

func (d *Deliverer) toMembers(ctx context.Context, j job) {
	users, err := d.memberList(ctx, j.to.conv.Raw, j.to.version)
	if err != nil {
		d.m.failed.WithLabelValues(j.event).Inc()
		d.log.Warn().Err(err).Str("conv", j.to.conv.Raw).Str("event", j.event).Msg("fan-out failed; members catch up by sync")
		return
	}
	d.publish(j, users)
}

// publish is the hot path of every push: one publish per user, the frame shared.
func (d *Deliverer) publish(j job, users []int64) {
	sent := 0
	for _, u := range users {
		if err := d.nc.PublishMsg(&nats.Msg{Subject: subject.Deliver(u), Data: j.frame, Header: j.from.header(u)}); err != nil {
			d.m.failed.WithLabelValues(j.event).Add(float64(len(users) - sent))
			d.log.Warn().Err(err).Int64("to", u).Str("event", j.event).Msg("push failed; recipients catch up by sync")
			break
		}
		sent++
	}
	d.m.pushes.WithLabelValues(j.event).Add(float64(sent))
}

// memberList returns a group conversation's members, from the cache when it
// holds this version.
func (d *Deliverer) memberList(ctx context.Context, conv string, version int64) ([]int64, error) {
	if version >= 0 {
		d.mu.Lock()
		l, ok := d.members[conv]
		d.mu.Unlock()
		if ok && l.version == version {
			return l.users, nil
		}
	}
	d.m.lookups.Inc()
	rows, err := d.db.QueryContext(ctx, "SELECT user_id FROM conversation_members WHERE conv_id = ?", conv)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", conv, err)
	}
	defer rows.Close()
	var users []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("members of %s: %w", conv, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("members of %s: %w", conv, err)
	}
	if version >= 0 {
		d.mu.Lock()
		if len(d.members) >= maxCachedLists {
			clear(d.members)
		}
		d.members[conv] = memberList{version: version, users: users}
		d.mu.Unlock()
	}
	return users, nil
}
