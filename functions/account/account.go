// Package account serves accounts and sessions: register, login, refresh, logout,
// profiles, devices, and the session.connect/disconnect calls the edge makes for
// every WebSocket (device limit, revocation, bans).
package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/functions/deliver"
	"natter/functions/presence"
	"natter/functions/sensitive"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/password"
	"natter/shared/subject"
	"natter/shared/username"
	"natter/shared/wire"
)

// Config is the account domain's settings (env prefix ACCOUNT_ in the worker).
type Config struct {
	MaxDevices int `env:"MAX_DEVICES" envDefault:"5"`
	// DevicePolicy says what happens when one more device connects than MaxDevices:
	// "kick_oldest" closes the longest-connected other device, "refuse" rejects the
	// new one with conflict.
	DevicePolicy string `env:"DEVICE_POLICY" envDefault:"kick_oldest"`
	// Failed logins per account (guard.go): LoginFailures within LoginWindow lock
	// the account for LoginLockout, doubled per further failure up to
	// LoginLockoutMax.
	LoginFailures   int           `env:"LOGIN_FAILURES" envDefault:"5"`
	LoginWindow     time.Duration `env:"LOGIN_WINDOW" envDefault:"15m"`
	LoginLockout    time.Duration `env:"LOGIN_LOCKOUT" envDefault:"1m"`
	LoginLockoutMax time.Duration `env:"LOGIN_LOCKOUT_MAX" envDefault:"15m"`
	RefreshTTL      time.Duration `env:"-"`
}

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB      *sql.DB
	Redis   redis.UniversalClient
	NC      *nats.Conn // events
	Deliver *deliver.Deliverer
	Signer  *auth.Signer
	// Relations says whose profile and presence a user may see; the friend
	// domain implements it. Nil shows everything.
	Relations Relations
	// Presence registers connections; Notifier (may be nil) announces changes.
	Presence *presence.Registry
	Notifier *presence.Notifier
	// Files checks avatars (uploaded images); the file domain implements it. Nil
	// refuses avatar changes.
	Files Files
	// Words is the sensitive-word list applied to nicknames; nil: none.
	Words *sensitive.List
	// Live is the runtime configuration (registration open or closed); nil:
	// open.
	Live   *dynconf.Live
	Config Config
}

// Files checks that an uploaded image may be a user's avatar.
type Files interface {
	// Avatar returns the path clients load the image from, when id is user's own
	// ready image uploaded with purpose ("avatar").
	Avatar(ctx context.Context, user, id int64, purpose string) (string, error)
}

// Relations decides whose profile and presence a user may see.
type Relations interface {
	Knows(ctx context.Context, viewer, user int64) (bool, error)
	PresenceVisible(ctx context.Context, viewer int64, users []int64) (map[int64]bool, error)
}

// Service implements the account endpoints.
type Service struct {
	db       *sql.DB
	rdb      redis.UniversalClient
	nc       *nats.Conn
	deliver  *deliver.Deliverer
	signer   *auth.Signer
	rel      Relations
	presence *presence.Registry
	notifier *presence.Notifier
	files    Files
	words    *sensitive.List
	live     *dynconf.Live
	cfg      Config
	now      func() time.Time
	guard    *loginGuard
	act      *activity // nil until Run: each connect and disconnect writes at once
	// hashing bounds concurrent argon2id work: each hash takes ~20-40 ms of CPU
	// and 19 MiB, and a burst of logins must not starve every other request.
	hashing chan struct{}
}

// New returns the account service.
func New(d Deps) *Service {
	cfg := config.WithDefaults(d.Config)
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = config.Defaults[config.Auth]().RefreshTTL
	}
	s := &Service{db: d.DB, rdb: d.Redis, nc: d.NC, deliver: d.Deliver, signer: d.Signer, rel: d.Relations,
		presence: d.Presence, notifier: d.Notifier, files: d.Files, words: d.Words, live: d.Live, cfg: cfg, now: time.Now,
		hashing: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	s.guard = &loginGuard{rdb: d.Redis, nc: d.NC, cfg: cfg, now: s.now}
	return s
}

// Run does the domain's background work until ctx ends: session activity is
// then written in batches, once a second (see activity).
func (s *Service) Run(ctx context.Context, log zerolog.Logger) {
	s.act = newActivity(s.db, log, time.Second)
	go s.act.run(ctx)
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("account.register", s.register),
		endpoint.Handle("account.login", s.login),
		endpoint.Handle("account.refresh", s.refresh),
		endpoint.Handle("account.logout", s.logout),
		endpoint.Handle("account.profile.get", s.profile),
		endpoint.Handle("account.profile.update", s.updateProfile),
		endpoint.Handle("account.devices", s.devices),
		endpoint.Handle("session.connect", s.connect),
		endpoint.Handle("session.disconnect", s.disconnect),
		endpoint.Handle("session.touch", s.touch),
		endpoint.Handle("session.check", s.check),
		endpoint.Handle("session.groups", s.groups),
		endpoint.Handle("account.device.logout", s.deviceLogout),
		endpoint.Handle("account.logout.all", s.logoutAll),
		endpoint.Handle("account.password.change", s.passwordChange),
		endpoint.Handle("account.delete", s.deleteAccount),
		endpoint.Handle("presence.get", s.presenceGet),
		endpoint.Handle("presence.set", s.presenceSet),
	}
}

func (s *Service) register(ctx context.Context, _ endpoint.Caller, r RegisterReq) (RegisterResp, error) {
	if s.live != nil && !s.live.Bool(dynconf.RegistrationOpen, true) {
		return RegisterResp{}, imerr.New(imerr.Forbidden, "registration is closed")
	}
	name, err := username.Canonical(r.Username)
	if err != nil {
		return RegisterResp{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	var hash string
	if err := s.argon(ctx, func() { hash = HashPassword(r.Password) }); err != nil {
		return RegisterResp{}, err
	}
	nick := r.Nickname
	if nick == "" {
		nick = r.Username // as typed: "Alice" stays "Alice" where others see it
		if strings.ToLower(nick) != name {
			nick = name
		}
	}
	if nick, err = s.words.Apply("nickname", nick); err != nil {
		return RegisterResp{}, err
	}
	var key any
	if r.ClientID != "" {
		key = r.ClientID
	}
	res, err := s.db.ExecContext(ctx, "INSERT INTO users (username, password_hash, nickname, register_key) VALUES (?, ?, ?, ?)", name, hash, nick, key)
	if db.IsDuplicate(err) {
		// A retry with the same client_id gets its first answer. Nothing else
		// about the existing user is told: not whether the password matches.
		var id int64
		var stored sql.NullString
		if lerr := s.db.QueryRowContext(ctx, "SELECT id, register_key FROM users WHERE username = ?", name).Scan(&id, &stored); lerr == nil &&
			r.ClientID != "" && stored.String == r.ClientID {
			return RegisterResp{UserID: id}, nil
		}
		return RegisterResp{}, imerr.New(imerr.Conflict, "username %q is taken", name)
	}
	if err != nil {
		return RegisterResp{}, fmt.Errorf("insert user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return RegisterResp{}, fmt.Errorf("user id: %w", err)
	}
	return RegisterResp{UserID: id}, nil
}

type userAuth struct {
	hash   string
	banned bool
	role   string
}

func (s *Service) lookupUser(ctx context.Context, username string) (int64, userAuth, error) {
	var id int64
	var u userAuth
	err := s.db.QueryRowContext(ctx, "SELECT id, password_hash, "+bannedNow("")+", role FROM users WHERE username = ?", s.now(), username).
		Scan(&id, &u.hash, &u.banned, &u.role)
	return id, u, err
}

var errBadCredentials = imerr.New(imerr.Unauthorized, "wrong username or password")

func (s *Service) login(ctx context.Context, c endpoint.Caller, r LoginReq) (Tokens, error) {
	// The canonical form, as register stored it; a name that has none cannot be
	// anyone's, but costs the same as a wrong password.
	name, nerr := username.Canonical(r.Username)
	if nerr != nil {
		_ = s.argon(ctx, func() { password.CheckNobody(r.Password) })
		return Tokens{}, errBadCredentials
	}
	if err := s.guard.check(ctx, name); err != nil {
		return Tokens{}, err
	}
	id, u, err := s.lookupUser(ctx, name)
	if errors.Is(err, sql.ErrNoRows) {
		_ = s.argon(ctx, func() { password.CheckNobody(r.Password) })
		s.guard.failed(ctx, name, 0, c)
		return Tokens{}, errBadCredentials
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("lookup user: %w", err)
	}
	var ok bool
	if aerr := s.argon(ctx, func() { ok, err = checkPassword(u.hash, r.Password) }); aerr != nil {
		return Tokens{}, aerr
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("user %d: %w", id, err)
	}
	if !ok {
		s.guard.failed(ctx, name, id, c)
		return Tokens{}, errBadCredentials
	}
	s.guard.succeeded(ctx, name)
	if u.banned {
		return Tokens{}, imerr.New(imerr.Forbidden, "account banned")
	}
	now := s.now()
	sid := ids.Token(12)
	refresh, rhash := auth.NewRefresh(sid)
	var replaced []string
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		// One live session per device: logging in again on a device ends the old one.
		rows, err := tx.QueryContext(ctx, "SELECT id FROM sessions WHERE user_id = ? AND device_id = ? AND revoked_at IS NULL FOR UPDATE", id, r.DeviceID)
		if err != nil {
			return err
		}
		replaced = replaced[:0]
		for rows.Next() {
			var old string
			if err := rows.Scan(&old); err != nil {
				rows.Close()
				return err
			}
			replaced = append(replaced, old)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(replaced) > 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND device_id = ? AND revoked_at IS NULL", now, id, r.DeviceID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO sessions (id, user_id, device_id, platform, app_version, refresh_hash, created_at, refreshed_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			sid, id, r.DeviceID, r.Platform, r.AppVersion, rhash, now, now, now.Add(s.cfg.RefreshTTL))
		return err
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("create session: %w", err)
	}
	for _, old := range replaced {
		s.revoked(ctx, id, old, "logged in again on this device")
	}
	access, exp, err := s.signer.Issue(auth.Claims{UserID: id, SessionID: sid, DeviceID: r.DeviceID, Role: u.role}, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{UserID: id, SessionID: sid, AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(exp.Sub(now).Seconds())}, nil
}

var errBadRefresh = imerr.New(imerr.Unauthorized, "refresh token invalid or expired")

func (s *Service) refresh(ctx context.Context, _ endpoint.Caller, r RefreshReq) (Tokens, error) {
	sid, hash, err := auth.ParseRefresh(r.RefreshToken)
	if err != nil {
		return Tokens{}, errBadRefresh
	}
	now := s.now()
	var out Tokens
	stolen := false
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		stolen = false
		var (
			uid      int64
			device   string
			stored   []byte
			previous []byte
			expires  time.Time
			revoked  sql.NullTime
			banned   bool
			userRole string
		)
		err := tx.QueryRowContext(ctx, `SELECT s.user_id, s.device_id, s.refresh_hash, s.prev_refresh_hash, s.expires_at, s.revoked_at, `+bannedNow("u.")+`, u.role
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ? FOR UPDATE`, now, sid).
			Scan(&uid, &device, &stored, &previous, &expires, &revoked, &banned, &userRole)
		if errors.Is(err, sql.ErrNoRows) {
			return errBadRefresh
		}
		if err != nil {
			return err
		}
		if revoked.Valid || now.After(expires) {
			return errBadRefresh
		}
		if !auth.HashEqual(stored, hash) {
			if len(previous) == 0 || !auth.HashEqual(previous, hash) {
				return errBadRefresh // a guess: nothing to end
			}
			// The token this session's last refresh replaced, presented again:
			// someone holds a copy. End the session for both holders.
			if _, err := tx.ExecContext(ctx, "UPDATE sessions SET revoked_at = ? WHERE id = ?", now, sid); err != nil {
				return err
			}
			stolen, out.UserID = true, uid
			return nil
		}
		if banned {
			return imerr.New(imerr.Forbidden, "account banned")
		}
		// Rotate: the presented refresh token stops working.
		next, nextHash := auth.NewRefresh(sid)
		if _, err := tx.ExecContext(ctx, "UPDATE sessions SET prev_refresh_hash = refresh_hash, refresh_hash = ?, refreshed_at = ?, expires_at = ? WHERE id = ?",
			nextHash, now, now.Add(s.cfg.RefreshTTL), sid); err != nil {
			return err
		}
		access, exp, err := s.signer.Issue(auth.Claims{UserID: uid, SessionID: sid, DeviceID: device, Role: userRole}, now)
		if err != nil {
			return err
		}
		out = Tokens{UserID: uid, SessionID: sid, AccessToken: access, RefreshToken: next, ExpiresIn: int64(exp.Sub(now).Seconds())}
		return nil
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if stolen {
		logging.From(ctx).Warn().Str("event", "security").Str("session", sid).Int64("user", out.UserID).
			Msg("refresh token reused: session revoked")
		s.revoked(ctx, out.UserID, sid, "refresh token reused: log in again")
		return Tokens{}, imerr.New(imerr.Unauthorized, "refresh token already used: the session has ended, log in again")
	}
	return out, nil
}

func (s *Service) logout(ctx context.Context, c endpoint.Caller, _ Empty) (Empty, error) {
	if c.SessionID == "" {
		return Empty{}, imerr.New(imerr.Unauthorized, "no session")
	}
	// Idempotent: logging out a session that is already revoked succeeds.
	if _, err := s.db.ExecContext(ctx, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
		s.now(), c.SessionID, c.UserID); err != nil {
		return Empty{}, fmt.Errorf("revoke session: %w", err)
	}
	s.revoked(ctx, c.UserID, c.SessionID, "logged out")
	return Empty{}, nil
}

// revoked tells every edge: close the session's connections now, and (through the
// event stream, which edges read on start) refuse its access token until it expires.
func (s *Service) revoked(ctx context.Context, uid int64, sid, reason string) {
	s.deliver.Kick(uid, deliver.Kick{Session: sid, Reason: reason})
	evt, err := json.Marshal(wire.SessionRevoked{UserID: uid, SessionID: sid, At: s.now().UnixMilli()})
	if err == nil {
		err = s.nc.Publish(subject.EvtSessionRevoked, evt)
	}
	if err != nil {
		logging.From(ctx).Error().Err(err).Str("session", sid).Msg("publish session.revoked: edges learn it only from connects")
	}
}

// profile answers for users the caller knows (friends, a request between them, a
// shared conversation) and themselves; anyone else is not_found, as if the id
// did not exist, so sequential ids do not list every username.
func (s *Service) profile(ctx context.Context, c endpoint.Caller, r ProfileReq) (Profile, error) {
	if s.rel != nil {
		ok, err := s.rel.Knows(ctx, c.UserID, r.UserID)
		if err != nil {
			return Profile{}, err
		}
		if !ok {
			return Profile{}, imerr.New(imerr.NotFound, "user %d not found", r.UserID)
		}
	}
	return s.loadProfile(ctx, r.UserID)
}

func (s *Service) loadProfile(ctx context.Context, uid int64) (Profile, error) {
	p := Profile{UserID: uid}
	var created time.Time
	err := s.db.QueryRowContext(ctx, "SELECT username, nickname, avatar, bio, created_at FROM users WHERE id = ?", uid).
		Scan(&p.Username, &p.Nickname, &p.Avatar, &p.Bio, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Profile{}, imerr.New(imerr.NotFound, "user %d not found", uid)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("load profile %d: %w", uid, err)
	}
	p.CreatedAt = ms(created)
	return p, nil
}

func (s *Service) updateProfile(ctx context.Context, c endpoint.Caller, r UpdateProfileReq) (Profile, error) {
	if r.UserID != 0 && r.UserID != c.UserID {
		return Profile{}, imerr.New(imerr.Forbidden, "you can only change your own profile")
	}
	if r.Avatar != nil && *r.Avatar != "" {
		path, err := s.avatar(ctx, c.UserID, *r.Avatar)
		if err != nil {
			return Profile{}, err
		}
		r.Avatar = &path
	}
	if r.Nickname != nil {
		nick, err := s.words.Apply("nickname", *r.Nickname)
		if err != nil {
			return Profile{}, err
		}
		r.Nickname = &nick
	}
	// COALESCE keeps absent fields; all three are set in one statement.
	_, err := s.db.ExecContext(ctx, "UPDATE users SET nickname = COALESCE(?, nickname), avatar = COALESCE(?, avatar), bio = COALESCE(?, bio) WHERE id = ?",
		r.Nickname, r.Avatar, r.Bio, c.UserID)
	if err != nil {
		return Profile{}, fmt.Errorf("update profile: %w", err)
	}
	return s.loadProfile(ctx, c.UserID)
}

// avatar turns an avatar's file id into the path clients load it from.
func (s *Service) avatar(ctx context.Context, user int64, fileID string) (string, error) {
	if s.files == nil {
		return "", imerr.New(imerr.Unavailable, "avatars are not served here")
	}
	id, err := strconv.ParseInt(fileID, 10, 64)
	if err != nil || id <= 0 {
		return "", imerr.New(imerr.BadRequest, "avatar: the file_id of an image uploaded with purpose avatar, or \"\" to remove it")
	}
	return s.files.Avatar(ctx, user, id, "avatar")
}

func (s *Service) devices(ctx context.Context, c endpoint.Caller, r DevicesReq) (DevicesResp, error) {
	if r.UserID != 0 && r.UserID != c.UserID {
		return DevicesResp{}, imerr.New(imerr.Forbidden, "you can only list your own devices")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, platform, app_version, created_at, refreshed_at, last_active_at, last_ip
		FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at`, c.UserID, s.now())
	if err != nil {
		return DevicesResp{}, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	online, err := s.presence.Devices(ctx, c.UserID)
	if err != nil {
		return DevicesResp{}, err
	}
	out := DevicesResp{Devices: []Device{}}
	for rows.Next() {
		var d Device
		var created, refreshed time.Time
		var active sql.NullTime
		if err := rows.Scan(&d.SessionID, &d.DeviceID, &d.Platform, &d.AppVersion, &created, &refreshed, &active, &d.LastIP); err != nil {
			return DevicesResp{}, fmt.Errorf("scan session: %w", err)
		}
		d.LoggedInAt, d.RefreshedAt = ms(created), ms(refreshed)
		if active.Valid {
			d.LastActive = ms(active.Time)
		}
		if s.act != nil { // noted by this worker, not yet written
			if n, ok := s.act.overlay(d.SessionID, c.UserID); ok {
				d.LastActive = max(d.LastActive, ms(n.at))
				if n.ip != "" {
					d.LastIP = n.ip
				}
			}
		}
		if live, ok := online[d.DeviceID]; ok {
			d.Online, d.Away, d.LastActive = true, live.Away, max(d.LastActive, live.Seen)
		}
		d.Current = d.SessionID == c.SessionID
		out.Devices = append(out.Devices, d)
	}
	return out, rows.Err()
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
