package risk

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

var errNoMessage = imerr.New(imerr.NotFound, "message not found")

// FlagMessage queues a stored message that a review word matched (the message
// domain calls it after the send or edit). A message is queued once; flagged
// again (an edit), it is pending again with the new text.
func (s *Service) FlagMessage(ctx context.Context, m wire.Message, text string, words []string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO review_items (source, kind, conv_id, seq, target_user, excerpt, words)
		VALUES ('word', 'message', ?, ?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE status = 'pending', excerpt = VALUES(excerpt), words = VALUES(words), handled_by = 0, handled_at = NULL`,
		m.ConvID, m.Seq, m.Sender, excerpt(text), excerpt(strings.Join(words, ",")))
	if err != nil {
		return fmt.Errorf("flag message: %w", err)
	}
	return nil
}

// report queues a user's report of a message they can see or of another user.
func (s *Service) report(ctx context.Context, c endpoint.Caller, r ReportReq) (ReportResp, error) {
	var pending int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM review_items WHERE reporter_id = ? AND status = 'pending'", c.UserID).Scan(&pending); err != nil {
		return ReportResp{}, fmt.Errorf("count reports: %w", err)
	}
	if pending >= maxPendingByOne {
		return ReportResp{}, imerr.New(imerr.RateLimited, "at most %d of your reports can wait for review", maxPendingByOne)
	}
	kind, target, text := "user", r.UserID, ""
	if r.UserID != 0 {
		if r.UserID == c.UserID {
			return ReportResp{}, imerr.New(imerr.BadRequest, "you cannot report yourself")
		}
		err := s.db.QueryRowContext(ctx, "SELECT nickname FROM users WHERE id = ? AND deleted_at IS NULL", r.UserID).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			return ReportResp{}, imerr.New(imerr.NotFound, "user not found")
		}
		if err != nil {
			return ReportResp{}, fmt.Errorf("reported user: %w", err)
		}
		text = "nickname: " + text
	} else {
		kind = "message"
		var err error
		if target, text, err = s.reportedMessage(ctx, c, r.ConvID, r.Seq); err != nil {
			return ReportResp{}, err
		}
	}
	var id int64
	err := s.db.QueryRowContext(ctx, "SELECT id FROM review_items WHERE source = 'report' AND reporter_id = ? AND kind = ? AND conv_id = ? AND seq = ? AND target_user = ?",
		c.UserID, kind, r.ConvID, r.Seq, target).Scan(&id)
	if err == nil {
		return ReportResp{ID: id}, nil // reported before
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return ReportResp{}, fmt.Errorf("find report: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO review_items (source, kind, conv_id, seq, target_user, reporter_id, reason, note, excerpt)
		VALUES ('report', ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)`,
		kind, r.ConvID, r.Seq, target, c.UserID, r.Reason, r.Note, excerpt(text))
	if err != nil {
		return ReportResp{}, fmt.Errorf("report: %w", err)
	}
	id, err = res.LastInsertId()
	return ReportResp{ID: id}, err
}

// reportedMessage checks that c can see message seq of conv (a member whose
// history includes it) and returns its sender and text.
func (s *Service) reportedMessage(ctx context.Context, c endpoint.Caller, conv string, seq int64) (int64, string, error) {
	id, err := convid.Parse(conv)
	if err != nil {
		return 0, "", err
	}
	if id.Kind == convid.Direct && !id.Has(c.UserID) {
		return 0, "", errNoMessage
	}
	var minSeq int64
	err = s.db.QueryRowContext(ctx, "SELECT min_seq FROM conversation_members WHERE conv_id = ? AND user_id = ?", id.Raw, c.UserID).Scan(&minSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", errNoMessage
	}
	if err != nil {
		return 0, "", fmt.Errorf("reporter standing: %w", err)
	}
	if id.Kind == convid.Group {
		var one int
		err := s.db.QueryRowContext(ctx, "SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?", id.Group, c.UserID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, "", errNoMessage
		}
		if err != nil {
			return 0, "", fmt.Errorf("reporter membership: %w", err)
		}
	}
	if seq <= minSeq {
		return 0, "", errNoMessage
	}
	var sender, recalled int64
	var typ string
	var content []byte
	err = s.db.QueryRowContext(ctx, "SELECT sender_id, kind, content, recalled_by FROM messages WHERE conv_id = ? AND seq = ?", id.Raw, seq).
		Scan(&sender, &typ, &content, &recalled)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", errNoMessage
	}
	if err != nil {
		return 0, "", fmt.Errorf("reported message: %w", err)
	}
	switch {
	case typ == wire.TypeSystem:
		return 0, "", imerr.New(imerr.BadRequest, "system messages cannot be reported")
	case recalled != 0:
		return 0, "", imerr.New(imerr.Conflict, "the message was recalled")
	case sender == c.UserID:
		return 0, "", imerr.New(imerr.BadRequest, "you cannot report your own message")
	}
	var t struct {
		Text string `json:"text"`
	}
	if (typ == wire.TypeText || typ == wire.TypeRich) && json.Unmarshal(content, &t) == nil {
		return sender, t.Text, nil
	}
	return sender, typ + ": " + string(content), nil
}

const itemColumns = `id, source, kind, conv_id, seq, target_user, reporter_id, reason, note, excerpt, words, status, handled_by, handled_at, created_at`

func scanItem(row interface{ Scan(...any) error }) (Item, error) {
	var it Item
	var handled sql.NullTime
	var created time.Time
	err := row.Scan(&it.ID, &it.Source, &it.Kind, &it.ConvID, &it.Seq, &it.TargetUser, &it.ReporterID, &it.Reason, &it.Note, &it.Excerpt,
		&it.Words, &it.Status, &it.HandledBy, &handled, &created)
	if handled.Valid {
		it.HandledAt = handled.Time.UnixMilli()
	}
	it.CreatedAt = created.UnixMilli()
	return it, err
}

// reviewList pages through the items of one status, oldest first.
func (s *Service) reviewList(ctx context.Context, _ endpoint.Caller, r ReviewListReq) (ReviewListResp, error) {
	status := r.Status
	if status == "" {
		status = StatusPending
	}
	limit := validate.Limit(r.Limit, defaultPage, maxPage)
	rows, err := s.db.QueryContext(ctx, "SELECT "+itemColumns+" FROM review_items WHERE status = ? AND id > ? ORDER BY id LIMIT ?", status, r.After, limit+1)
	if err != nil {
		return ReviewListResp{}, fmt.Errorf("review list: %w", err)
	}
	defer rows.Close()
	out := ReviewListResp{Items: []Item{}}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return out, err
		}
		out.Items = append(out.Items, it)
	}
	if len(out.Items) > limit {
		out.Items, out.HasMore = out.Items[:limit], true
	}
	return out, rows.Err()
}

func (s *Service) item(ctx context.Context, id int64) (Item, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, "SELECT "+itemColumns+" FROM review_items WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return it, imerr.New(imerr.NotFound, "no review item %d", id)
	}
	if err != nil {
		return it, fmt.Errorf("review item: %w", err)
	}
	return it, nil
}

// settle marks a pending item handled; an item handled the same way before is
// answered as it is (a retry), one handled otherwise is a conflict.
func (s *Service) settle(ctx context.Context, c endpoint.Caller, it Item, status string) (Item, error) {
	if it.Status == status {
		return it, nil
	}
	if it.Status != StatusPending {
		return it, imerr.New(imerr.Conflict, "the item was %s already", it.Status)
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	res, err := s.db.ExecContext(ctx, "UPDATE review_items SET status = ?, handled_by = ?, handled_at = ? WHERE id = ? AND status = 'pending'",
		status, c.UserID, now, it.ID)
	if err != nil {
		return it, fmt.Errorf("settle review item: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return s.item(ctx, it.ID) // settled concurrently: answer what it is now
	}
	it.Status, it.HandledBy, it.HandledAt = status, c.UserID, now.UnixMilli()
	return it, nil
}

// reviewApprove keeps the content: the item leaves the queue.
func (s *Service) reviewApprove(ctx context.Context, c endpoint.Caller, r ReviewReq) (Item, error) {
	it, err := s.item(ctx, r.ID)
	if err != nil {
		return it, err
	}
	before := it.Status
	if it, err = s.settle(ctx, c, it, StatusApproved); err != nil {
		return it, err
	}
	if before != it.Status {
		Record(ctx, s.audit, s.log, Entry(c, "admin.review.approve", "review:"+strconv.FormatInt(it.ID, 10), before, it.Status))
	}
	return it, nil
}

// reviewDelete removes the message for everyone (recalled, with a system
// notice) and, with Ban, bans its sender or the reported user. Other pending
// items of the same message are settled with it.
func (s *Service) reviewDelete(ctx context.Context, c endpoint.Caller, r ReviewDeleteReq) (Item, error) {
	it, err := s.item(ctx, r.ID)
	if err != nil {
		return it, err
	}
	if it.Kind != "message" && !r.Ban {
		return it, imerr.New(imerr.BadRequest, "a reported user has no message to delete: approve the report, or ban the user")
	}
	if r.Ban && s.banner == nil {
		return it, imerr.New(imerr.Unavailable, "banning is not available on this server")
	}
	if it.Status == StatusApproved {
		return it, imerr.New(imerr.Conflict, "the item was approved already")
	}
	before := it.Status
	if it.Kind == "message" {
		if s.remover == nil {
			return it, imerr.New(imerr.Unavailable, "message removal is not available on this server")
		}
		if _, err := s.remover.Remove(ctx, it.ConvID, it.Seq, "moderation", "mod-"+strconv.FormatInt(it.ID, 10)); err != nil {
			return it, err
		}
	}
	if r.Ban {
		var until time.Time
		if r.BanUntil > 0 {
			until = time.UnixMilli(r.BanUntil)
		}
		if err := s.banner.Ban(ctx, c.UserID, it.TargetUser, r.BanReason, until); err != nil {
			return it, err
		}
	}
	if it, err = s.settle(ctx, c, it, StatusDeleted); err != nil {
		return it, err
	}
	if it.Kind == "message" {
		if _, err := s.db.ExecContext(ctx, "UPDATE review_items SET status = 'deleted', handled_by = ?, handled_at = ? WHERE kind = 'message' AND conv_id = ? AND seq = ? AND status = 'pending'",
			c.UserID, s.now().UTC().Truncate(time.Millisecond), it.ConvID, it.Seq); err != nil {
			return it, fmt.Errorf("settle other items: %w", err)
		}
	}
	Record(ctx, s.audit, s.log, Entry(c, "admin.review.delete", "review:"+strconv.FormatInt(it.ID, 10), before,
		map[string]any{"status": it.Status, "conv_id": it.ConvID, "seq": it.Seq, "banned": r.Ban, "user": it.TargetUser}))
	return it, nil
}
