package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"natter/functions/deliver"
	"natter/functions/msgstore"
	"natter/functions/perm"
	"natter/functions/sensitive"
	"natter/shared/convid"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

var errNoMessage = imerr.New(imerr.NotFound, "message not found")

// target resolves a MsgRef, checks the caller's standing and loads the message.
func (s *Service) target(ctx context.Context, c endpoint.Caller, r MsgRef) (convid.ID, standing, wire.Message, error) {
	if r.ID != 0 {
		err := s.db.QueryRowContext(ctx, "SELECT conv_id, seq FROM messages WHERE id = ?", r.ID).Scan(&r.ConvID, &r.Seq)
		if errors.Is(err, sql.ErrNoRows) {
			return convid.ID{}, standing{}, wire.Message{}, errNoMessage
		}
		if err != nil {
			return convid.ID{}, standing{}, wire.Message{}, fmt.Errorf("find message: %w", err)
		}
	}
	conv, err := convid.Parse(r.ConvID)
	if err != nil {
		return convid.ID{}, standing{}, wire.Message{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if errors.Is(err, errNoConversation) {
		err = errNoMessage // the same answer as an id nobody has: ids tell a stranger nothing
	}
	if err != nil {
		return convid.ID{}, standing{}, wire.Message{}, err
	}
	if r.Seq <= st.minSeq {
		return convid.ID{}, standing{}, wire.Message{}, errNoMessage
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+msgstore.SelectColumns+" FROM messages WHERE conv_id = ? AND seq = ?", conv.Raw, r.Seq)
	if err != nil {
		return convid.ID{}, standing{}, wire.Message{}, fmt.Errorf("load message: %w", err)
	}
	ms, err := msgstore.ScanMessages(rows, nil)
	if err != nil {
		return convid.ID{}, standing{}, wire.Message{}, err
	}
	if len(ms) == 0 {
		return convid.ID{}, standing{}, wire.Message{}, errNoMessage
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
	out := RecallResp{ConvID: conv.Raw, Seq: m.Seq, Mod: m.Mod}
	if m.Recalled {
		return out, nil // a retry
	}
	if st.dismissed {
		return RecallResp{}, errDismissed
	}
	if m.Type == wire.TypeSystem {
		return RecallResp{}, imerr.New(imerr.BadRequest, "system messages cannot be recalled")
	}
	if err := s.mayRecall(ctx, c, conv, st, m); err != nil {
		return RecallResp{}, err
	}
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		mod, err := bumpMod(ctx, tx, conv.Raw)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE messages SET content = '{}', recalled_by = ?, mod_seq = ? WHERE conv_id = ? AND seq = ? AND recalled_by = 0",
			c.UserID, mod, conv.Raw, m.Seq)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errRecalledMeanwhile
		}
		out.Mod = mod
		_, err = tx.ExecContext(ctx, "DELETE FROM message_reactions WHERE conv_id = ? AND seq = ?", conv.Raw, m.Seq)
		return err
	})
	if errors.Is(err, errRecalledMeanwhile) {
		return out, nil
	}
	if err != nil {
		return RecallResp{}, fmt.Errorf("recall: %w", err)
	}
	s.deliver.Push(ctx, deliver.ToMembers(conv, st.version), wire.MsgRecalled{ConvID: conv.Raw, Seq: m.Seq, By: c.UserID, Mod: out.Mod}, deliver.From(c))
	if s.events != nil {
		s.events.Recalled(wire.MessageRecalled{ConvID: conv.Raw, Seq: m.Seq, By: c.UserID, Mod: out.Mod})
	}
	return out, nil
}

var errRecalledMeanwhile = errors.New("recalled by a concurrent request")

func (s *Service) mayRecall(ctx context.Context, c endpoint.Caller, conv convid.ID, st standing, m wire.Message) error {
	if m.Sender == c.UserID {
		if s.now().Sub(time.UnixMilli(m.SentAt)) <= s.recallWindow() {
			return nil
		}
		if conv.Kind == convid.Direct || st.role < perm.Admin {
			return imerr.New(imerr.Forbidden, "messages can be recalled within %v of sending", s.recallWindow())
		}
	}
	if conv.Kind == convid.Direct {
		return imerr.New(imerr.Forbidden, "you can only recall your own messages")
	}
	senderRole := perm.Member // a sender who left counts as a member
	err := s.db.QueryRowContext(ctx, "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", conv.Group, m.Sender).Scan(&senderRole)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sender role: %w", err)
	}
	return perm.Check(perm.RecallOthers, st.role, &senderRole, m.Sender == c.UserID)
}

// edit replaces a message's content; only its sender, within EditWindow. Edits are
// versioned (Edits, EditedAt) and history shows the latest version.
func (s *Service) edit(ctx context.Context, c endpoint.Caller, r EditReq) (wire.Message, error) {
	conv, st, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return wire.Message{}, err
	}
	// Editing is speaking again: a dismissed group, or a mute, forbids it.
	if err := s.maySend(conv, st); err != nil {
		return wire.Message{}, err
	}
	switch {
	case m.Sender != c.UserID:
		return wire.Message{}, imerr.New(imerr.Forbidden, "you can only edit your own messages")
	case m.Recalled:
		return wire.Message{}, imerr.New(imerr.Conflict, "the message was recalled")
	case m.Type != wire.TypeText && m.Type != wire.TypeRich:
		return wire.Message{}, imerr.New(imerr.BadRequest, "only text and rich messages can be edited")
	case s.now().Sub(time.UnixMilli(m.SentAt)) > s.editWindow():
		return wire.Message{}, imerr.New(imerr.Forbidden, "messages can be edited within %v of sending", s.editWindow())
	}
	typ := r.Type
	if typ == "" {
		typ = m.Type
	}
	if typ != wire.TypeText && typ != wire.TypeRich {
		return wire.Message{}, imerr.New(imerr.BadRequest, "type: text or rich")
	}
	content, rich, err := normalize(typ, r.Content, s.cfg.MaxTextRunes)
	if err != nil {
		return wire.Message{}, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	if err := s.typeAllowed(typ, c.UserID); err != nil {
		return wire.Message{}, err
	}
	content, verdict, err := s.censor(content, rich)
	if err != nil {
		return wire.Message{}, err
	}
	if typ == m.Type && string(content) == string(m.Content) {
		return m, nil // nothing changes: a retry
	}
	if rich != nil {
		if _, err := s.checkRich(ctx, c, conv, st, rich); err != nil {
			return wire.Message{}, err
		}
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		mod, err := bumpMod(ctx, tx, conv.Raw)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE messages SET kind = ?, content = ?, edit_count = edit_count + 1, edited_at = ?, mod_seq = ? WHERE conv_id = ? AND seq = ? AND recalled_by = 0",
			typ, []byte(content), now, mod, conv.Raw, m.Seq)
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
		return wire.Message{}, err
	}
	s.deliver.Push(ctx, deliver.ToMembers(conv, st.version), wire.MsgEdited{Message: m}, deliver.From(c))
	if s.events != nil {
		s.events.Edited(m)
	}
	if verdict.Action == sensitive.Review {
		s.flag(ctx, m, verdict)
	}
	return m, nil
}

// react adds or removes the caller's emoji on a message; idempotent both ways.
func (s *Service) react(ctx context.Context, c endpoint.Caller, r ReactReq) (wire.MsgReaction, error) {
	conv, st, m, err := s.target(ctx, c, r.MsgRef)
	if err != nil {
		return wire.MsgReaction{}, err
	}
	if err := s.maySend(conv, st); err != nil {
		return wire.MsgReaction{}, err
	}
	if m.Recalled || m.Type == wire.TypeSystem {
		return wire.MsgReaction{}, imerr.New(imerr.BadRequest, "this message takes no reactions")
	}
	ev := wire.MsgReaction{ConvID: conv.Raw, Seq: m.Seq, Emoji: r.Emoji, UserID: c.UserID, Added: !r.Remove, Mod: m.Mod}
	changed := false
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if r.Remove {
			res, err = tx.ExecContext(ctx, "DELETE FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ? AND user_id = ?", conv.Raw, m.Seq, r.Emoji, c.UserID)
		} else {
			var distinct int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(DISTINCT emoji) FROM message_reactions WHERE conv_id = ? AND seq = ?", conv.Raw, m.Seq).Scan(&distinct); err != nil {
				return err
			}
			if distinct >= maxEmojis {
				var has int
				_ = tx.QueryRowContext(ctx, "SELECT 1 FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ? LIMIT 1", conv.Raw, m.Seq, r.Emoji).Scan(&has)
				if has == 0 {
					return imerr.New(imerr.Conflict, "a message holds at most %d different reactions", maxEmojis)
				}
			}
			res, err = tx.ExecContext(ctx, "INSERT IGNORE INTO message_reactions (conv_id, seq, emoji, user_id) VALUES (?, ?, ?, ?)", conv.Raw, m.Seq, r.Emoji, c.UserID)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
			if ev.Mod, err = bumpMod(ctx, tx, conv.Raw); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE messages SET mod_seq = ? WHERE conv_id = ? AND seq = ?", ev.Mod, conv.Raw, m.Seq); err != nil {
				return err
			}
		}
		return tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM message_reactions WHERE conv_id = ? AND seq = ? AND emoji = ?", conv.Raw, m.Seq, r.Emoji).Scan(&ev.Count)
	})
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return wire.MsgReaction{}, err
		}
		return wire.MsgReaction{}, fmt.Errorf("react: %w", err)
	}
	if changed {
		s.deliver.Push(ctx, deliver.ToMembers(conv, st.version), ev, deliver.From(c))
	}
	return ev, nil
}

// maxEmojis bounds the distinct reactions on one message; maxReaders a page of
// msg.receipts.
const (
	maxEmojis  = 20
	maxReaders = 500
)

// attachReactions fills in the aggregated reactions of msgs (one query, and none
// when no message was ever reacted to: only those have a mod).
func (s *Service) attachReactions(ctx context.Context, c endpoint.Caller, conv string, msgs []wire.Message) error {
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
		var r wire.Reaction
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
	out := ReceiptsResp{ConvID: conv.Raw, Seq: m.Seq}
	// Members who could see it (joined before it) other than its sender; of those,
	// the ones whose cursor reached it. ix_members_read serves the second count.
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(read_seq >= ?), 0) FROM conversation_members
		WHERE conv_id = ? AND min_seq < ? AND user_id <> ?`, m.Seq, conv.Raw, m.Seq, m.Sender).Scan(&out.Members, &out.Read)
	if err != nil {
		return ReceiptsResp{}, fmt.Errorf("receipts: %w", err)
	}
	if r.Limit == 0 {
		return out, nil
	}
	limit := validate.Limit(r.Limit, r.Limit, maxReaders)
	rows, err := s.db.QueryContext(ctx, `SELECT user_id FROM conversation_members WHERE conv_id = ? AND read_seq >= ? AND min_seq < ? AND user_id <> ? AND user_id > ?
		ORDER BY user_id LIMIT ?`, conv.Raw, m.Seq, m.Seq, m.Sender, r.After, limit+1)
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
	if len(out.Readers) > limit {
		out.Readers, out.HasMore = out.Readers[:limit], true
	}
	return out, rows.Err()
}

// typing relays an ephemeral indicator: never stored, at most one per user and
// conversation every TypingThrottle (across workers, through Redis), and not at
// all in groups above TypingMaxGroup members.
func (s *Service) typing(ctx context.Context, c endpoint.Caller, r TypingReq) (TypingResp, error) {
	conv, err := convid.Parse(r.ConvID)
	if err != nil {
		return TypingResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return TypingResp{}, err
	}
	// Who may not send may not show typing either: blocks and privacy in 1:1,
	// dismissal and mutes in groups.
	if conv.Kind == convid.Direct && s.friends != nil {
		if err := s.friends.CanMessage(ctx, c.UserID, conv.Peer(c.UserID)); err != nil {
			return TypingResp{}, err
		}
	}
	if err := s.maySend(conv, st); err != nil {
		return TypingResp{}, err
	}
	if conv.Kind == convid.Group {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT member_count FROM chat_groups WHERE id = ?", conv.Group).Scan(&n); err != nil {
			return TypingResp{}, fmt.Errorf("group size: %w", err)
		}
		if n > s.cfg.TypingMaxGroup {
			return TypingResp{}, nil
		}
	}
	ok, err := s.rdb.SetNX(ctx, "typing:"+conv.Raw+":"+strconv.FormatInt(c.UserID, 10), 1, s.cfg.TypingThrottle).Result()
	if err != nil {
		return TypingResp{}, fmt.Errorf("typing throttle: %w", err)
	}
	if !ok {
		return TypingResp{}, nil
	}
	// In a 1:1 conversation only the peer gets it; in a group every member's
	// devices do, the typist's other devices too (clients ignore their own id).
	to := deliver.ToMembers(conv, st.version)
	if conv.Kind == convid.Direct {
		to = deliver.ToUser(conv.Peer(c.UserID))
	}
	s.deliver.Push(ctx, to, wire.Typing{ConvID: conv.Raw, UserID: c.UserID}, deliver.From(c))
	return TypingResp{Sent: true}, nil
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
