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
// this one; {2, ms}: held first, flush in ms; {0, 0}: held. A message arriving
// after the window's end while its flush is due (held messages, the flush a
// little late) joins that flush rather than pushing too; once the flush is a
// whole window late (its worker died), the message pushes and counts them.
var collapseScript = redis.NewScript(`
local k, hs = KEYS[1], KEYS[2]
local seq, now, win, men = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local u = tonumber(redis.call('HGET', k, 'u') or '0')
if redis.call('SISMEMBER', hs, seq) == 1 then return {0, 0} end
local n = redis.call('SCARD', hs)
if now >= u and (n == 0 or now >= u + win) then
  redis.call('DEL', hs)
  redis.call('HSET', k, 'u', now + win, 'l', 0, 'm', 0)
  redis.call('PEXPIRE', k, win * 10)
  return {1, n}
end
redis.call('SADD', hs, seq)
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

// lead is a push to send now for a target, standing for count messages;
// trailing when it ends a window.
type lead struct {
	t        *target
	count    int
	trailing bool
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
	flushes := map[int64][]int64{} // delay bucket (ms) -> users whose window it ends
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
			bucket := (res[1] + flushBucket - 1) / flushBucket * flushBucket
			flushes[bucket] = append(flushes[bucket], t.user)
		default:
			held++
		}
	}
	for delay, users := range flushes {
		time.AfterFunc(time.Duration(delay)*time.Millisecond, func() { s.flush(ctx, msg.ConvID, users) })
	}
	if held > 0 {
		s.m.collapsed.Add(float64(held))
	}
	return out, nil
}

// flushBucket (ms) groups the windows of one conversation that end within it
// into one flush: a group's members whose windows one message opened flush
// together, with one query per step rather than one per member.
const flushBucket = 50

// flush sends the pushes for the messages the windows of users held in conv,
// where nobody did yet: one script call per user (pipelined), then per latest
// held message one load, one recipients query, one decision and one badge
// query for all of them.
func (s *Service) flush(ctx context.Context, conv string, users []int64) {
	if ctx.Err() != nil {
		return
	}
	now, win := s.now().UnixMilli(), s.cfg.Collapse.Milliseconds()
	cmds := make([]*redis.Cmd, len(users))
	// A transient Redis error (a failover, a cluster moving slots) would lose the
	// windows' pushes for good: try a few times. A window that a failed attempt did
	// flush answers nothing the next time, so only a partly failed pipeline loses.
	for try := 1; ; try++ {
		pipe := s.rdb.Pipeline()
		for i, u := range users {
			cmds[i] = flushScript.Eval(ctx, pipe, collapseKeys(u, conv), now, win)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if try == 4 {
			s.log.Warn().Err(err).Str("conv", conv).Msg("push flush")
			return
		}
		time.Sleep(time.Duration(try) * 100 * time.Millisecond)
	}
	type held struct {
		count    int
		mentions bool
	}
	bySeq := map[int64]map[int64]held{} // latest held seq -> user -> what the window held
	for i, u := range users {
		res, err := cmds[i].Int64Slice()
		if err != nil || len(res) != 3 || res[0] == 0 {
			continue
		}
		if bySeq[res[1]] == nil {
			bySeq[res[1]] = map[int64]held{}
		}
		bySeq[res[1]][u] = held{count: int(res[0]), mentions: res[2] == 1}
	}
	for seq, hs := range bySeq {
		err := func() error {
			msg, err := s.loadMessage(ctx, conv, seq)
			if err != nil {
				return err
			}
			only := make([]int64, 0, len(hs))
			var mentions []int64
			for u, h := range hs {
				only = append(only, u)
				if h.mentions {
					mentions = append(mentions, u)
				}
			}
			ts, err := s.targets(ctx, msg, only)
			if err != nil {
				return err
			}
			if ts, err = s.decide(ctx, msg, mentions, ts, false); err != nil || len(ts) == 0 {
				return err
			}
			leads := make([]lead, len(ts))
			for i, t := range ts {
				leads[i] = lead{t: t, count: hs[t.user].count, trailing: true}
			}
			return s.pushAll(ctx, msg, leads, nil)
		}()
		if err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Str("conv", conv).Int64("seq", seq).Msg("push flush")
		}
	}
}
