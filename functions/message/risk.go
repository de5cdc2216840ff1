package message

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"natter/functions/deliver"
	"natter/functions/sensitive"
	"natter/shared/convid"
	"natter/shared/dynconf"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/wire"
)

// censor applies the sensitive-word list to a text or rich message's text: a
// block word refuses it, mask words are starred (content re-encoded), and a
// review word is reported in the verdict for the caller to queue once stored.
// With an empty list it costs one atomic load.
func (s *Service) censor(content json.RawMessage, rich *RichContent) (json.RawMessage, sensitive.Verdict, error) {
	if s.words == nil {
		return content, sensitive.Verdict{}, nil
	}
	m := s.words.Matcher()
	if m.Len() == 0 {
		return content, sensitive.Verdict{}, nil
	}
	var text string
	if rich != nil {
		text = rich.Text
	} else {
		var tc TextContent
		if err := json.Unmarshal(content, &tc); err != nil {
			return nil, sensitive.Verdict{}, fmt.Errorf("censor: %w", err)
		}
		text = tc.Text
	}
	v := m.Check(text)
	if v.Action == sensitive.Block {
		return nil, v, sensitive.ErrBlocked("the message")
	}
	if v.Text == text {
		return content, v, nil
	}
	var err error
	if rich != nil {
		rich.Text = v.Text // one '*' per masked rune: spans stay valid
		content, _, err = encodeContent(*rich, rich)
	} else {
		content, _, err = encodeContent(TextContent{Text: v.Text}, nil)
	}
	if err != nil {
		return nil, v, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	return content, v, nil
}

// flag queues a stored message that a review word matched.
func (s *Service) flag(ctx context.Context, m wire.Message, v sensitive.Verdict) {
	log := logging.From(ctx)
	if s.review == nil {
		log.Warn().Str("conv", m.ConvID).Int64("seq", m.Seq).Strs("words", v.Words).Msg("message flagged for review; no review queue")
		return
	}
	if err := s.review.FlagMessage(ctx, m, v.Text, v.Words); err != nil {
		log.Error().Err(err).Str("conv", m.ConvID).Int64("seq", m.Seq).Msg("queue message for review")
	}
}

// typeAllowed applies the message-type feature flags (dynconf.MsgTypeFlag).
func (s *Service) typeAllowed(typ string, user int64) error {
	if s.live != nil && !s.live.Enabled(dynconf.MsgTypeFlag(typ), user, true) {
		return imerr.New(imerr.Forbidden, "messages of type %s are turned off", typ)
	}
	return nil
}

// limiter counts sends per user in fixed one-second and one-minute windows in
// Redis: one script call (one round trip) per send. A refused send is not
// counted.
type limiter struct {
	rdb redis.UniversalClient
}

// rateScript: KEYS[1] the second's counter, KEYS[2] the minute's; ARGV[1],
// ARGV[2] their limits (0: none). Returns 0 (counted), 1 or 2 (the window that
// is full).
var rateScript = redis.NewScript(`
local ls, lm = tonumber(ARGV[1]), tonumber(ARGV[2])
local s = ls > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local m = lm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if ls > 0 and s >= ls then return 1 end
if lm > 0 and m >= lm then return 2 end
if ls > 0 then
  if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], 2) end
end
if lm > 0 then
  if redis.call('INCR', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], 61) end
end
return 0
`)

// allow counts one send of user in a conversation of kind, refusing it with
// rate_limited over the user's policy. A Redis failure lets the send through
// (logged): losing Redis must not stop messaging.
func (s *Service) allow(ctx context.Context, user int64, kind convid.Kind) error {
	if s.limiter == nil {
		return nil
	}
	p := s.live.Rate(user)
	perSec, perMin, k := p.DirectPerSecond, p.DirectPerMinute, "d"
	if kind != convid.Direct {
		perSec, perMin, k = p.GroupPerSecond, p.GroupPerMinute, "g"
	}
	if perSec <= 0 && perMin <= 0 {
		return nil
	}
	now := s.now().Unix()
	base := "rl:{" + strconv.FormatInt(user, 10) + "}:" + k
	res, err := rateScript.Run(ctx, s.limiter.rdb, []string{base + ":s:" + strconv.FormatInt(now, 10), base + ":m:" + strconv.FormatInt(now/60, 10)},
		perSec, perMin).Int()
	if err != nil {
		logging.From(ctx).Warn().Err(err).Msg("send rate check")
		return nil
	}
	switch res {
	case 1:
		return imerr.New(imerr.RateLimited, "at most %d messages a second", perSec)
	case 2:
		return imerr.New(imerr.RateLimited, "at most %d messages a minute", perMin)
	}
	return nil
}

// Removed is the content of the system message a moderator's removal leaves.
type Removed struct {
	Event  string `json:"event"` // "message.removed"
	Seq    int64  `json:"seq"`
	Reason string `json:"reason,omitempty"`
}

// Remove recalls a message for everyone on an operator's decision (the review
// queue), whoever sent it and however old it is, and leaves a system message
// saying so, in one transaction in order with the conversation's sends. The
// recall counts as the sender's (recalled_by), as the messages table has no
// operators; the system notice says who removed it. key makes a retry a no-op.
// It reports whether the message was removed now.
func (s *Service) Remove(ctx context.Context, convRaw string, seq int64, reason, key string) (bool, error) {
	conv, err := convid.Parse(convRaw)
	if err != nil {
		return false, err
	}
	var rec wire.MsgRecalled
	var version int64
	after := func(m *wire.Message, _ bool) {
		to := deliver.ToMembers(conv, version)
		s.deliver.Push(ctx, to, rec, deliver.Origin{})
		s.deliver.Push(ctx, to, wire.MsgNew{Message: *m}, deliver.Origin{})
		if s.events != nil {
			s.events.Recalled(wire.MessageRecalled{ConvID: rec.ConvID, Seq: rec.Seq, By: rec.By, Mod: rec.Mod})
		}
	}
	m, err := s.store.Change(ctx, conv.Raw, func(tx *sql.Tx) (*wire.Message, error) {
		var sender int64
		var typ string
		err := tx.QueryRowContext(ctx, "SELECT sender_id, kind FROM messages WHERE conv_id = ? AND seq = ? AND recalled_by = 0 FOR UPDATE", conv.Raw, seq).Scan(&sender, &typ)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil // recalled already (or a retry)
		}
		if err != nil {
			return nil, err
		}
		if typ == wire.TypeSystem {
			return nil, imerr.New(imerr.BadRequest, "system messages cannot be removed")
		}
		mod, err := bumpMod(ctx, tx, conv.Raw)
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE messages SET content = '{}', recalled_by = ?, mod_seq = ? WHERE conv_id = ? AND seq = ?",
			sender, mod, conv.Raw, seq); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM message_reactions WHERE conv_id = ? AND seq = ?", conv.Raw, seq); err != nil {
			return nil, err
		}
		if conv.Kind != convid.Direct {
			if err := tx.QueryRowContext(ctx, "SELECT members_version FROM chat_groups WHERE id = ?", conv.Group).Scan(&version); err != nil {
				return nil, err
			}
		}
		rec = wire.MsgRecalled{ConvID: conv.Raw, Seq: seq, By: sender, Mod: mod}
		content, _ := json.Marshal(Removed{Event: "message.removed", Seq: seq, Reason: reason})
		return &wire.Message{ConvID: conv.Raw, ClientMsgID: key, Type: wire.TypeSystem, Content: content}, nil
	}, after)
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return false, err
		}
		return false, fmt.Errorf("remove message: %w", err)
	}
	return m != nil, nil
}
