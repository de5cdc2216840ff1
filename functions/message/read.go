package message

import (
	"context"
	"fmt"
	"slices"

	"natter/functions/msgstore"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/validate"
	"natter/shared/wire"
)

func (s *Service) history(ctx context.Context, c endpoint.Caller, r HistoryReq) (HistoryResp, error) {
	conv, err := convid.Parse(r.ConvID)
	if err != nil {
		return HistoryResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return HistoryResp{}, err
	}
	limit := validate.Limit(r.Limit, 50, s.cfg.HistoryLimit)
	// Messages up to st.minSeq predate the caller's membership (groups that hide
	// history from newcomers).
	q := "SELECT " + msgstore.SelectColumns + " FROM messages WHERE conv_id = ? AND seq > ? "
	args := []any{conv.Raw, st.minSeq}
	switch {
	case r.After != nil: // forward from any seq, 0 included: the very beginning
		q += "AND seq > ? ORDER BY seq ASC LIMIT ?"
		args = append(args, *r.After, limit+1)
	case r.Before > 0:
		q += "AND seq < ? ORDER BY seq DESC LIMIT ?"
		args = append(args, r.Before, limit+1)
	default:
		q += "ORDER BY seq DESC LIMIT ?"
		args = append(args, limit+1)
	}
	// The permission check above read the primary; the page may come from a
	// replica that has applied at least as much (db.Reader).
	rows, err := s.reads.DB(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return HistoryResp{}, fmt.Errorf("history: %w", err)
	}
	msgs, err := msgstore.ScanMessages(rows, make([]wire.Message, 0, limit+1))
	if err != nil {
		return HistoryResp{}, err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	if n := fit(wire.NewBudget(), msgs); n < len(msgs) {
		msgs, more = msgs[:n], true
	}
	if r.After == nil {
		slices.Reverse(msgs)
	}
	if err := s.attachReactions(ctx, c, conv.Raw, msgs); err != nil {
		return HistoryResp{}, err
	}
	return HistoryResp{Messages: msgs, HasMore: more}, nil
}

// sync returns, for each of the caller's conversations that moved past the
// device's cursors, the messages after its seq cursor (oldest first) and the
// messages at or below it that changed (edit, recall, reaction) after its mod
// cursor, up to the limit in total. Conversations come in id order so repeated
// calls make progress; a device stores last_seq/last_mod as its cursors once a
// conversation's has_more is false.
func (s *Service) sync(ctx context.Context, c endpoint.Caller, r SyncReq) (SyncResp, error) {
	limit := validate.Limit(r.Limit, s.cfg.SyncLimit, s.cfg.SyncLimit)
	// One pool for the whole sync (a caught-up replica, or the primary), so its
	// conversations' tops and their messages agree.
	from := s.reads.DB(ctx)
	rows, err := from.QueryContext(ctx, `SELECT c.id, c.last_seq, c.last_mod, m.min_seq FROM conversation_members m
		JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ? AND c.last_seq > m.min_seq ORDER BY c.id`, c.UserID)
	if err != nil {
		return SyncResp{}, fmt.Errorf("sync conversations: %w", err)
	}
	type behind struct {
		id                    string
		cursor, top, mod, min int64
		lastMod               int64
	}
	var todo []behind
	for rows.Next() {
		var b behind
		if err := rows.Scan(&b.id, &b.top, &b.lastMod, &b.min); err != nil {
			rows.Close()
			return SyncResp{}, fmt.Errorf("scan conversation: %w", err)
		}
		b.cursor = max(r.Cursors[b.id], b.min)
		b.mod = r.Mods[b.id]
		if b.top > b.cursor || (b.lastMod > b.mod && b.cursor > b.min) {
			todo = append(todo, b)
		}
	}
	if err := rows.Close(); err != nil {
		return SyncResp{}, fmt.Errorf("sync conversations: %w", err)
	}
	out := SyncResp{Conversations: []SyncConv{}}
	left := limit
	budget := wire.NewBudget()
	for _, b := range todo {
		if left == 0 {
			out.HasMore = true
			break
		}
		sc := SyncConv{ConvID: b.id, LastSeq: b.top, LastMod: b.lastMod, Messages: []wire.Message{}}
		if b.lastMod > b.mod && b.cursor > b.min {
			rows, err := from.QueryContext(ctx, "SELECT "+msgstore.SelectColumns+" FROM messages WHERE conv_id = ? AND mod_seq > ? AND seq > ? AND seq <= ? ORDER BY mod_seq LIMIT ?",
				b.id, b.mod, b.min, b.cursor, left+1)
			if err != nil {
				return SyncResp{}, fmt.Errorf("sync changes %s: %w", b.id, err)
			}
			if sc.Changed, err = msgstore.ScanMessages(rows, nil); err != nil {
				return SyncResp{}, err
			}
			if len(sc.Changed) > left {
				sc.Changed, sc.HasMore = sc.Changed[:left], true
			}
			if n := fit(budget, sc.Changed); n < len(sc.Changed) {
				sc.Changed, sc.HasMore, left = sc.Changed[:n], true, n // the page is full
			}
			left -= len(sc.Changed)
		}
		if b.top > b.cursor && left > 0 {
			rows, err := from.QueryContext(ctx, "SELECT "+msgstore.SelectColumns+" FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?", b.id, b.cursor, left)
			if err != nil {
				return SyncResp{}, fmt.Errorf("sync %s: %w", b.id, err)
			}
			if sc.Messages, err = msgstore.ScanMessages(rows, sc.Messages); err != nil {
				return SyncResp{}, err
			}
			if n := fit(budget, sc.Messages); n < len(sc.Messages) {
				sc.Messages, left = sc.Messages[:n], n // the page is full
			}
			left -= len(sc.Messages)
		}
		if n := len(sc.Messages); b.top > b.cursor && (n == 0 || sc.Messages[n-1].Seq < b.top) {
			sc.HasMore = true
		}
		if err := s.attachReactions(ctx, c, b.id, sc.Messages); err != nil {
			return SyncResp{}, err
		}
		if err := s.attachReactions(ctx, c, b.id, sc.Changed); err != nil {
			return SyncResp{}, err
		}
		out.HasMore = out.HasMore || sc.HasMore
		out.Conversations = append(out.Conversations, sc)
	}
	return out, nil
}

// fit spends budget on msgs in order and returns how many fit. Messages changed
// since sent (Mod) may carry up to maxEmojis reactions, not attached yet.
func fit(budget *wire.Budget, msgs []wire.Message) int {
	for i := range msgs {
		n := msgs[i].Size()
		if msgs[i].Mod > 0 {
			n += 64 * maxEmojis
		}
		if !budget.Take(n) {
			return i
		}
	}
	return len(msgs)
}
