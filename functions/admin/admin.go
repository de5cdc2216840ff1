// Package admin is the back office (service im-admin, ops admin.*): operator
// accounts and their sessions, the audit log, and the moderation of users and
// groups. Operators are not chat users: their own table, ids and tokens (an
// operator Signer, another issuer and key), and the endpoint adapter admits an
// operator only to admin ops its role reaches. Changes to users and groups go
// through the account and group domains' own code (bans end sessions the way a
// logout does, a dismissal writes the group's system message), and every one is
// written to the audit log.
package admin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/functions/presence"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Config is the back office's settings (env prefix ADMIN_ in the worker).
type Config struct {
	// LoginFailures failed logins of one operator name within LoginWindow lock
	// it for the rest of the window (each failure is audited).
	LoginFailures int           `env:"LOGIN_FAILURES" envDefault:"5"`
	LoginWindow   time.Duration `env:"LOGIN_WINDOW" envDefault:"15m"`
	// RefusalsAudited: an operator refused this many admin ops (permission) within
	// a minute gets an audit entry (one per minute past it).
	RefusalsAudited int `env:"REFUSALS_AUDITED" envDefault:"5"`
	// ScrapeTargets are the Prometheus endpoints monitoring reads (comma
	// separated): workers' METRICS_ADDR and edges' /metrics. The default is what
	// `go tool task up` runs.
	ScrapeTargets []string `env:"SCRAPE_TARGETS" envSeparator:"," envDefault:"http://127.0.0.1:9101/metrics,http://127.0.0.1:8080/metrics"`
	// SampleEvery is how often monitoring scrapes and alert rules are evaluated.
	SampleEvery time.Duration `env:"SAMPLE_EVERY" envDefault:"5s"`
}

// Accounts are the account domain's changes the back office makes to users
// (functions/account ban.go implements them): a ban, force logout and password
// reset end the user's sessions the way a logout does.
type Accounts interface {
	Ban(ctx context.Context, user int64, until time.Time, reason string) (sessions int, err error)
	Unban(ctx context.Context, user int64) error
	LogoutEverywhere(ctx context.Context, user int64, reason string) (sessions int, err error)
	ResetPassword(ctx context.Context, user int64, password string) (sessions int, err error)
}

// Groups are the group domain's changes the back office makes (functions/group
// platform.go implements them): the group's own transactions and system messages.
type Groups interface {
	PlatformDismiss(ctx context.Context, group int64) error
	PlatformMuteAll(ctx context.Context, group int64, muted bool) error
	PlatformTransfer(ctx context.Context, group, user int64) error
}

// Forgetter is the send-permission cache (functions/friend Relations): a ban
// makes it forget the user here; other workers hear im.evt.relations.changed.
type Forgetter interface{ Forget(users ...int64) }

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB     *sql.DB
	Redis  redis.UniversalClient
	NC     *nats.Conn
	Signer *auth.Signer // operator tokens (auth.NewOperatorSigner)
	// Accounts and Groups are the account and group domains' services, whose code
	// the back office's changes run.
	Accounts  Accounts
	Groups    Groups
	Relations Forgetter          // may be nil
	Presence  *presence.Registry // may be nil: devices show offline
	Log       zerolog.Logger
	Config    Config
}

// Service implements the admin endpoints.
type Service struct {
	db       *sql.DB
	rdb      redis.UniversalClient
	nc       *nats.Conn
	signer   *auth.Signer
	accounts Accounts
	groups   Groups
	rel      Forgetter
	presence *presence.Registry
	log      zerolog.Logger
	cfg      Config
	now      func() time.Time
	hashing  chan struct{}
	samples  *sampler
	http     *http.Client
}

// New returns the admin service.
func New(d Deps) *Service {
	s := &Service{db: d.DB, rdb: d.Redis, nc: d.NC, signer: d.Signer, accounts: d.Accounts, groups: d.Groups, rel: d.Relations, presence: d.Presence,
		log: d.Log, cfg: config.WithDefaults(d.Config), now: time.Now, hashing: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), http: &http.Client{Timeout: 10 * time.Second}}
	s.samples = &sampler{keep: max(2, int(time.Hour/s.cfg.SampleEvery))}
	return s
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("admin.login", s.login),
		endpoint.Handle("admin.logout", guarded(s, s.logout)),
		endpoint.Handle("admin.me", guarded(s, s.me)),
		endpoint.Handle("admin.totp.setup", guarded(s, s.totpSetup)),
		endpoint.Handle("admin.totp.enable", guarded(s, s.totpEnable)),
		endpoint.Handle("admin.operators.list", guarded(s, s.operators)),
		endpoint.Handle("admin.operators.create", guarded(s, s.createOperator)),
		endpoint.Handle("admin.operators.update", guarded(s, s.updateOperator)),
		endpoint.Handle("admin.audit.list", guarded(s, s.auditList)),
		endpoint.Handle("admin.users.list", guarded(s, s.users)),
		endpoint.Handle("admin.users.get", guarded(s, s.user)),
		endpoint.Handle("admin.users.ban", guarded(s, s.ban)),
		endpoint.Handle("admin.users.unban", guarded(s, s.unban)),
		endpoint.Handle("admin.users.logout", guarded(s, s.forceLogout)),
		endpoint.Handle("admin.users.password.reset", guarded(s, s.resetPassword)),
		endpoint.Handle("admin.groups.list", guarded(s, s.groupList)),
		endpoint.Handle("admin.groups.get", guarded(s, s.groupGet)),
		endpoint.Handle("admin.groups.dismiss", guarded(s, s.groupDismiss)),
		endpoint.Handle("admin.groups.mute", guarded(s, s.groupMute)),
		endpoint.Handle("admin.groups.transfer", guarded(s, s.groupTransfer)),
		endpoint.Handle("admin.monitoring.metrics", guarded(s, s.metrics)),
		endpoint.Handle("admin.monitoring.health", guarded(s, s.health)),
		endpoint.Handle("admin.alerts.list", guarded(s, s.alertsList)),
		endpoint.Handle("admin.alerts.set", guarded(s, s.alertsSet)),
		endpoint.Handle("admin.alerts.delete", guarded(s, s.alertsDelete)),
	}
}

// actor is the operator calling an admin op, as its live session says.
type actor struct {
	ID       int64
	Username string
	Role     string
	IP       string
	session  string
}

// guarded checks, before h, that the caller's operator session is live (not
// logged out, not expired) and its operator not disabled, and that the role its
// token carries is still the operator's (a role change ends its sessions
// anyway). The adapter has already checked the token's role against the op's.
func guarded[Req, Resp any](s *Service, h func(context.Context, actor, Req) (Resp, error)) func(context.Context, endpoint.Caller, Req) (Resp, error) {
	return func(ctx context.Context, c endpoint.Caller, r Req) (Resp, error) {
		var zero Resp
		a, err := s.session(ctx, c)
		if err != nil {
			return zero, err
		}
		return h(ctx, a, r)
	}
}

var errSessionEnded = imerr.New(imerr.Unauthorized, "operator session ended: log in again")

func (s *Service) session(ctx context.Context, c endpoint.Caller) (actor, error) {
	if c.SessionID == "" || c.UserID <= 0 {
		return actor{}, errSessionEnded
	}
	var a actor
	var disabled bool
	var expires time.Time
	var revoked sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT o.id, o.username, o.role, o.disabled, s.expires_at, s.revoked_at
		FROM operator_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.id = ? AND s.operator_id = ?`, c.SessionID, c.UserID).
		Scan(&a.ID, &a.Username, &a.Role, &disabled, &expires, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return actor{}, errSessionEnded
	}
	if err != nil {
		return actor{}, fmt.Errorf("operator session: %w", err)
	}
	if disabled || revoked.Valid || !s.now().Before(expires) || a.Role != c.Role {
		return actor{}, errSessionEnded
	}
	a.IP, a.session = c.ClientIP, c.SessionID
	return a, nil
}

// forgetUser makes every worker's send-permission cache forget user: here at
// once, elsewhere through im.evt.relations.changed.
func (s *Service) forgetUser(user int64) {
	if s.rel != nil {
		s.rel.Forget(user)
	}
	if s.nc == nil {
		return
	}
	b, _ := json.Marshal(wire.RelationsChanged{Users: []int64{user}})
	if err := s.nc.Publish(subject.EvtRelationsChanged, b); err != nil {
		s.log.Warn().Err(err).Int64("user", user).Msg("publish relations.changed")
	}
}

// argon runs fn (password hashing) when a hashing slot is free.
func (s *Service) argon(ctx context.Context, fn func()) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return imerr.Wrap(imerr.Unavailable, ctx.Err(), "busy: try again")
	}
	defer func() { <-s.hashing }()
	fn()
	return nil
}

// roleRank is op.AdminRank, named here for readability.
func roleRank(role string) int { return op.AdminRank(role) }
