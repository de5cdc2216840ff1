package friend

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

// blockAdd puts r.UserID on the caller's blacklist. The friendship, if any, stays
// (unblocking restores things as they were), but neither side can message or
// request the other while the block lasts. Pending requests between the two end:
// the caller's own becomes cancelled (withdrawn), the blocked user's becomes
// declined, so neither status says "blocked". Idempotent.
func (s *Service) blockAdd(ctx context.Context, c endpoint.Caller, r UserReq) (Empty, error) {
	me, them := c.UserID, r.UserID
	if me == them {
		return Empty{}, imerr.New(imerr.BadRequest, "cannot block yourself")
	}
	now := s.at()
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		users, err := lockPair(ctx, tx, me, them)
		if err != nil {
			return err
		}
		if _, ok := users[them]; !ok {
			return imerr.New(imerr.NotFound, "user %d not found", them)
		}
		var n int
		var already bool
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(blocked_id = ?), 0) > 0 FROM blocks WHERE user_id = ?", them, me).Scan(&n, &already); err != nil {
			return fmt.Errorf("count blocks: %w", err)
		}
		if already {
			return nil
		}
		if n >= s.cfg.MaxBlocks {
			return imerr.New(imerr.Conflict, "you have reached the limit of %d blocked users", s.cfg.MaxBlocks)
		}
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)", me, them, now); err != nil {
			return fmt.Errorf("insert block: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE friend_requests SET status = IF(from_id = ?, ?, ?), updated_at = ?
			WHERE ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)) AND status = ?`,
			me, StatusCancelled, StatusDeclined, now, me, them, them, me, StatusPending)
		if err != nil {
			return fmt.Errorf("end pending requests: %w", err)
		}
		return nil
	})
	if err != nil {
		return Empty{}, fmt.Errorf("block: %w", err)
	}
	s.changed(ctx, me, them)
	return Empty{}, nil
}

// blockRemove takes r.UserID off the caller's blacklist. Idempotent.
func (s *Service) blockRemove(ctx context.Context, c endpoint.Caller, r UserReq) (Empty, error) {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?", c.UserID, r.UserID); err != nil {
		return Empty{}, fmt.Errorf("unblock: %w", err)
	}
	s.changed(ctx, c.UserID, r.UserID)
	return Empty{}, nil
}

// blockList returns the caller's whole blacklist (at most MaxBlocks), ordered by
// user id.
func (s *Service) blockList(ctx context.Context, c endpoint.Caller, r PageReq) (BlocksResp, error) {
	limit := validate.Limit(r.Limit, s.cfg.MaxBlocks, s.cfg.MaxBlocks)
	rows, err := s.db.QueryContext(ctx, `SELECT b.blocked_id, u.username, u.nickname, u.avatar, b.created_at
		FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.user_id = ? AND b.blocked_id > ? ORDER BY b.blocked_id LIMIT ?`, c.UserID, r.After, limit+1)
	if err != nil {
		return BlocksResp{}, fmt.Errorf("list blocks: %w", err)
	}
	defer rows.Close()
	out := BlocksResp{Blocks: []Block{}}
	budget := wire.NewBudget()
	for rows.Next() {
		var b Block
		var since time.Time
		if err := rows.Scan(&b.UserID, &b.Username, &b.Nickname, &b.Avatar, &since); err != nil {
			return BlocksResp{}, fmt.Errorf("scan block: %w", err)
		}
		b.Since = ms(since)
		if len(out.Blocks) == limit || !budget.Take(cardSize(b.Username, b.Nickname, b.Avatar)) {
			out.HasMore = true
			break
		}
		out.Blocks = append(out.Blocks, b)
	}
	return out, rows.Err()
}
