// Package gateway is the edge: it authenticates clients, turns WebSocket frames and
// HTTP requests into NATS requests on the subjects of the op table, and pushes each
// user's deliveries (im.deliver.<uid>) to that user's connections on this edge. It
// holds no business logic and no store: everything it knows comes from the op table,
// the access token and NATS.
//
// The edge package main wires it; tests of other packages start one in-process with
// New and serve Handler on an httptest server.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/dynconf"
	"natter/shared/wire"
)

// Config tunes a Gateway. The edge binary parses it from the environment under the
// prefix EDGE_ (e.g. EDGE_HEARTBEAT_INTERVAL); New fills every zero field with the
// default shown in its envDefault tag, so tests can pass a partial Config.
type Config struct {
	// ID names this edge in connection ids and in session.connect; random if empty.
	ID string `env:"ID"`
	// HeartbeatInterval is how often the edge pings every WebSocket.
	HeartbeatInterval time.Duration `env:"HEARTBEAT_INTERVAL" envDefault:"30s"`
	// HeartbeatTimeout closes a WebSocket (code 3002) that sent nothing, not even a
	// pong, for this long.
	HeartbeatTimeout time.Duration `env:"HEARTBEAT_TIMEOUT" envDefault:"90s"`
	// RequestTimeout bounds one NATS request (WebSocket frame or HTTP call).
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"10s"`
	// SessionCheckTTL is how long an HTTP caller's session, once found live by
	// session.check (not revoked, not expired, user not banned), is trusted
	// before it is checked again.
	SessionCheckTTL time.Duration `env:"SESSION_CHECK_TTL" envDefault:"30s"`
	// WriteTimeout bounds one write to a WebSocket; a client that does not read for
	// that long is disconnected.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s"`
	// RateLimit is the sustained number of frames per second one WebSocket may send
	// and RateBurst how many it may send at once; frames over the limit are answered
	// with rate_limited. A negative RateLimit disables the limit.
	RateLimit float64 `env:"RATE_LIMIT" envDefault:"50"`
	RateBurst int     `env:"RATE_BURST" envDefault:"100"`
	// HTTPUserLimit and HTTPUserBurst bound HTTP calls per user; HTTPPublicLimit and
	// HTTPPublicBurst bound unauthenticated calls (login, register, refresh: argon2id
	// makes them expensive) per client address. Negative: off.
	HTTPUserLimit   float64 `env:"HTTP_USER_LIMIT" envDefault:"50"`
	HTTPUserBurst   int     `env:"HTTP_USER_BURST" envDefault:"100"`
	HTTPPublicLimit float64 `env:"HTTP_PUBLIC_LIMIT" envDefault:"5"`
	HTTPPublicBurst int     `env:"HTTP_PUBLIC_BURST" envDefault:"30"`
	// Parallel is how many requests of one WebSocket may be in flight; the next frame
	// is read when one of them finishes.
	Parallel int `env:"WS_PARALLEL" envDefault:"8"`
	// SendQueue is how many push frames may wait to be written to one WebSocket;
	// pushes beyond it are dropped (and counted) rather than buffered without bound.
	// Clients recover dropped pushes by seq through history/sync.
	SendQueue int `env:"SEND_QUEUE" envDefault:"256"`
	// QueueBytes is the byte budget of one WebSocket's send queue: the frames,
	// replies and pushes alike, queued for it and not yet written. A push that
	// would take the queue over it is dropped (and counted); while the queue is
	// over it, no new request of that connection starts, so once Parallel wait the
	// edge reads no more of its frames until the client reads.
	QueueBytes int `env:"WS_QUEUE_BYTES" envDefault:"2097152"`
	// QueueMax is the hard limit of one WebSocket's send queue: a reply that
	// would take it past QueueMax closes the connection (3003) instead. It leaves
	// room above QueueBytes for the replies of Parallel requests already running
	// (replies are at most wire.MaxReply of data), so only a client that reads
	// nothing for a long while, or far too slowly, reaches it.
	QueueMax int `env:"WS_QUEUE_MAX" envDefault:"8388608"`
	// QueueTimeout closes (3003) a WebSocket whose send queue stays over
	// QueueBytes, or keeps losing pushes to it, for this long: a client that
	// cannot keep up is better off reconnecting and syncing. Negative: never
	// (QueueMax and WriteTimeout still apply).
	QueueTimeout time.Duration `env:"WS_QUEUE_TIMEOUT" envDefault:"10s"`
	// WriteDelay, when positive, holds push frames up to this long so that those
	// arriving meanwhile for the same connection share one write: fewer syscalls
	// for busy groups, at up to WriteDelay more latency per push. Replies are never
	// held (one flushes whatever waits). Negative: pushes go as soon as the
	// connection's writer runs, which still gathers what queued while it was busy.
	WriteDelay time.Duration `env:"WRITE_DELAY" envDefault:"20ms"`
	// WriteDelayAbove makes WriteDelay apply only while this edge pushes more than
	// this many frames per second (a large group's burst), so that a quiet edge
	// adds no latency; negative: always.
	WriteDelayAbove float64 `env:"WRITE_DELAY_ABOVE" envDefault:"20000"`
	// TouchInterval is how often the edge tells the account domain which
	// connections it still holds (session.touch); connections of an edge that stops
	// touching them stop counting as online after ACCOUNT_PRESENCE_STALE.
	TouchInterval time.Duration `env:"TOUCH_INTERVAL" envDefault:"60s"`
	// UploadTimeout bounds one streamed upload (POST /api/v1/files), from its
	// start to the file's last byte reaching S3.
	UploadTimeout time.Duration `env:"UPLOAD_TIMEOUT" envDefault:"10m"`
	// S3Addr, when set (host:port), is where streamed uploads connect instead of
	// the presigned URL's host, which stays the request's Host (the signature
	// covers it): for an edge that reaches S3 by another address than clients
	// (compose: minio:9000 for 127.0.0.1:9000).
	S3Addr string `env:"S3_ADDR"`
	// DeliverBuffer is the capacity of the channel that carries delivery messages
	// from NATS to the dispatcher.
	DeliverBuffer int `env:"DELIVER_BUFFER" envDefault:"65536"`
}

// withDefaults fills the zero fields from the envDefault tags (config.WithDefaults)
// and picks a random ID, which has no default. Negative values (off) are not zero,
// so they stay.
func (c Config) withDefaults() Config {
	c = config.WithDefaults(c)
	c.ID = cmp.Or(c.ID, "edge"+strconv.FormatUint(uint64(rand.Uint32()), 36))
	return c
}

// Deps are what a Gateway uses and does not own: main (or a test) creates and closes them.
type Deps struct {
	NC     *nats.Conn
	Signer *auth.Signer
	Log    zerolog.Logger
	// Registry receives the edge's metrics and is served on /metrics; a new one
	// is made if nil.
	Registry *prometheus.Registry
	// AdminSigner verifies operator tokens (auth.NewOperatorSigner). With it the
	// edge serves the back office (/api/v1/admin/... and the console at /admin);
	// without it, chat only.
	AdminSigner *auth.Signer
	// AccessTTL is how long access tokens live (config.Auth.AccessTTL), hence how
	// far back session revocations are replayed; config.Auth's default if zero.
	AccessTTL time.Duration
}

// Gateway is one edge: an http.Handler for /ws, /api/v1/..., /healthz, /readyz and
// /metrics, plus the per-user delivery subscriptions of its WebSockets.
type Gateway struct {
	cfg    Config
	nc     *nats.Conn
	signer *auth.Signer
	// adminSigner verifies operator tokens; nil: no back office on this edge.
	adminSigner *auth.Signer
	log         zerolog.Logger
	reg         *prometheus.Registry
	m           *metrics

	mux      *http.ServeMux
	upgrader *gws.Upgrader
	hub      *hub
	rev      *revocations
	sessions *sessionCache // HTTP callers' sessions found live lately
	live     *dynconf.Live // runtime configuration (settings.go)
	// HTTP rate limits: per user, and per client address for unauthenticated calls.
	userLimits, publicLimits *keyedLimiter
	// s3HTTP carries streamed uploads to their presigned URLs.
	s3HTTP *http.Client

	// prefix starts every connection and request id: the edge id plus a random
	// boot tag, so ids stay unique across restarts of an edge with a fixed EDGE_ID.
	prefix  string
	connSeq atomic.Uint64
	reqSeq  atomic.Uint64

	notReady atomic.Bool
	ctx      context.Context // parent of request contexts; cancelled by Shutdown
	cancel   context.CancelFunc
	stop     chan struct{} // stops the background loops
	loops    sync.WaitGroup
	calls    tracker // fire-and-forget session.disconnect calls
	held     heldPushes
	pushed   atomic.Int64 // pushes queued, for the push rate WriteDelayAbove compares
	queued   atomic.Int64 // bytes in all send queues (natter_edge_queued_bytes)
	holding  atomic.Bool  // the push rate is above WriteDelayAbove: hold pushes
	shutOnce sync.Once
}

// New returns a running Gateway: its delivery dispatcher, heartbeat loop and
// revocation follower start now, and Shutdown stops them.
func New(cfg Config, d Deps) (*Gateway, error) {
	if d.NC == nil || d.Signer == nil {
		return nil, errors.New("gateway: NC and Signer are required")
	}
	cfg = cfg.withDefaults()
	if !saneID(cfg.ID) {
		return nil, fmt.Errorf("gateway: edge id %q: want at most 64 of A-Z a-z 0-9 - _ . :", cfg.ID)
	}
	if cfg.QueueBytes < 0 || cfg.QueueMax < cfg.QueueBytes {
		return nil, fmt.Errorf("gateway: WS_QUEUE_MAX (%d) must be at least WS_QUEUE_BYTES (%d)", cfg.QueueMax, cfg.QueueBytes)
	}
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:         cfg,
		nc:          d.NC,
		signer:      d.Signer,
		adminSigner: d.AdminSigner,
		log:         d.Log.With().Str("edge", cfg.ID).Logger(),
		reg:         reg,
		prefix:      cfg.ID + "-" + strconv.FormatUint(uint64(rand.Uint32()), 36),
		ctx:         ctx,
		cancel:      cancel,
		stop:        make(chan struct{}),
		s3HTTP:      s3Client(cfg.S3Addr),
	}
	var err error
	if g.m, err = newMetrics(reg, &g.queued); err != nil {
		cancel()
		return nil, err
	}
	m := g.m
	g.hub = newHub(d.NC, m, cfg.DeliverBuffer, g.log)
	g.sessions = newSessionCache(cfg.SessionCheckTTL)
	g.rev = newRevocations(cmp.Or(d.AccessTTL, config.Defaults[config.Auth]().AccessTTL))
	g.userLimits = newKeyedLimiter(cfg.HTTPUserLimit, cfg.HTTPUserBurst)
	g.publicLimits = newKeyedLimiter(cfg.HTTPPublicLimit, cfg.HTTPPublicBurst)
	g.upgrader = gws.NewUpgrader(events{g}, &gws.ServerOption{
		ParallelEnabled: true,
		ParallelGolimit: cfg.Parallel,
		// Backstop only: frameGuard refuses bigger frames first, with our close code.
		// Compression stays off, so a frame's length is its message's length.
		ReadMaxPayloadSize: wire.MaxFrame,
		Logger:             gwsLogger{g.log},
		Recovery:           gws.Recovery,
	})
	if g.mux, err = g.routes(); err != nil {
		cancel()
		return nil, err
	}
	g.live = dynconf.New()
	if err := g.followSettings(); err != nil {
		cancel()
		return nil, err
	}
	if cfg.WriteDelay > 0 {
		g.holding.Store(cfg.WriteDelayAbove < 0)
		g.loops.Add(1)
		go func() { defer g.loops.Done(); g.releaseHeld() }()
	}
	g.loops.Add(5)
	go func() { defer g.loops.Done(); g.resyncOnReconnect() }()
	go func() { defer g.loops.Done(); g.hub.dispatch(g.stop) }()
	go func() { defer g.loops.Done(); g.heartbeat() }()
	go func() { defer g.loops.Done(); g.touch() }()
	go func() { defer g.loops.Done(); g.followRevocations() }()
	return g, nil
}

// ID is this edge's id.
func (g *Gateway) ID() string { return g.cfg.ID }

// Handler serves /ws, /api/v1/..., /healthz, /readyz, /metrics and the web chat app at /.
func (g *Gateway) Handler() http.Handler { return g.mux }

// MarkNotReady makes /readyz answer 503 and /ws refuse new connections, while
// requests on open connections and HTTP calls go on: the first step of a shutdown.
func (g *Gateway) MarkNotReady() { g.notReady.Store(true) }

// Shutdown marks the edge not ready, closes every WebSocket with code 3001 (after
// the frames already queued to it), waits for their session.disconnect calls and
// stops the background loops (deliveries, heartbeats, revocations). It does not close the NATS connection, which the
// caller drains afterwards. If ctx ends first, the remaining connections are cut.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.shutOnce.Do(func() {
		g.MarkNotReady()
		conns, drained := g.hub.close()
		for _, c := range conns {
			c.closeAsync(wire.CloseShutdown, "edge shutting down")
		}
		select {
		case <-drained:
		case <-ctx.Done():
			for _, c := range conns {
				_ = c.sock.NetConn().Close()
			}
			err = fmt.Errorf("gateway shutdown: %w", ctx.Err())
		}
		if werr := g.calls.wait(ctx); werr != nil && err == nil {
			err = fmt.Errorf("gateway shutdown: disconnect calls: %w", werr)
		}
		close(g.stop)
		g.loops.Wait()
		g.cancel()
	})
	return err
}

// ready: not shutting down, connected to NATS, and following session
// revocations (an edge that cannot would accept revoked tokens).
func (g *Gateway) ready() bool {
	return !g.notReady.Load() && g.nc.Status() == nats.CONNECTED && g.rev.following.Load()
}

// newID returns a fresh id under this edge's prefix, from seq.
func (g *Gateway) newID(seq *atomic.Uint64) string {
	return g.prefix + "-" + strconv.FormatUint(seq.Add(1), 36)
}

// tracker counts goroutines that must finish before shutdown completes. Unlike a
// WaitGroup it allows adds while someone is waiting.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
		t.idle = nil
	}
	t.mu.Unlock()
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	idle := t.idle
	t.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gwsLogger sends gws's own error logs to zerolog.
type gwsLogger struct{ log zerolog.Logger }

func (l gwsLogger) Error(v ...any) { l.log.Error().Msg(fmt.Sprint(v...)) }
