package push

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"natter/shared/convid"
	"natter/shared/wire"
)

// Verdicts of the decision per recipient (the result label of
// natter_push_decisions_total, with "collapsed", "system" and "stale").
const (
	VerdictPush    = "push"
	VerdictOnline  = "online"
	VerdictMuted   = "muted"
	VerdictBlocked = "blocked"
	VerdictDeleted = "deleted"
)

// Recipient is what the decision looks at for one member of the conversation.
type Recipient struct {
	Online    bool // some device has a live connection
	Away      bool // online, and every connection is away (idle)
	Muted     bool // the member muted the conversation
	Mentioned bool // the message mentions the member by name (not @all)
	Blocked   bool // the member blocked the sender
	Deleted   bool // the member's account is deleted
}

// Decide says whether a recipient of a message gets an offline push, and why
// not. In this order: a deleted account never does; nor does a member who
// blocked the sender; nor a member online on some device (or, unless
// onlineWhenAway, one whose every connection is away: idle counts as offline);
// nor a member who muted the conversation, except that in a group a mention of
// the member by name overrides the mute (@all does not: muting a group is
// muting its announcements).
func Decide(r Recipient, group, onlineWhenAway bool) string {
	switch {
	case r.Deleted:
		return VerdictDeleted
	case r.Blocked:
		return VerdictBlocked
	case r.Online && (!r.Away || onlineWhenAway):
		return VerdictOnline
	case r.Muted && !(group && r.Mentioned):
		return VerdictMuted
	}
	return VerdictPush
}

// target is one recipient with push tokens, and what was decided for them.
type target struct {
	user    int64
	hide    bool // push_settings.hide_content
	devices []deviceToken
	r       Recipient
}

type deviceToken struct {
	id, platform, token, locale string
}

// targets loads the recipients of msg that have at least one push token: the
// conversation's members but the sender (a 1:1 conversation's peer, from its
// id), who could see the message (joined before it), with their mute, account
// and preview setting. only, when set, keeps those users alone.
func (s *Service) targets(ctx context.Context, msg *wire.Message, only []int64) ([]*target, error) {
	cid, err := convid.Parse(msg.ConvID)
	if err != nil {
		return nil, err
	}
	q := `SELECT m.user_id, m.muted, u.deleted_at IS NOT NULL, COALESCE(s.hide_content, FALSE), t.device_id, t.platform, t.token, t.locale
		FROM conversation_members m
		JOIN push_tokens t ON t.user_id = m.user_id
		JOIN users u ON u.id = m.user_id
		LEFT JOIN push_settings s ON s.user_id = m.user_id
		WHERE m.conv_id = ? AND m.user_id <> ? AND m.min_seq < ?`
	args := []any{msg.ConvID, msg.Sender, msg.Seq}
	switch {
	case len(only) > 0:
		q += " AND m.user_id IN (" + idList(only) + ")"
	case cid.Kind == convid.Direct:
		if !cid.Has(msg.Sender) {
			return nil, nil
		}
		q += " AND m.user_id = ?"
		args = append(args, cid.Peer(msg.Sender))
	}
	q += " ORDER BY m.user_id"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("push recipients: %w", err)
	}
	defer rows.Close()
	var out []*target
	for rows.Next() {
		var (
			uid   int64
			muted bool
			del   bool
			hide  bool
			d     deviceToken
		)
		if err := rows.Scan(&uid, &muted, &del, &hide, &d.id, &d.platform, &d.token, &d.locale); err != nil {
			return nil, fmt.Errorf("push recipients: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].user != uid {
			out = append(out, &target{user: uid, hide: hide, r: Recipient{Muted: muted, Deleted: del}})
		}
		t := out[len(out)-1]
		t.devices = append(t.devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("push recipients: %w", err)
	}
	return out, nil
}

// decide fills in blocks and presence (one query, two Redis round trips) and
// returns the targets to push to. With count, every verdict is counted (the
// first decision on a message event; a flush deciding again is not).
func (s *Service) decide(ctx context.Context, msg *wire.Message, mentions []int64, ts []*target, count bool) ([]*target, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	users := make([]int64, len(ts))
	for i, t := range ts {
		users[i] = t.user
	}
	blockers, err := s.blockers(ctx, msg.Sender, users)
	if err != nil {
		return nil, err
	}
	// Only users announced online can have a live connection: one command for
	// all, then each announced user's connections.
	announced, err := s.presence.Announced(ctx, users)
	if err != nil {
		return nil, err
	}
	st, err := s.presence.Statuses(ctx, announced)
	if err != nil {
		return nil, err
	}
	group := strings.HasPrefix(msg.ConvID, "g:")
	out := ts[:0]
	counts := map[string]int{}
	for _, t := range ts {
		t.r.Blocked = blockers[t.user]
		t.r.Online, t.r.Away = st[t.user].Online, st[t.user].Away
		t.r.Mentioned = slices.Contains(mentions, t.user)
		v := Decide(t.r, group, s.cfg.OnlineWhenAway)
		counts[v]++
		if v == VerdictPush {
			out = append(out, t)
		}
	}
	for v, n := range counts {
		if count {
			s.m.decisions.WithLabelValues(v).Add(float64(n))
		}
	}
	return out, nil
}

// blockers returns which of users blocked sender.
func (s *Service) blockers(ctx context.Context, sender int64, users []int64) (map[int64]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT user_id FROM blocks WHERE blocked_id = ? AND user_id IN ("+idList(users)+")", sender)
	if err != nil {
		return nil, fmt.Errorf("push blocks: %w", err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("push blocks: %w", err)
		}
		out[u] = true
	}
	return out, rows.Err()
}

// badges returns each user's total unread: last_seq - max(read_seq, min_seq)
// over all their conversations, from the read cursors in MySQL.
func (s *Service) badges(ctx context.Context, users []int64) (map[int64]int64, error) {
	out := make(map[int64]int64, len(users))
	if len(users) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.user_id, COALESCE(SUM(GREATEST(CAST(c.last_seq AS SIGNED) - CAST(GREATEST(m.read_seq, m.min_seq) AS SIGNED), 0)), 0)
		FROM conversation_members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id IN (`+idList(users)+`) GROUP BY m.user_id`)
	if err != nil {
		return nil, fmt.Errorf("push badges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u, n int64
		if err := rows.Scan(&u, &n); err != nil {
			return nil, fmt.Errorf("push badges: %w", err)
		}
		out[u] = n
	}
	return out, rows.Err()
}

// idList is ids as a comma-separated SQL list (numbers only: no injection).
func idList(ids []int64) string {
	var b strings.Builder
	b.Grow(len(ids) * 8)
	for i, u := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(u, 10))
	}
	return b.String()
}
