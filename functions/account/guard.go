package account

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/wire"
)

// loginGuard slows password guessing per account, whatever transport or address
// the guesses come from (edges limit per address). It counts failed logins per
// username in Redis; LoginFailures of them within LoginWindow lock the username
// for LoginLockout, doubling with each further failure up to LoginLockoutMax.
// While locked every attempt is refused, the right password too; the lock ends
// by itself, and a successful login clears the count. Each lock is logged and
// published on im.evt.security.login_locked (JetStream) for the audit trail.
//
// Someone can lock a victim out by failing on purpose: that is the price of
// stopping the guesses, bounded by LoginLockoutMax. If Redis is away logins go on
// unguarded (Redis holds rebuildable state only) and the failure is logged.
type loginGuard struct {
	rdb redis.UniversalClient
	nc  *nats.Conn
	cfg Config
	now func() time.Time
}

// failScript counts one failure (KEYS[1], expiring after the window ARGV[1] ms)
// and, from the ARGV[2]th on, locks (KEYS[2]) for ARGV[3] ms doubled per extra
// failure, at most ARGV[4] ms. It returns the failures and the lock in ms.
var failScript = redis.NewScript(`
local fails = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local over = fails - tonumber(ARGV[2])
if over < 0 then return {fails, 0} end
local lock = math.min(tonumber(ARGV[3]) * math.pow(2, math.min(over, 30)), tonumber(ARGV[4]))
redis.call('SET', KEYS[2], fails, 'PX', math.floor(lock))
return {fails, math.floor(lock)}
`)

// A username's failure count and lock are changed together by failScript, so they
// share a hash tag (one Redis Cluster slot).
func failKey(name string) string { return "login:{" + name + "}:fails" }
func lockKey(name string) string { return "login:{" + name + "}:lock" }

// check refuses a login while the username is locked.
func (g *loginGuard) check(ctx context.Context, name string) error {
	ms, err := g.rdb.PTTL(ctx, lockKey(name)).Result()
	if err != nil {
		logging.From(ctx).Warn().Err(err).Msg("login guard unavailable: login not rate limited per account")
		return nil
	}
	if ms > 0 {
		return imerr.New(imerr.RateLimited, "too many failed logins for this account: try again in %d seconds", int(ms.Seconds())+1)
	}
	return nil
}

// failed counts a failed login of name (uid 0: no such user) and locks it when
// the count says so.
func (g *loginGuard) failed(ctx context.Context, name string, uid int64, c endpoint.Caller) {
	res, err := failScript.Run(ctx, g.rdb, []string{failKey(name), lockKey(name)},
		g.cfg.LoginWindow.Milliseconds(), g.cfg.LoginFailures, g.cfg.LoginLockout.Milliseconds(), g.cfg.LoginLockoutMax.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 2 {
		logging.From(ctx).Warn().Err(err).Msg("login guard unavailable: failure not counted")
		return
	}
	if res[1] == 0 {
		return
	}
	ev := wire.LoginLocked{Username: name, UserID: uid, Failures: res[0], LockedMs: res[1], At: g.now().UnixMilli(), RequestID: c.RequestID, ClientIP: c.ClientIP}
	logging.From(ctx).Warn().Str("event", "security").Str("username", name).Int64("user", uid).Int64("failures", res[0]).
		Int64("locked_ms", res[1]).Str("client_ip", c.ClientIP).Msg("account locked after failed logins")
	b, err := json.Marshal(ev)
	if err == nil {
		err = g.nc.Publish(subject.EvtLoginLocked, b)
	}
	if err != nil {
		logging.From(ctx).Error().Err(err).Msg("publish login_locked")
	}
}

// succeeded clears name's failures.
func (g *loginGuard) succeeded(ctx context.Context, name string) {
	if err := g.rdb.Del(ctx, failKey(name)).Err(); err != nil && !errors.Is(err, redis.Nil) {
		logging.From(ctx).Warn().Err(err).Str("username", name).Msg("clear login failures")
	}
}

// lockedFor is how long name stays locked (tests).
func (g *loginGuard) lockedFor(ctx context.Context, name string) time.Duration {
	ms, _ := g.rdb.PTTL(ctx, lockKey(name)).Result()
	return ms
}
