package friend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"natter/functions/deliver"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

// requests pages the caller's incoming or outgoing requests, newest first (by
// request id: a re-sent or re-opened request keeps its place of first sending).
func (s *Service) requests(ctx context.Context, c endpoint.Caller, r RequestsReq) (RequestsResp, error) {
	limit := validate.Limit(r.Limit, defaultPage, maxPage)
	self, other := "to_id", "from_id"
	if r.Direction == Outgoing {
		self, other = "from_id", "to_id"
	}
	// Served by ix_friend_requests_<dir> or, with a status, ix_friend_requests_<dir>_status.
	q := `SELECT r.id, r.from_id, r.to_id, r.message, r.status, r.created_at, r.updated_at, u.id, u.username, u.nickname, u.avatar
		FROM friend_requests r JOIN users u ON u.id = r.` + other + ` WHERE r.` + self + ` = ?`
	args := []any{c.UserID}
	if r.Status != "" {
		q += " AND r.status = ?"
		args = append(args, r.Status)
	}
	if r.Before > 0 {
		q += " AND r.id < ?"
		args = append(args, r.Before)
	}
	q += " ORDER BY r.id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return RequestsResp{}, fmt.Errorf("list requests: %w", err)
	}
	defer rows.Close()
	out := RequestsResp{Requests: make([]Request, 0, limit)}
	for rows.Next() {
		if len(out.Requests) == limit {
			out.HasMore = true
			break
		}
		var req Request
		var created, updated time.Time
		if err := rows.Scan(&req.RequestID, &req.From, &req.To, &req.Message, &req.Status, &created, &updated,
			&req.User.UserID, &req.User.Username, &req.User.Nickname, &req.User.Avatar); err != nil {
			return RequestsResp{}, fmt.Errorf("scan request: %w", err)
		}
		req.CreatedAt, req.UpdatedAt = ms(created), ms(updated)
		out.Requests = append(out.Requests, req)
	}
	return out, rows.Err()
}

// list returns all the caller's friends (at most MaxFriends, which accepting
// enforces), ordered by user id; clients sort for display.
func (s *Service) list(ctx context.Context, c endpoint.Caller, r PageReq) (ListResp, error) {
	limit := validate.Limit(r.Limit, s.cfg.MaxFriends, s.cfg.MaxFriends)
	rows, err := s.db.QueryContext(ctx, `SELECT f.friend_id, u.username, u.nickname, u.avatar, f.remark, f.created_at, b.user_id IS NOT NULL
		FROM friendships f JOIN users u ON u.id = f.friend_id
		LEFT JOIN blocks b ON b.user_id = f.user_id AND b.blocked_id = f.friend_id
		WHERE f.user_id = ? AND f.friend_id > ? ORDER BY f.friend_id LIMIT ?`, c.UserID, r.After, limit+1)
	if err != nil {
		return ListResp{}, fmt.Errorf("list friends: %w", err)
	}
	defer rows.Close()
	out := ListResp{Friends: []Friend{}}
	budget := wire.NewBudget()
	for rows.Next() {
		var f Friend
		var since time.Time
		if err := rows.Scan(&f.UserID, &f.Username, &f.Nickname, &f.Avatar, &f.Remark, &since, &f.Blocked); err != nil {
			return ListResp{}, fmt.Errorf("scan friend: %w", err)
		}
		f.Since = ms(since)
		if len(out.Friends) == limit || !budget.Take(cardSize(f.Username, f.Nickname, f.Avatar)+2*len(f.Remark)) {
			out.HasMore = true
			break
		}
		out.Friends = append(out.Friends, f)
	}
	return out, rows.Err()
}

// cardSize estimates a listed user's encoded size (escaping can double text).
func cardSize(username, nickname, avatar string) int {
	return 160 + 2*(len(username)+len(nickname)+len(avatar))
}

// delete ends a friendship in both directions, silently for the other side; the
// caller's other devices get friend.deleted. Idempotent.
func (s *Service) delete(ctx context.Context, c endpoint.Caller, r UserReq) (Empty, error) {
	if r.UserID == c.UserID {
		return Empty{}, imerr.New(imerr.BadRequest, "cannot unfriend yourself")
	}
	var n int64
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := lockPair(ctx, tx, c.UserID, r.UserID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
			c.UserID, r.UserID, r.UserID, c.UserID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return Empty{}, fmt.Errorf("delete friend: %w", err)
	}
	if n > 0 {
		s.changed(ctx, c.UserID, r.UserID)
		s.deliver.Push(ctx, deliver.ToUser(c.UserID), wire.FriendDeleted{UserRef: wire.UserRef{UserID: r.UserID}}, deliver.From(c))
	}
	return Empty{}, nil
}

// remark sets the caller's alias for a friend (empty clears it).
func (s *Service) remark(ctx context.Context, c endpoint.Caller, r RemarkReq) (Empty, error) {
	res, err := s.db.ExecContext(ctx, "UPDATE friendships SET remark = ? WHERE user_id = ? AND friend_id = ?", r.Remark, c.UserID, r.UserID)
	if err != nil {
		return Empty{}, fmt.Errorf("set remark: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return Empty{}, err
	}
	// No row changed: either not a friend, or the remark was already this value.
	var one int
	err = s.db.QueryRowContext(ctx, "SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?", c.UserID, r.UserID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return Empty{}, imerr.New(imerr.NotFound, "user %d is not your friend", r.UserID)
	}
	if err != nil {
		return Empty{}, fmt.Errorf("check friend: %w", err)
	}
	return Empty{}, nil
}
