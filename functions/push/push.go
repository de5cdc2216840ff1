// Package push is offline push: the im-push micro service (device tokens and
// the preview setting) and, in the worker that hosts it, the consumers that turn
// message events into pushes for recipients without an online device.
//
// A durable pull consumer on IM_MESSAGES (im.evt.message.sent) decides, per
// recipient, whether to push (decide.go), collapses bursts into one push per
// conversation per window with a count (collapse.go), and sends through the
// provider configured for each device's platform (FCM, APNs, a signed webhook or
// the log). A push is claimed in Redis per (conversation, seq, user, device)
// before its provider call, so an event redelivered after a crash pushes nothing
// twice; a push that still fails after its retries lands in the dead-letter
// stream IM_PUSH_DEAD (deadletter.go). A second durable consumer, on IM_EVENTS
// (im.evt.session.revoked), removes the tokens of sessions that ended.
package push

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/functions/presence"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/metrics"
)

// Config is offline push's settings (env prefix PUSH_ in the worker).
type Config struct {
	// Platforms maps each client platform to the provider that pushes to it:
	// log, webhook, fcm or apns.
	Platforms map[string]string `env:"PLATFORMS" envDefault:"ios:log,android:log,web:log,desktop:log,mac:log,windows:log,linux:log" envKeyValSeparator:":"`
	// MaxDevices bounds the tokens of one user: registering one more forgets
	// the least recently registered.
	MaxDevices int `env:"MAX_DEVICES" envDefault:"10"`
	// OnlineWhenAway counts a user whose every connection is away (idle) as
	// online: no push. By default such a user is pushed to.
	OnlineWhenAway bool `env:"ONLINE_WHEN_AWAY"`
	// Collapse is the window of one push per conversation and user: the first
	// message pushes at once, the others until the window ends become one push
	// with their count at its end. Negative: every message pushes.
	Collapse time.Duration `env:"COLLAPSE" envDefault:"3s"`
	// Attempts per push, with Backoff before the second, doubled each time;
	// then the push is a dead letter.
	Attempts int           `env:"ATTEMPTS" envDefault:"4"`
	Backoff  time.Duration `env:"BACKOFF" envDefault:"1s"`
	// Timeout bounds one provider call.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"10s"`
	// Senders bounds the provider calls in flight per worker.
	Senders int `env:"SENDERS" envDefault:"64"`
	// MaxAckPending bounds the message events a worker's consumer holds
	// unacknowledged (each waits for its pushes); AckWait is how long JetStream
	// waits before it redelivers one (a worker at work on it says so before).
	MaxAckPending int           `env:"MAX_ACK_PENDING" envDefault:"32"`
	AckWait       time.Duration `env:"ACK_WAIT" envDefault:"30s"`
	// MaxAge: a message older than this when its event is handled is not
	// pushed (after an outage, a flood of stale pushes helps no one). It also
	// bounds how long the claims against duplicates live.
	MaxAge time.Duration `env:"MAX_AGE" envDefault:"10m"`

	Webhook WebhookConfig `envPrefix:"WEBHOOK_"`
	FCM     FCMConfig     `envPrefix:"FCM_"`
	APNs    APNsConfig    `envPrefix:"APNS_"`
}

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB       *sql.DB
	Redis    redis.UniversalClient
	NC       *nats.Conn // nil: no consumers (endpoints only)
	Presence *presence.Registry
	Log      zerolog.Logger
	Metrics  prometheus.Registerer // may be nil
	Config   Config
	// Providers replaces the providers Config builds, by name (tests).
	Providers map[string]Provider
}

// Service serves the push endpoints and runs the consumers.
type Service struct {
	db       *sql.DB
	rdb      redis.UniversalClient
	nc       *nats.Conn
	presence *presence.Registry
	log      zerolog.Logger
	cfg      Config
	// byPlatform is the provider of each platform.
	byPlatform map[string]Provider
	providers  map[string]Provider
	senders    chan struct{}
	m          *pushMetrics
	now        func() time.Time
}

type pushMetrics struct {
	decisions *prometheus.CounterVec // result
	collapsed prometheus.Counter
	sends     *prometheus.CounterVec   // provider, result
	lag       *prometheus.HistogramVec // provider
}

// platforms are the platforms a device may register (account.login's).
var platforms = []string{"ios", "android", "web", "desktop", "mac", "windows", "linux"}

// New returns the push service; Start runs its consumers.
func New(d Deps) (*Service, error) {
	cfg := config.WithDefaults(d.Config)
	s := &Service{db: d.DB, rdb: d.Redis, nc: d.NC, presence: d.Presence, log: d.Log, cfg: cfg,
		byPlatform: map[string]Provider{}, providers: map[string]Provider{}, senders: make(chan struct{}, max(cfg.Senders, 1)), now: time.Now}
	for name, p := range d.Providers {
		s.providers[name] = p
	}
	names := make([]string, 0, len(cfg.Platforms))
	for platform := range cfg.Platforms {
		names = append(names, platform)
	}
	sort.Strings(names)
	for _, platform := range names {
		name := cfg.Platforms[platform]
		p, ok := s.providers[name]
		if !ok {
			var err error
			if p, err = s.build(name); err != nil {
				return nil, fmt.Errorf("push: platform %s: %w", platform, err)
			}
			s.providers[name] = p
		}
		s.byPlatform[platform] = p
	}
	if err := s.metrics(d.Metrics); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) build(name string) (Provider, error) {
	switch name {
	case "log":
		return NewLog(s.log), nil
	case "webhook":
		return NewWebhook(s.cfg.Webhook)
	case "fcm":
		return NewFCM(s.cfg.FCM)
	case "apns":
		return NewAPNs(s.cfg.APNs)
	}
	return nil, fmt.Errorf("unknown provider %q (log, webhook, fcm, apns)", name)
}

func (s *Service) metrics(reg prometheus.Registerer) error {
	m := &pushMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "push", Name: "decisions_total",
			Help: "Offline-push decisions per recipient of a message event, by result (push, online, muted, blocked, deleted; system and stale count events)."}, []string{"result"}),
		collapsed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "natter", Subsystem: "push", Name: "collapsed_total",
			Help: "Pushes held by a collapse window, to be counted into the push at its end."}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "push", Name: "sends_total",
			Help: "Pushes to devices by provider and result (ok, unregistered, dead, duplicate)."}, []string{"provider", "result"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "natter", Subsystem: "push", Name: "lag_seconds",
			Help:    "From a message's send to its push's first provider call.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"provider"}),
	}
	var err error
	if m.decisions, err = metrics.Register(reg, m.decisions); err != nil {
		return err
	}
	if m.collapsed, err = metrics.Register(reg, m.collapsed); err != nil {
		return err
	}
	if m.sends, err = metrics.Register(reg, m.sends); err != nil {
		return err
	}
	if m.lag, err = metrics.Register(reg, m.lag); err != nil {
		return err
	}
	s.m = m
	return nil
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("push.register", s.register),
		endpoint.Handle("push.unregister", s.unregister),
		endpoint.Handle("push.settings.get", s.settingsGet),
		endpoint.Handle("push.settings.set", s.settingsSet),
	}
}

// Start runs the consumers until ctx ends or the NATS connection closes (a
// worker killed mid-batch leaves its events unacknowledged: JetStream gives them
// to another after AckWait). Without NATS it does nothing.
func (s *Service) Start(ctx context.Context) error {
	if s.nc == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	closed := s.nc.StatusChanged(nats.CLOSED)
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
		case <-closed:
		}
	}()
	if s.nc.IsClosed() {
		cancel()
		return nil
	}
	if err := s.consumeMessages(ctx); err != nil {
		cancel()
		return err
	}
	if err := s.consumeRevocations(ctx); err != nil {
		cancel()
		return err
	}
	return nil
}

func platformList() string { return strings.Join(platforms, ", ") }
