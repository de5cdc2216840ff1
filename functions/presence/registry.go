// Package presence knows who is connected, on which devices, and whether they are
// online, away or offline. The connection registry lives in Redis (rebuildable:
// devices register again when they reconnect); last-seen times are kept in MySQL.
//
// A user's live connections are one Redis hash conns:{s<n>}:<uid>, field conn id,
// value "<device>|<edge>|<connected ms>|<seen ms>|<away 0|1>". Edges refresh "seen"
// with session.touch every minute; an entry not seen for Stale belongs to an edge
// that died and counts for nothing. The sorted sets presence:online:{s<n>} hold the
// users announced online, scored by their last activity: a user enters one when a
// connection registers (that is the online announcement), and leaves it when the
// last live connection is gone (the offline one), either at a disconnect followed
// by a grace period, or found by the sweeper once an edge stopped touching.
//
// n is the user id modulo onlineShards. The scripts change a user's hash and its
// shard of the online set together, so both keys carry the same hash tag {s<n>} and
// live in one slot of a Redis Cluster; the shards spread the online sets over the
// cluster's nodes.
package presence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/wire"
)

// onlineShards is how many sorted sets hold the users announced online.
const onlineShards = 32

func shardTag(uid int64) string { return "{s" + strconv.FormatInt(uid%onlineShards, 10) + "}" }

// onlineKey is the shard of the online set that holds uid.
func onlineKey(uid int64) string { return "presence:online:" + shardTag(uid) }

// ConnsKey is the Redis hash of uid's live connections.
func ConnsKey(uid int64) string { return "conns:" + shardTag(uid) + ":" + strconv.FormatInt(uid, 10) }

// connTTL bounds how long a user's connection hash outlives its last connect.
const connTTL = 24 * time.Hour

// Registry registers connections and answers presence.
type Registry struct {
	rdb   redis.UniversalClient
	stale time.Duration
	now   func() time.Time
}

// NewRegistry returns a Registry; connections not touched for stale are dead.
func NewRegistry(rdb redis.UniversalClient, stale time.Duration) *Registry {
	return &Registry{rdb: rdb, stale: stale, now: time.Now}
}

// parse reads a connection's value (four fields before the away flag existed).
const parseLua = `
local function parse(v)
  local d, e, t, seen, rest = string.match(v, '^([^|]*)|([^|]*)|(%d+)|(%d+)(.*)$')
  if d == nil then return nil end
  return d, e, tonumber(t), tonumber(seen), rest == '|1'
end
`

// connectScript registers ARGV conn and applies the device limit: stale entries
// are dropped, another connection of the same device is replaced, and when more
// than ARGV[max] devices remain the policy either evicts the oldest other devices'
// connections or refuses this one. Unless refused, the user enters the online set.
// It returns {devices, came online 0|1, evicted conn ids...}, or {"refused"}.
var connectScript = redis.NewScript(parseLua + `
local key, online, conn, device, value = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local maxDevices, policy, ttl, staleBefore, uid, now = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local all = redis.call('HGETALL', key)
local kicked, stale, devices, owner = {}, {}, {}, {}
for i = 1, #all, 2 do
  local c = all[i]
  local d, _, t, seen = parse(all[i+1])
  if d == nil or seen < staleBefore then
    table.insert(stale, c)
  elseif d == device then
    table.insert(kicked, c)
  else
    owner[c] = d
    if devices[d] == nil or t < devices[d] then devices[d] = t end
  end
end
for _, c in ipairs(stale) do redis.call('HDEL', key, c) end
local n = 1
for _ in pairs(devices) do n = n + 1 end
if n > maxDevices and policy == 'refuse' then return {'refused'} end
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
local came = redis.call('ZADD', online, 'NX', now, uid)
if came == 0 then redis.call('ZADD', online, 'XX', 'GT', now, uid) end
local out = {tostring(n), tostring(came)}
for _, c in ipairs(kicked) do table.insert(out, c) end
return out
`)

// goneScript removes KEYS[1]'s user (ARGV[1]) from the online set when none of
// their connections is live any more (seen since ARGV[2]); otherwise it moves
// their score to their latest activity. It returns 1 when it removed them.
var goneScript = redis.NewScript(parseLua + `
local all = redis.call('HVALS', KEYS[1])
local latest = -1
for _, v in ipairs(all) do
  local d, _, _, seen = parse(v)
  if d ~= nil and seen >= tonumber(ARGV[2]) and seen > latest then latest = seen end
end
if latest < 0 then
  return redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZADD', KEYS[2], 'XX', latest, ARGV[1])
return 0
`)

// touchScript refreshes "seen" of the listed connections that still exist (a
// connection closed meanwhile stays closed) and the user's score if online.
var touchScript = redis.NewScript(parseLua + `
local key, online, uid, now = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local any = false
for i = 3, #ARGV do
  local v = redis.call('HGET', key, ARGV[i])
  if v then
    local d, e, t, _, away = parse(v)
    if d then
      local flag = '0'
      if away then flag = '1' end
      redis.call('HSET', key, ARGV[i], d .. '|' .. e .. '|' .. t .. '|' .. now .. '|' .. flag)
      any = true
    end
  end
end
if any then redis.call('ZADD', online, 'XX', now, uid) end
return 0
`)

// awayScript sets the away flag of one connection; it returns 1 if it exists.
var awayScript = redis.NewScript(parseLua + `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local d, e, t, seen = parse(v)
if d == nil then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], d .. '|' .. e .. '|' .. t .. '|' .. seen .. '|' .. ARGV[2])
return 1
`)

// Connected is what registering a connection did.
type Connected struct {
	Devices    int      // devices of the user connected now, this one included
	Evicted    []string // connections this one pushed out (same device, or the device limit)
	Refused    bool     // one device too many under the refuse policy
	CameOnline bool     // the user was not announced online: announce it
}

// Connect registers connection conn of uid's device on edge, applying the
// device limit (policy kick_oldest or refuse).
func (r *Registry) Connect(ctx context.Context, uid int64, conn, device, edge string, maxDevices int, policy string) (Connected, error) {
	now := r.now()
	ms := strconv.FormatInt(now.UnixMilli(), 10)
	value := device + "|" + edge + "|" + ms + "|" + ms + "|0"
	res, err := connectScript.Run(ctx, r.rdb, []string{ConnsKey(uid), onlineKey(uid)},
		conn, device, value, maxDevices, policy, int(connTTL.Seconds()), now.Add(-r.stale).UnixMilli(), uid, now.UnixMilli()).StringSlice()
	if err != nil {
		return Connected{}, fmt.Errorf("register connection: %w", err)
	}
	if len(res) == 1 && res[0] == "refused" {
		return Connected{Refused: true}, nil
	}
	n, _ := strconv.Atoi(res[0])
	return Connected{Devices: n, CameOnline: res[1] == "1", Evicted: res[2:]}, nil
}

// Disconnect forgets a connection and reports whether uid has a live one left.
func (r *Registry) Disconnect(ctx context.Context, uid int64, conn string) (stillOnline bool, err error) {
	if err := r.rdb.HDel(ctx, ConnsKey(uid), conn).Err(); err != nil {
		return false, fmt.Errorf("unregister connection: %w", err)
	}
	devices, err := r.Devices(ctx, uid)
	if err != nil {
		return false, err
	}
	return len(devices) > 0, nil
}

// Gone takes uid out of the online set if none of their connections is live,
// and reports whether it did (the offline announcement is then the caller's).
func (r *Registry) Gone(ctx context.Context, uid int64) (bool, error) {
	n, err := goneScript.Run(ctx, r.rdb, []string{ConnsKey(uid), onlineKey(uid)}, uid, r.now().Add(-r.stale).UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("presence gone: %w", err)
	}
	return n == 1, nil
}

// Touch refreshes the connections an edge still holds, one pipelined script call
// per user.
func (r *Registry) Touch(ctx context.Context, conns []wire.TouchConn) error {
	byUser := map[int64][]any{}
	for _, c := range conns {
		byUser[c.UserID] = append(byUser[c.UserID], c.ConnID)
	}
	now := r.now().UnixMilli()
	pipe := r.rdb.Pipeline()
	for uid, cs := range byUser {
		touchScript.Eval(ctx, pipe, []string{ConnsKey(uid), onlineKey(uid)}, append([]any{uid, now}, cs...)...)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("touch connections: %w", err)
	}
	return nil
}

// SetAway marks one connection away (idle) or back; it reports whether the
// connection exists.
func (r *Registry) SetAway(ctx context.Context, uid int64, conn string, away bool) (bool, error) {
	flag := "0"
	if away {
		flag = "1"
	}
	n, err := awayScript.Run(ctx, r.rdb, []string{ConnsKey(uid)}, conn, flag).Int()
	if err != nil {
		return false, fmt.Errorf("set away: %w", err)
	}
	return n == 1, nil
}

// Device is one device's live state.
type Device struct {
	Away bool  // every live connection of the device is away
	Seen int64 // unix ms of the latest activity its edges reported
}

// Devices returns the user's devices with a live connection.
func (r *Registry) Devices(ctx context.Context, uid int64) (map[string]Device, error) {
	vals, err := r.rdb.HVals(ctx, ConnsKey(uid)).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: %w", err)
	}
	return r.devices(vals), nil
}

func (r *Registry) devices(vals []string) map[string]Device {
	staleBefore := r.now().Add(-r.stale).UnixMilli()
	out := map[string]Device{}
	for _, v := range vals {
		parts := strings.Split(v, "|")
		if len(parts) < 4 {
			continue
		}
		seen, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || seen < staleBefore {
			continue
		}
		away := len(parts) > 4 && parts[4] == "1"
		d, ok := out[parts[0]]
		if !ok {
			d = Device{Away: true}
		}
		d.Away = d.Away && away
		d.Seen = max(d.Seen, seen)
		out[parts[0]] = d
	}
	return out
}

// Status is a user's presence now.
type Status struct {
	Online bool // some device has a live connection
	Away   bool // online, and every live connection is away
}

// Statuses answers for each user, in one round trip.
func (r *Registry) Statuses(ctx context.Context, users []int64) (map[int64]Status, error) {
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(users))
	for i, u := range users {
		cmds[i] = pipe.HVals(ctx, ConnsKey(u))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("presence: %w", err)
	}
	out := make(map[int64]Status, len(users))
	for i, u := range users {
		devs := r.devices(cmds[i].Val())
		st := Status{Online: len(devs) > 0, Away: len(devs) > 0}
		for _, d := range devs {
			st.Away = st.Away && d.Away
		}
		out[u] = st
	}
	return out, nil
}

// Announced reports which of users are announced online (in the online set):
// one round trip however many (friends of a user changing presence).
func (r *Registry) Announced(ctx context.Context, users []int64) ([]int64, error) {
	if len(users) == 0 {
		return nil, nil
	}
	// One ZMSCORE per shard the users fall in, pipelined.
	byShard := map[int64][]int64{}
	for _, u := range users {
		byShard[u%onlineShards] = append(byShard[u%onlineShards], u)
	}
	pipe := r.rdb.Pipeline()
	type shardCmd struct {
		users []int64
		cmd   *redis.FloatSliceCmd
	}
	cmds := make([]shardCmd, 0, len(byShard))
	for _, us := range byShard {
		members := make([]string, len(us))
		for i, u := range us {
			members[i] = strconv.FormatInt(u, 10)
		}
		cmds = append(cmds, shardCmd{us, pipe.ZMScore(ctx, onlineKey(us[0]), members...)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("presence announced: %w", err)
	}
	var out []int64
	for _, c := range cmds {
		for i, s := range c.cmd.Val() {
			if s != 0 {
				out = append(out, c.users[i])
			}
		}
	}
	return out, nil
}

// Stale lists users announced online whose latest activity is older than the
// stale window (their edge stopped touching): candidates for Gone.
func (r *Registry) Stale(ctx context.Context, limit int) ([]int64, error) {
	upTo := strconv.FormatInt(r.now().Add(-r.stale).UnixMilli(), 10)
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, onlineShards)
	for n := range int64(onlineShards) {
		cmds[n] = pipe.ZRangeByScore(ctx, onlineKey(n), &redis.ZRangeBy{Min: "-inf", Max: upTo, Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("presence stale: %w", err)
	}
	out := make([]int64, 0, limit)
	for _, c := range cmds {
		for _, s := range c.Val() {
			if len(out) == limit {
				return out, nil
			}
			if u, err := strconv.ParseInt(s, 10, 64); err == nil {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

// OnlineCount is how many users are announced online (the back office's
// monitoring).
func (r *Registry) OnlineCount(ctx context.Context) (int64, error) {
	cmds := make([]*redis.IntCmd, onlineShards)
	pipe := r.rdb.Pipeline()
	for i := range cmds {
		cmds[i] = pipe.ZCard(ctx, onlineKey(int64(i))) // uid i lives in shard i
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("presence: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}
