package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"natter/functions/group/perm"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/wire"
)

var errNoMessage = imerr.New(imerr.NotFound, "message not found")

// target resolves a MsgRef, checks the caller's standing and loads the message.
func (s *Service) target(ctx context.Context, c endpoint.Caller, r MsgRef) (parsedConv, standing, Message, error) {
	if r.ID != 0 {
		err := s.db.QueryRowContext(ctx, "SELECT conv_id, seq FROM messages WHERE id = ?", r.ID).Scan(&r.ConvID, &r.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			return parsedConv{}, standing{}, Message{}, errNoMessage
		}
		if err != nil {
			return parsedConv{}, standing{}, Message{}, fmt.Errorf("find message: %w", err)
		}
	}
	conv, err := parseConv(r.ConvID)
	if err != nil {
		return parsedConv{}, standing{}, Message{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return parsedConv{}, standing{}, Message{}, err
	}
	if r.Seq <= st.minSeq {
		return parsedConv{}, standing{}, Message{}, errNoMessage
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+selectColumns+" FROM messages WHERE conv_id = ? AND seq = ?", conv.id, r.Seq)
	if err != nil {
		return parsedConv{}, standing{}, Message{}, fmt.Errorf("load message: %w", err)
	}
	ms, err := scanMessages(rows, nil)
	if err != nil {
		return parsedConv{}, standing{}, Message{}, err
	}
	if len(ms) == 0 {
		return parsedConv{}, standing{}, Message{}, errNoMessage
	}
	return conv, st, ms[0], nil
}

// bumpMod takes the next change number of a conversation inside tx.
func bumpMod(ctx context.Context, tx *sql.Tx, conv string) (int64, error) {
	res, err := tx.ExecContext(ctx, "UPDATE conversations SET last_mod = LAST_INSERT_ID(last_mod + 1) WHERE id = ?", conv)
	if err != nil {
		return 0, fmt.Errorf("bump mod: %w", err)
	}
	return res.LastInsertId()
}

// recall removes a message's content for good; its seq stays as a tombstone. The
// sender may recall within RecallWindow; a group's owner and admins may recall
// the messages of members they outrank at any time.
func (s *Service) recall(ctx context.Context, c endpoint.Caller, r RecallReq) (RecallResp, error) {
	conv, st, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return RecallResp{}, err
	}
	out := RecallResp{ConvID: conv.id, Seq: m.Seq, Mod: m.Mod}
	if m.Recalled {
		return out, nil // a retry
	}
	if m.Type == TypeSystem {
		return RecallResp{}, imerr.New(imerr.BadRequest, "system messages cannot be recalled")
	}
	if err := s.mayRecall(ctx, c, conv, st, m); err != nil {
		return RecallResp{}, err
	}
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		mod, err := bumpMod(ctx, tx, conv.id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE messages SET content = '{}', recalled_by = ?, mod_seq = ? WHERE conv_id = ? AND seq = ? AND recalled_by = 0",
			c.UserID, mod, conv.id, m.Seq)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errRecalledMeanwhile
		}
		out.Mod = mod
		_, err = tx.ExecContext(ctx, "DELETE FROM message_reactions WHERE conv_id = ? AND seq = ?", conv.id, m.Seq)
		return err
	})
	if errors.Is(err, errRecalledMeanwhile) {
		return out, nil
	}
	if err != nil {
		return RecallResp{}, fmt.Errorf("recall: %w", err)
	}
	s.push(ctx, c, conv, st.version, "msg.recalled", map[string]any{"conv_id": conv.id, "seq": m.Seq, "by": c.UserID, "mod": out.Mod})
	return out, nil
}

var errRecalledMeanwhile = errors.New("recalled by a concurrent request")

func (s *Service) mayRecall(ctx context.Context, c endpoint.Caller, conv parsedConv, st standing, m Message) error {
	if m.Sender == c.UserID {
		if s.now().Sub(time.UnixMilli(m.SentAt)) <= s.cfg.RecallWindow {
			return nil
		}
		if conv.kind == kindDirect || st.role < perm.Admin {
			return imerr.New(imerr.Forbidden, "messages can be recalled within %v of sending", s.cfg.RecallWindow)
		}
	}
	if conv.kind == kindDirect {
		return imerr.New(imerr.Forbidden, "you can only recall your own messages")
	}
	senderRole := perm.Member // a sender who left counts as a member
	err := s.db.QueryRowContext(ctx, "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", conv.group, m.Sender).Scan(&senderRole)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sender role: %w", err)
	}
	return perm.Check(perm.RecallOthers, st.role, &senderRole, m.Sender == c.UserID)
}

// edit replaces a message's content; only its sender, within EditWindow. Edits are
// versioned (Edits, EditedAt) and history shows the latest version.
func (s *Service) edit(ctx context.Context, c endpoint.Caller, r EditReq) (Message, error) {
	conv, st, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return Message{}, err
	}
	switch {
	case m.Sender != c.UserID:
		return Message{}, imerr.New(imerr.Forbidden, "you can only edit your own messages")
	case m.Recalled:
		return Message{}, imerr.New(imerr.Conflict, "the message was recalled")
	case m.Type != TypeText && m.Type != TypeRich:
		return Message{}, imerr.New(imerr.BadRequest, "only text and rich messages can be edited")
	case s.now().Sub(time.UnixMilli(m.SentAt)) > s.cfg.EditWindow:
		return Message{}, imerr.New(imerr.Forbidden, "messages can be edited within %v of sending", s.cfg.EditWindow)
	}
	typ := r.Type
	if typ == "" {
		typ = m.Type
	}
	if typ != TypeText && typ != TypeRich {
		return Message{}, imerr.New(imerr.BadRequest, "type: text or rich")
	}
	content, rich, err := normalize(typ, r.Content, s.cfg.MaxTextRunes)
	if err != nil {
		return Message{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	if typ == m.Type && string(content) == string(m.Content) {
		return m, nil // nothing changes: a retry
	}
	if rich != nil {
		if _, err := s.checkRich(ctx, c, conv, st, rich); err != nil {
			return Message{}, err
		}
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		mod, err := bumpMod(ctx, tx, conv.id)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE messages SET kind = ?, content = ?, edit_count = edit_count + 1, edited_at = ?, mod_seq = ? WHERE conv_id = ? AND seq = ? AND recalled_by = 0",
			typ, []byte(content), now, mod, conv.id, m.Seq)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return imerr.New(imerr.Conflict, "the message was recalled")
		}
		m.Type, m.Content, m.Edits, m.EditedAt, m.Mod = typ, content, m.Edits+1, now.UnixMilli(), mod
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	s.push(ctx, c, conv, st.version, "msg.edited", m)
	return m, nil
}

// react adds or removes the caller's emoji on a message; idempotent both ways.
func (s *Service) react(ctx context.Context, c endpoint.Caller, r ReactReq) (ReactionEvent, error) {
	conv, st, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return ReactionEvent{}, err
	}
	if m.Recalled || m.Type == TypeSystem {
		return ReactionEvent{}, imerr.New(imerr.BadRequest, "this message takes no reactions")
	}
	ev := ReactionEvent{ConvID: conv.id, Seq: m.Seq, Emoji: r.Emoji, UserID: c.UserID, Added: !r.Remove, Mod: m.Mod}
	changed := false
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if r.Remove {
			res, err = tx.ExecContext(ctx, "DELETE FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ? AND user_id = ?", conv.id, m.Seq, r.Emoji, c.UserID)
		} else {
			var distinct int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(DISTINCT emoji) FROM message_reactions WHERE conv_id = ? AND seq = ?", conv.id, m.Seq).Scan(&distinct); err != nil {
				return err
			}
			if distinct >= maxEmojis {
				var has int
				_ = tx.QueryRowContext(ctx, "SELECT 1 FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ? LIMIT 1", conv.id, m.Seq, r.Emoji).Scan(&has)
				if has == 0 {
					return imerr.New(imerr.Conflict, "a message holds at most %d different reactions", maxEmojis)
				}
			}
			res, err = tx.ExecContext(ctx, "INSERT IGNORE INTO message_reactions (conv_id, seq, emoji, user_id) VALUES (?, ?, ?, ?)", conv.id, m.Seq, r.Emoji, c.UserID)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			if ev.Mod, err = bumpMod(ctx, tx, conv.id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE messages SET mod_seq = ? WHERE conv_id = ? AND seq = ?", ev.Mod, conv.id, m.Seq); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ?", conv.id, m.Seq, r.Emoji).Scan(&ev.Count)
	})
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return ReactionEvent{}, err
		}
		return ReactionEvent{}, fmt.Errorf("react: %w", err)
	}
	if changed {
		s.push(ctx, c, conv, st.version, "msg.reaction", ev)
	}
	return ev, nil
}

// maxEmojis bounds the distinct reactions on one message.
const maxEmojis = 20

// attachReactions fills in the aggregated reactions of msgs (one query, and none
// when no message was ever reacted to: only those have a mod).
func (s *Service) attachReactions(ctx context.Context, c endpoint.Caller, conv string, msgs []Message) error {
	var seqs []any
	idx := map[int64]int{}
	for i, m := range msgs {
		if m.Mod > 0 && !m.Recalled {
			seqs = append(seqs, m.Seq)
			idx[m.Seq] = i
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	q := "SELECT seq, emoji, COUNT(*), MAX(user_id = ?) FROM message_reactions WHERE conv_id = ? AND seq IN (" + placeholders(len(seqs)) + ") GROUP BY seq, emoji ORDER BY seq, MIN(created_at)"
	rows, err := s.db.QueryContext(ctx, q, append([]any{c.UserID, conv}, seqs...)...)
	if err != nil {
		return fmt.Errorf("reactions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var r Reaction
		if err := rows.Scan(&seq, &r.Emoji, &r.Count, &r.Me); err != nil {
			return err
		}
		i := idx[seq]
		msgs[i].Reactions = append(msgs[i].Reactions, r)
	}
	return rows.Err()
}

// receipts answers "read by N of M" for a message, and pages its readers, from the
// members' read cursors alone (no per-message-per-reader rows).
func (s *Service) receipts(ctx context.Context, c endpoint.Caller, r ReceiptsReq) (ReceiptsResp, error) {
	conv, _, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return ReceiptsResp{}, err
	}
	out := ReceiptsResp{ConvID: conv.id, Seq: m.Seq}
	// Members who could see it (joined before it) other than its sender; of those,
	// the ones whose cursor reached it. ix_members_read serves the second count.
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(read_seq >= ?), 0) FROM conversation_members
		WHERE conv_id = ? AND min_seq < ? AND user_id <> ?`, m.Seq, conv.id, m.Seq, m.Sender).Scan(&out.Members, &out.Read)
	if err != nil {
		return ReceiptsResp{}, fmt.Errorf("receipts: %w", err)
	}
	if r.Limit == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT user_id FROM conversation_members WHERE conv_id = ? AND read_seq >= ? AND min_seq < ? AND user_id <> ? AND user_id > ?
		ORDER BY user_id LIMIT ?`, conv.id, m.Seq, m.Seq, m.Sender, r.After, r.Limit+1)
	if err != nil {
		return ReceiptsResp{}, fmt.Errorf("readers: %w", err)
	}
	defer rows.Close()
	out.Readers = []int64{}
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return ReceiptsResp{}, err
		}
		out.Readers = append(out.Readers, u)
	}
	if len(out.Readers) > r.Limit {
		out.Readers, out.HasMore = out.Readers[:r.Limit], true
	}
	return out, rows.Err()
}

// typing relays an ephemeral indicator: never stored, at most one per user and
// conversation every TypingThrottle (across workers, through Redis), and not at
// all in groups above TypingMaxGroup members.
func (s *Service) typing(ctx context.Context, c endpoint.Caller, r TypingReq) (TypingResp, error) {
	conv, err := parseConv(r.ConvID)
	if err != nil {
		return TypingResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return TypingResp{}, err
	}
	if conv.kind == kindGroup {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT member_count FROM chat_groups WHERE id = ?", conv.group).Scan(&n); err != nil {
			return TypingResp{}, fmt.Errorf("group size: %w", err)
		}
		if n > s.cfg.TypingMaxGroup {
			return TypingResp{}, nil
		}
	}
	ok, err := s.rdb.SetNX(ctx, "typing:"+conv.id+":"+strconv.FormatInt(c.UserID, 10), 1, s.cfg.TypingThrottle).Result()
	if err != nil {
		return TypingResp{}, fmt.Errorf("typing throttle: %w", err)
	}
	if !ok {
		return TypingResp{}, nil
	}
	frame, err := wire.EncodePush("typing", map[string]any{"conv_id": conv.id, "user_id": c.UserID})
	if err != nil {
		return TypingResp{}, err
	}
	if conv.kind == kindDirect {
		s.fan.ToUsers([]int64{conv.peer(c.UserID)}, frame, Origin{})
	} else {
		s.fan.ToConversation(ctx, conv.id, st.version, frame, OriginOf(c))
	}
	return TypingResp{Sent: true}, nil
}

// push sends an event about conv to its members' devices (not the calling one).
func (s *Service) push(ctx context.Context, c endpoint.Caller, conv parsedConv, version int64, event string, data any) {
	frame, err := wire.EncodePush(event, data)
	if err != nil {
		logging.From(ctx).Error().Err(err).Str("event", event).Msg("encode push")
		return
	}
	if conv.kind == kindDirect {
		s.fan.ToUsers([]int64{conv.a, conv.b}, frame, OriginOf(c))
		return
	}
	s.fan.ToConversation(ctx, conv.id, version, frame, OriginOf(c))
}

func placeholders(n int) string {
	b := make([]byte, 0, 2*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}
