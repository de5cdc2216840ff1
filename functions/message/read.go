package message

import (
	"context"
	"fmt"
	"slices"

	"natter/shared/endpoint"
)

func (s *Service) history(ctx context.Context, c endpoint.Caller, r HistoryReq) (HistoryResp, error) {
	conv, err := parseConv(r.ConvID)
	if err != nil {
		return HistoryResp{}, err
	}
	st, err := s.standingIn(ctx, c, conv)
	if err != nil {
		return HistoryResp{}, err
	}
	limit := r.Limit
	if limit == 0 {
		limit = 50
	}
	limit = min(limit, s.cfg.HistoryLimit)
	// Messages up to st.minSeq predate the caller's membership (groups that hide
	// history from newcomers).
	q := "SELECT " + msgColumns + " FROM messages WHERE conv_id = ? AND seq > ? "
	args := []any{conv.id, st.minSeq}
	switch {
	case r.After > 0:
		q += "AND seq > ? ORDER BY seq ASC LIMIT ?"
		args = append(args, r.After, limit+1)
	case r.Before > 0:
		q += "AND seq < ? ORDER BY seq DESC LIMIT ?"
		args = append(args, r.Before, limit+1)
	default:
		q += "ORDER BY seq DESC LIMIT ?"
		args = append(args, limit+1)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return HistoryResp{}, fmt.Errorf("history: %w", err)
	}
	msgs, err := scanMessages(rows, make([]Message, 0, limit+1))
	if err != nil {
		return HistoryResp{}, err
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[:limit]
	}
	if r.After == 0 {
		slices.Reverse(msgs)
	}
	return HistoryResp{Messages: msgs, HasMore: more}, nil
}

// sync returns, for each of the caller's conversations whose last seq is past the
// device's cursor, the messages after the cursor, oldest first, up to the limit in
// total. Conversations are served in id order so repeated calls make progress.
func (s *Service) sync(ctx context.Context, c endpoint.Caller, r SyncReq) (SyncResp, error) {
	limit := r.Limit
	if limit == 0 || limit > s.cfg.SyncLimit {
		limit = s.cfg.SyncLimit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.last_seq, m.min_seq FROM conversation_members m
		JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ? AND c.last_seq > m.min_seq ORDER BY c.id`, c.UserID)
	if err != nil {
		return SyncResp{}, fmt.Errorf("sync conversations: %w", err)
	}
	type behind struct {
		id          string
		cursor, top int64
	}
	var todo []behind
	for rows.Next() {
		var b behind
		var minSeq int64
		if err := rows.Scan(&b.id, &b.top, &minSeq); err != nil {
			rows.Close()
			return SyncResp{}, fmt.Errorf("scan conversation: %w", err)
		}
		b.cursor = max(r.Cursors[b.id], minSeq)
		if b.top > b.cursor {
			todo = append(todo, b)
		}
	}
	if err := rows.Close(); err != nil {
		return SyncResp{}, fmt.Errorf("sync conversations: %w", err)
	}
	out := SyncResp{Conversations: []SyncConv{}}
	left := limit
	for i, b := range todo {
		if left == 0 {
			out.HasMore = true
			break
		}
		rows, err := s.db.QueryContext(ctx, "SELECT "+msgColumns+" FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT ?", b.id, b.cursor, left)
		if err != nil {
			return SyncResp{}, fmt.Errorf("sync %s: %w", b.id, err)
		}
		msgs, err := scanMessages(rows, nil)
		if err != nil {
			return SyncResp{}, err
		}
		left -= len(msgs)
		sc := SyncConv{ConvID: b.id, LastSeq: b.top, Messages: msgs}
		if n := len(msgs); n == 0 || msgs[n-1].Seq < b.top {
			sc.HasMore = true
			out.HasMore = true
		}
		out.Conversations = append(out.Conversations, sc)
		if left == 0 && i < len(todo)-1 {
			out.HasMore = true
		}
	}
	return out, nil
}
