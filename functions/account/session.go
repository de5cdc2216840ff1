package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/functions/deliver"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// A user's live connections are one Redis hash conns:<uid>, field conn id, value
// "<device>|<edge>|<connected ms>|<seen ms>". Edges refresh "seen" with
// session.touch every minute; an entry not seen for PresenceStale belongs to an
// edge that died, and counts for nothing. Presence is rebuildable state: if Redis
// loses it, devices reconnect and register again.
//
// connectScript registers ARGV conn atomically and applies the device limit: stale
// entries are dropped, another connection of the same device is replaced, and when
// more than ARGV[max] distinct devices remain the policy either evicts the oldest
// other devices' connections or refuses this one. It returns the number of
// devices then the evicted conn ids, or {"refused"}.
var connectScript = redis.NewScript(`
local key, conn, device, value = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local maxDevices, policy, ttl, staleBefore = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local all = redis.call('HGETALL', key)
local kicked = {}
local stale = {}
local devices = {}  -- device -> oldest connect ms
local owner = {}    -- conn -> device
for i = 1, #all, 2 do
  local c, v = all[i], all[i+1]
  local d, _, t, seen = string.match(v, '^(.*)|(.*)|(%d+)|(%d+)$')
  if d == nil or tonumber(seen) < staleBefore then
    table.insert(stale, c)
  elseif d == device then
    table.insert(kicked, c)
  else
    owner[c] = d
    local ms = tonumber(t)
    if devices[d] == nil or ms < devices[d] then devices[d] = ms end
  end
end
for _, c in ipairs(stale) do redis.call('HDEL', key, c) end
local n = 1
for _ in pairs(devices) do n = n + 1 end
if n > maxDevices and policy == 'refuse' then
  return {'refused'}
end
while n > maxDevices do
  local oldest, oldestMs = nil, nil
  for d, ms in pairs(devices) do
    if oldestMs == nil or ms < oldestMs then oldest, oldestMs = d, ms end
  end
  devices[oldest] = nil
  for c, d in pairs(owner) do
    if d == oldest then table.insert(kicked, c) end
  end
  n = n - 1
end
for _, c in ipairs(kicked) do redis.call('HDEL', key, c) end
redis.call('HSET', key, conn, value)
redis.call('EXPIRE', key, ttl)
table.insert(kicked, 1, tostring(n))
return kicked
`)

// touchScript refreshes the "seen" time of the listed connections that still
// exist (a connection closed meanwhile stays closed).
var touchScript = redis.NewScript(`
local key, now = KEYS[1], ARGV[1]
for i = 2, #ARGV do
  local v = redis.call('HGET', key, ARGV[i])
  if v then
    local head = string.match(v, '^(.*|.*|%d+)|%d+$')
    if head then redis.call('HSET', key, ARGV[i], head .. '|' .. now) end
  end
end
return 0
`)

// presenceTTL bounds how long a user's connection hash outlives its last connect.
const presenceTTL = 24 * time.Hour

func (s *Service) connect(ctx context.Context, c endpoint.Caller, r wire.ConnectReq) (wire.ConnectResp, error) {
	if r.ConnID == "" || len(r.ConnID) > 128 || strings.Contains(r.ConnID, "|") {
		return wire.ConnectResp{}, imerr.New(imerr.BadRequest, "conn_id required")
	}
	if c.DeviceID == "" || strings.Contains(c.DeviceID, "|") {
		return wire.ConnectResp{}, imerr.New(imerr.Unauthorized, "token has no device")
	}
	if err := s.liveSession(ctx, c); err != nil {
		return wire.ConnectResp{}, err
	}
	now := s.now()
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	value := c.DeviceID + "|" + r.EdgeID + "|" + ms + "|" + ms
	res, err := connectScript.Run(ctx, s.rdb, []string{userKey(c.UserID)},
		r.ConnID, c.DeviceID, value, s.cfg.MaxDevices, s.cfg.DevicePolicy, int(presenceTTL.Seconds()),
		now.Add(-s.cfg.PresenceStale).UnixMilli()).StringSlice()
	if err != nil {
		return wire.ConnectResp{}, fmt.Errorf("register connection: %w", err)
	}
	if len(res) == 1 && res[0] == "refused" {
		return wire.ConnectResp{}, imerr.New(imerr.Conflict, "already connected on %d devices", s.cfg.MaxDevices)
	}
	devices, _ := strconv.Atoi(res[0])
	for _, old := range res[1:] {
		s.deliver.Kick(c.UserID, deliver.Kick{Conn: old, Reason: "signed in on another device"})
	}
	return wire.ConnectResp{Devices: devices}, nil
}

// check answers session.check: whether the caller's session is live and its user
// not banned. Edges ask it for HTTP calls, as session.connect does for a
// WebSocket, and cache the answer briefly.
func (s *Service) check(ctx context.Context, c endpoint.Caller, _ Empty) (wire.SessionCheck, error) {
	if err := s.liveSession(ctx, c); err != nil {
		return wire.SessionCheck{}, err
	}
	return wire.SessionCheck{Live: true}, nil
}

// liveSession checks that the caller's session exists, is neither revoked nor
// expired, and that its user is not banned.
func (s *Service) liveSession(ctx context.Context, c endpoint.Caller) error {
	if c.SessionID == "" || c.UserID == 0 {
		return imerr.New(imerr.Unauthorized, "token has no session")
	}
	var revoked sql.NullTime
	var expires time.Time
	var banned bool
	err := s.db.QueryRowContext(ctx, `SELECT s.revoked_at, s.expires_at, u.banned FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.user_id = ?`, c.SessionID, c.UserID).Scan(&revoked, &expires, &banned)
	if errors.Is(err, sql.ErrNoRows) || revoked.Valid || (err == nil && s.now().After(expires)) {
		return imerr.New(imerr.Unauthorized, "session ended: log in again")
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	if banned {
		return imerr.New(imerr.Forbidden, "account banned")
	}
	return nil
}

func (s *Service) disconnect(ctx context.Context, c endpoint.Caller, r wire.DisconnectReq) (Empty, error) {
	if r.ConnID == "" || c.UserID == 0 {
		return Empty{}, imerr.New(imerr.BadRequest, "conn_id and caller required")
	}
	if err := s.rdb.HDel(ctx, userKey(c.UserID), r.ConnID).Err(); err != nil {
		return Empty{}, fmt.Errorf("unregister connection: %w", err)
	}
	return Empty{}, nil
}

// touch refreshes the connections an edge still holds, one pipelined script call
// per user.
func (s *Service) touch(ctx context.Context, _ endpoint.Caller, r wire.TouchReq) (Empty, error) {
	if len(r.Conns) > wire.MaxTouch {
		return Empty{}, imerr.New(imerr.TooLarge, "at most %d connections per touch", wire.MaxTouch)
	}
	byUser := map[int64][]any{}
	for _, c := range r.Conns {
		if c.UserID <= 0 || c.ConnID == "" {
			return Empty{}, imerr.New(imerr.BadRequest, "conns: user and conn id required")
		}
		byUser[c.UserID] = append(byUser[c.UserID], c.ConnID)
	}
	now := s.now().UnixMilli()
	pipe := s.rdb.Pipeline()
	for uid, conns := range byUser {
		touchScript.Eval(ctx, pipe, []string{userKey(uid)}, append([]any{now}, conns...)...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Empty{}, fmt.Errorf("touch connections: %w", err)
	}
	return Empty{}, nil
}

// onlineDevices returns the device ids with a live (recently seen) connection.
func (s *Service) onlineDevices(ctx context.Context, uid int64) (map[string]bool, error) {
	vals, err := s.rdb.HVals(ctx, userKey(uid)).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	staleBefore := s.now().Add(-s.cfg.PresenceStale).UnixMilli()
	out := make(map[string]bool, len(vals))
	for _, v := range vals {
		parts := strings.Split(v, "|")
		if len(parts) != 4 {
			continue
		}
		if seen, err := strconv.ParseInt(parts[3], 10, 64); err == nil && seen >= staleBefore {
			out[parts[0]] = true
		}
	}
	return out, nil
}
