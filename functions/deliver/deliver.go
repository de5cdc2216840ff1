// Package deliver is the only code that publishes to delivery subjects: every push
// a client receives and every control message to the edges (kicks, group joins
// and leaves) leaves here. Callers say what happened (a wire.Event) and to whom (a
// Target); this package encodes the frame once, resolves the recipients and
// decides how it travels.
//
// A push to users is one core-NATS publish per user on im.deliver.<uid>, which
// every edge holding a connection of that user subscribes to. A push to a group's
// members is one publish on im.deliver.g.<gid>: every edge holding a connection of
// a member subscribes to it and fans out to its own connections of members. An
// edge learns a user's groups when the user connects (session.connect), and of
// later changes from Joined (a control on the user's subject) and Left (a control
// on the group's subject, so that it takes effect in order with the group's
// messages: a removed member gets nothing sent after their removal). Delivery is at
// most once: clients find gaps by seq and fill them with msg.sync.
//
// Whatever later changes how pushes travel (presence-aware routing, offline push
// to devices without a connection) changes this package only: it alone knows the
// recipients of every push.
package deliver

import (
	"context"
	"slices"
	"strconv"

	"go.opentelemetry.io/otel/trace"

	"natter/shared/tracing"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/metrics"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Deps are what delivery needs; main wires them.
type Deps struct {
	NC      *nats.Conn
	Log     zerolog.Logger
	Metrics prometheus.Registerer // may be nil
}

// Deliverer publishes pushes and control messages.
type Deliverer struct {
	nc  *nats.Conn
	log zerolog.Logger
	m   *deliverMetrics
}

type deliverMetrics struct {
	pushes *prometheus.CounterVec
	failed *prometheus.CounterVec
}

// New returns a Deliverer.
func New(_ context.Context, d Deps) (*Deliverer, error) {
	m := &deliverMetrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "pushes_total",
			Help: "Push frames published, by event: one per recipient user, one per group."}, []string{"event"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "deliver", Name: "failures_total",
			Help: "Pushes not published (the recipients catch up by sync), by event."}, []string{"event"}),
	}
	var err error
	if m.pushes, err = metrics.Register(d.Metrics, m.pushes); err != nil {
		return nil, err
	}
	if m.failed, err = metrics.Register(d.Metrics, m.failed); err != nil {
		return nil, err
	}
	return &Deliverer{nc: d.NC, log: d.Log, m: m}, nil
}

// Target says who receives a push.
type Target struct {
	users  []int64
	group  int64   // set: the group's members
	except []int64 // users left out
}

// Except leaves users out of t: a group's new members get the message saying they
// joined on their own subjects, since their edges may not have subscribed the
// group's subject by the time it is published there.
func (t Target) Except(users ...int64) Target {
	t.except = users
	return t
}

// ToUser is every device of one user.
func ToUser(u int64) Target { return Target{users: []int64{u}} }

// ToUsers is every device of each user.
func ToUsers(users ...int64) Target { return Target{users: users} }

// ToMembers is every current member of a conversation: a 1:1 conversation's two
// users (from its id), or a group's members (one publish on the group's subject;
// edges know who the members are). version is kept for callers' sake and unused.
func ToMembers(conv convid.ID, _ int64) Target {
	if conv.Kind == convid.Direct {
		return Target{users: conv.Users()}
	}
	return Target{group: conv.Group}
}

// Origin is the connection that caused a push: it has the reply already, so the
// edge does not send it the push too. The zero Origin skips nothing.
type Origin struct {
	User int64
	Conn string
}

// From is the connection that made the call c.
func From(c endpoint.Caller) Origin { return Origin{User: c.UserID, Conn: c.ConnID} }

// Push sends ev to the target's devices, except from's connection. It does not
// fail: a push that cannot leave is logged and counted, and its recipients catch
// up by sync. Pushes published by one goroutine leave in the order it hands them
// over (the message writer publishes a conversation's in seq order).
func (d *Deliverer) Push(ctx context.Context, to Target, ev wire.Event, from Origin) {
	name := ev.EventName()
	_, span := tracing.Tracer().Start(ctx, "deliver "+name, trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	frame, err := wire.EncodeEvent(ev)
	if err != nil {
		d.m.failed.WithLabelValues(name).Inc()
		d.log.Error().Err(err).Str("event", name).Msg("encode push")
		return
	}
	if to.group != 0 {
		var hdr nats.Header
		if from.Conn != "" || len(to.except) > 0 {
			hdr = nats.Header{}
			if from.Conn != "" {
				hdr.Set(wire.HeaderSkipConn, from.Conn)
			}
			if len(to.except) > 0 {
				hdr.Set(wire.HeaderSkipUsers, joinIDs(to.except))
			}
		}
		d.publish(name, &nats.Msg{Subject: subject.DeliverGroup(to.group), Data: frame, Header: hdr}, 1)
		return
	}
	for i, u := range to.users {
		if slices.Contains(to.except, u) {
			continue
		}
		var hdr nats.Header
		if from.Conn != "" && u == from.User {
			hdr = nats.Header{wire.HeaderSkipConn: []string{from.Conn}}
		}
		if !d.publish(name, &nats.Msg{Subject: subject.Deliver(u), Data: frame, Header: hdr}, len(to.users)-i) {
			return
		}
	}
}

// Joined tells the edges that users joined group: each user's connections get the
// group's pushes from then on. Call it before pushing the join's system message.
func (d *Deliverer) Joined(group int64, users ...int64) {
	gid := strconv.FormatInt(group, 10)
	for _, u := range users {
		m := &nats.Msg{Subject: subject.Deliver(u), Header: nats.Header{wire.HeaderControl: []string{wire.ControlGroupJoin}, wire.HeaderGroup: []string{gid}}}
		if !d.publish("group.join", m, 1) {
			return
		}
	}
}

// Left tells the edges that users left group (they left, were kicked, or their
// account is gone). On the group's subject, so that nothing published there
// after it reaches them; and on each user's subject, for an edge that is still
// connecting one of them and would otherwise subscribe the group from a
// membership read before the change. Call it before pushing the system message
// (the users get that on their own subjects).
func (d *Deliverer) Left(group int64, users ...int64) {
	if len(users) == 0 {
		return
	}
	gid := strconv.FormatInt(group, 10)
	if !d.publish("group.leave", &nats.Msg{Subject: subject.DeliverGroup(group),
		Header: nats.Header{wire.HeaderControl: []string{wire.ControlGroupLeave}, wire.HeaderUsers: []string{joinIDs(users)}}}, 1) {
		return
	}
	for _, u := range users {
		m := &nats.Msg{Subject: subject.Deliver(u), Header: nats.Header{wire.HeaderControl: []string{wire.ControlGroupLeave}, wire.HeaderGroup: []string{gid}}}
		if !d.publish("group.leave", m, 1) {
			return
		}
	}
}

// joinIDs is the comma-separated form of ids that the group headers carry.
func joinIDs(ids []int64) string {
	b := make([]byte, 0, len(ids)*8)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

// Kick tells the edges to close a user's connection (Conn) or every connection
// of one of the user's sessions (Session) with close code 3501, after a
// session.kicked push carrying reason.
func (d *Deliverer) Kick(user int64, k Kick) {
	frame, err := wire.EncodeEvent(wire.SessionKicked{Reason: k.Reason})
	if err != nil {
		d.m.failed.WithLabelValues(wire.EvtSessionKicked).Inc()
		return
	}
	m := &nats.Msg{Subject: subject.Deliver(user), Data: frame, Header: nats.Header{}}
	m.Header.Set(wire.HeaderControl, wire.ControlKick)
	if k.Conn != "" {
		m.Header.Set(wire.HeaderConn, k.Conn)
	} else {
		m.Header.Set(wire.HeaderSession, k.Session)
	}
	d.publish(wire.EvtSessionKicked, m, 1)
}

// Kick names what to close: one connection, or every connection of a session.
type Kick struct {
	Conn    string
	Session string
	Reason  string
}

// publish is the hot path of every push. On failure it counts the rest as failed
// (left, this one included) and reports false.
func (d *Deliverer) publish(event string, m *nats.Msg, left int) bool {
	if err := d.nc.PublishMsg(m); err != nil {
		d.m.failed.WithLabelValues(event).Add(float64(left))
		d.log.Warn().Err(err).Str("subject", m.Subject).Str("event", event).Msg("push failed; recipients catch up by sync")
		return false
	}
	d.m.pushes.WithLabelValues(event).Inc()
	return true
}
