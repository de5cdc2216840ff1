package push

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/wire"
)

// Collapsing bursts. Per user and conversation, Redis holds a window (hash
// push:c:{<user>:<conv>}, field u: its end in unix ms; l: the latest held seq;
// m: a held message mentions the user) and the seqs held in it (set
// push:h:{<user>:<conv>}). A message outside a window pushes at once and opens
// one; a message inside is held. The first held message schedules, on the
// worker that held it, a flush at the window's end: one push for the latest
// held message with the count of them all, which opens the next window. So a
// conversation pushes a user at most once per window, whichever worker handles
// its events. Holding a seq twice (a redelivered event) counts it once.
//
// A held event is acknowledged once held: if the worker that would flush dies
// first, its flush is lost, and the held messages are counted by the next push
// of that conversation (the next message after the window) instead.

// collapseScript: KEYS window hash, held set; ARGV seq, now ms, window ms,
// mentioned 0|1. Returns {1, n}: push now, standing for n held messages besides
// this one; {2, ms}: held first, flush in ms; {0, 0}: held.
var collapseScript = redis.NewScript(`
local k, hs = KEYS[1], KEYS[2]
local seq, now, win, men = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local u = tonumber(redis.call('HGET', k, 'u') or '0')
if now >= u then
  if redis.call('SISMEMBER', hs, seq) == 1 then return {0, 0} end
  local n = redis.call('SCARD', hs)
  redis.call('DEL', hs)
  redis.call('HSET', k, 'u', now + win, 'l', 0, 'm', 0)
  redis.call('PEXPIRE', k, win * 10)
  return {1, n}
end
if redis.call('SADD', hs, seq) == 0 then return {0, 0} end
redis.call('PEXPIRE', hs, win * 10)
if seq > tonumber(redis.call('HGET', k, 'l') or '0') then redis.call('HSET', k, 'l', seq) end
if men == '1' then redis.call('HSET', k, 'm', 1) end
if redis.call('SCARD', hs) == 1 then return {2, u - now} end
return {0, 0}
`)

// flushScript: KEYS window hash, held set; ARGV now ms, window ms. Returns {n,
// latest seq, mentioned}: push for them now (a new window opens), or {0, 0, 0}.
var flushScript = redis.NewScript(`
local k, hs = KEYS[1], KEYS[2]
local now, win = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = redis.call('SCARD', hs)
if n == 0 then return {0, 0, 0} end
local l = tonumber(redis.call('HGET', k, 'l') or '0')
local m = tonumber(redis.call('HGET', k, 'm') or '0')
redis.call('DEL', hs)
redis.call('HSET', k, 'u', now + win, 'l', 0, 'm', 0)
redis.call('PEXPIRE', k, win * 10)
return {n, l, m}
`)

func collapseKeys(user int64, conv string) []string {
	tag := "{" + strconv.FormatInt(user, 10) + ":" + conv + "}"
	return []string{"push:c:" + tag, "push:h:" + tag}
}

// lead is a push to send now for a target, standing for count messages.
type lead struct {
	t     *target
	count int
}

// collapse runs the window of every target in one pipeline and returns the
// pushes to send now; it schedules the flushes of windows it held first.
func (s *Service) collapse(ctx context.Context, msg *wire.Message, ts []*target) ([]lead, error) {
	if s.cfg.Collapse < 0 {
		out := make([]lead, len(ts))
		for i, t := range ts {
			out[i] = lead{t: t, count: 1}
		}
		return out, nil
	}
	win := s.cfg.Collapse.Milliseconds()
	now := s.now().UnixMilli()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ts))
	for i, t := range ts {
		men := "0"
		if t.r.Mentioned {
			men = "1"
		}
		cmds[i] = collapseScript.EvalSha(ctx, pipe, collapseKeys(t.user, msg.ConvID), msg.Seq, now, win, men)
	}
	if _, err := pipe.Exec(ctx); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := collapseScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("push collapse: %w", err)
		}
		return s.collapse(ctx, msg, ts)
	} else if err != nil {
		return nil, fmt.Errorf("push collapse: %w", err)
	}
	var out []lead
	held := 0
	for i, t := range ts {
		res, err := cmds[i].Int64Slice()
		if err != nil || len(res) != 2 {
			return nil, fmt.Errorf("push collapse: %v %w", res, err)
		}
		switch res[0] {
		case 1:
			out = append(out, lead{t: t, count: 1 + int(res[1])})
		case 2:
			held++
			user := t.user
			time.AfterFunc(time.Duration(res[1])*time.Millisecond, func() { s.flush(ctx, user, msg.ConvID) })
		default:
			held++
		}
	}
	if held > 0 {
		s.m.decisions.WithLabelValues("collapsed").Add(float64(held))
	}
	return out, nil
}

// flush sends the push for the messages a window held, if nobody did.
func (s *Service) flush(ctx context.Context, user int64, conv string) {
	if ctx.Err() != nil {
		return
	}
	res, err := flushScript.Run(ctx, s.rdb, collapseKeys(user, conv), s.now().UnixMilli(), s.cfg.Collapse.Milliseconds()).Int64Slice()
	if err != nil || len(res) != 3 {
		s.log.Warn().Err(err).Int64("user", user).Str("conv", conv).Msg("push flush")
		return
	}
	n, seq, mentioned := int(res[0]), res[1], res[2] == 1
	if n == 0 {
		return
	}
	msg, err := s.loadMessage(ctx, conv, seq)
	if err != nil {
		s.log.Warn().Err(err).Str("conv", conv).Int64("seq", seq).Msg("push flush: load message")
		return
	}
	ts, err := s.targets(ctx, msg, user)
	if err == nil {
		var mentions []int64
		if mentioned {
			mentions = []int64{user}
		}
		ts, err = s.decide(ctx, msg, mentions, ts)
	}
	if err == nil && len(ts) > 0 {
		err = s.pushAll(ctx, msg, []lead{{t: ts[0], count: n}}, nil)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Int64("user", user).Str("conv", conv).Msg("push flush")
	}
}
