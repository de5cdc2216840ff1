package presence

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/functions/deliver"
	"natter/shared/config"
	"natter/shared/metrics"
	"natter/shared/wire"
)

// Config tunes presence (env prefix PRESENCE_ in the worker).
type Config struct {
	// Stale is how long a connection counts as live without a session.touch
	// from its edge (edges touch every minute).
	Stale time.Duration `env:"STALE" envDefault:"3m"`
	// Grace is how long a user without connections stays announced online: a
	// reconnect within it (an app switching networks) changes nothing.
	Grace time.Duration `env:"GRACE" envDefault:"5s"`
	// Sweep is how often a worker looks for users whose edge stopped touching.
	Sweep time.Duration `env:"SWEEP" envDefault:"30s"`
	// Queue bounds the announcements waiting; past it they are dropped and
	// counted (clients can always ask presence.get).
	Queue int `env:"QUEUE" envDefault:"10000"`
}

// Watchers says whose devices a user's presence changes reach: their friends,
// unless the user's privacy hides their presence (the friend domain answers).
type Watchers interface {
	PresenceWatchers(ctx context.Context, uid int64) ([]int64, error)
}

// Notifier announces presence changes to the online friends of the user who
// changed, through the delivery owner, off the connect path: a login costs one
// queued job whatever the number of friends, and the job costs one friends query
// and one Redis round trip for all of them.
type Notifier struct {
	reg      *Registry
	watchers Watchers
	deliver  *deliver.Deliverer
	db       *sql.DB
	cfg      Config
	log      zerolog.Logger
	jobs     chan job
	m        *notifierMetrics
}

type jobKind uint8

const (
	jobOnline  jobKind = iota // the user came online
	jobOffline                // maybe gone: announce if Gone says so
	jobStatus                 // online or away changed
)

type job struct {
	kind jobKind
	uid  int64
}

type notifierMetrics struct {
	announced *prometheus.CounterVec
	dropped   prometheus.Counter
}

// NotifierDeps are what announcing needs.
type NotifierDeps struct {
	Registry *Registry
	Watchers Watchers
	Deliver  *deliver.Deliverer
	DB       *sql.DB
	Log      zerolog.Logger
	Metrics  prometheus.Registerer
	Config   Config
}

// NewNotifier starts the announcing goroutine and the sweeper until ctx ends.
func NewNotifier(ctx context.Context, d NotifierDeps) (*Notifier, error) {
	cfg := config.WithDefaults(d.Config)
	m := &notifierMetrics{
		announced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "presence", Name: "announced_total",
			Help: "Presence changes announced, by status (each to the user's online friends)."}, []string{"status"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "presence", Name: "dropped_total",
			Help: "Presence changes not announced because the queue was full."}),
	}
	var err error
	if m.announced, err = metrics.Register(d.Metrics, m.announced); err != nil {
		return nil, err
	}
	if m.dropped, err = metrics.Register(d.Metrics, m.dropped); err != nil {
		return nil, err
	}
	n := &Notifier{reg: d.Registry, watchers: d.Watchers, deliver: d.Deliver, db: d.DB, cfg: cfg, log: d.Log,
		jobs: make(chan job, cfg.Queue), m: m}
	go n.run(ctx)
	go n.sweep(ctx)
	return n, nil
}

// Online announces that uid came online.
func (n *Notifier) Online(uid int64) { n.enqueue(job{jobOnline, uid}) }

// MaybeOffline announces, after the grace period, that uid went offline, unless
// a connection of theirs is live by then.
func (n *Notifier) MaybeOffline(uid int64) {
	time.AfterFunc(n.cfg.Grace, func() { n.enqueue(job{jobOffline, uid}) })
}

// StatusChanged announces uid's current status (online or away).
func (n *Notifier) StatusChanged(uid int64) { n.enqueue(job{jobStatus, uid}) }

func (n *Notifier) enqueue(j job) {
	select {
	case n.jobs <- j:
	default:
		n.m.dropped.Inc()
	}
}

func (n *Notifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-n.jobs:
			jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := n.handle(jctx, j); err != nil {
				n.log.Warn().Err(err).Int64("user", j.uid).Msg("presence change not announced")
			}
			cancel()
		}
	}
}

func (n *Notifier) handle(ctx context.Context, j job) error {
	switch j.kind {
	case jobOnline:
		return n.announce(ctx, wire.PresenceChanged{UserID: j.uid, Status: wire.PresenceOnline})
	case jobOffline:
		gone, err := n.reg.Gone(ctx, j.uid)
		if err != nil || !gone {
			return err
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if _, err := n.db.ExecContext(ctx, "UPDATE users SET last_seen_at = ? WHERE id = ?", now, j.uid); err != nil {
			n.log.Warn().Err(err).Int64("user", j.uid).Msg("last seen not stored")
		}
		return n.announce(ctx, wire.PresenceChanged{UserID: j.uid, Status: wire.PresenceOffline, LastSeen: now.UnixMilli()})
	default:
		st, err := n.reg.Statuses(ctx, []int64{j.uid})
		if err != nil {
			return err
		}
		s := st[j.uid]
		if !s.Online {
			return nil // the offline announcement follows from the disconnect
		}
		status := wire.PresenceOnline
		if s.Away {
			status = wire.PresenceAway
		}
		return n.announce(ctx, wire.PresenceChanged{UserID: j.uid, Status: status})
	}
}

// announce pushes ev to the online ones of the user's watchers.
func (n *Notifier) announce(ctx context.Context, ev wire.PresenceChanged) error {
	watchers, err := n.watchers.PresenceWatchers(ctx, ev.UserID)
	if err != nil || len(watchers) == 0 {
		return err
	}
	online, err := n.reg.Announced(ctx, watchers)
	if err != nil {
		return err
	}
	n.m.announced.WithLabelValues(ev.Status).Inc()
	if len(online) > 0 {
		n.deliver.Push(ctx, deliver.ToUsers(online...), ev, deliver.Origin{})
	}
	return nil
}

// sweep finds users announced online whose every connection went stale (their
// edge died without a goodbye) and announces them offline. Every worker sweeps;
// Gone lets one of them announce each.
func (n *Notifier) sweep(ctx context.Context) {
	t := time.NewTicker(n.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			users, err := n.reg.Stale(ctx, 1000)
			if err != nil {
				n.log.Warn().Err(err).Msg("presence sweep")
				continue
			}
			for _, u := range users {
				n.enqueue(job{jobOffline, u})
			}
		}
	}
}
