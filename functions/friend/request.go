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
	"natter/shared/subject"
	"natter/shared/wire"
)

// errCannotRequest is the answer whoever blocked whom, and for a target who takes
// no requests: the caller learns only that the request is not possible.
func errCannotRequest() error {
	return imerr.New(imerr.Forbidden, "cannot send a friend request to this user")
}

// reqRow is one direction's friend_requests row.
type reqRow struct {
	id      int64
	status  string
	created time.Time
}

// request sends, re-sends or re-opens the caller's request to r.To, or accepts
// both at once when r.To had already asked the caller.
func (s *Service) request(ctx context.Context, c endpoint.Caller, r RequestReq) (RequestResp, error) {
	me, them := c.UserID, r.To
	if me == them {
		return RequestResp{}, imerr.New(imerr.BadRequest, "cannot send a friend request to yourself")
	}
	now := s.at()
	var (
		out      RequestResp
		sender   User
		created  time.Time // of the pending request, for the push
		answered int64     // the target's request this one accepted
	)
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		out, answered = RequestResp{}, 0
		users, err := lockPair(ctx, tx, me, them)
		if err != nil {
			return err
		}
		if _, ok := users[them]; !ok {
			return imerr.New(imerr.NotFound, "user %d not found", them)
		}
		sender = users[me]
		var blocked, friends bool
		var privacy string
		err = tx.QueryRowContext(ctx, `SELECT
			EXISTS(SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?) OR EXISTS(SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?),
			EXISTS(SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?),
			COALESCE((SELECT friend_requests FROM user_privacy WHERE user_id = ?), ?)`,
			me, them, them, me, me, them, them, DefaultFriendRequests).Scan(&blocked, &friends, &privacy)
		if err != nil {
			return fmt.Errorf("pair state: %w", err)
		}
		if blocked {
			return errCannotRequest()
		}
		own, theirs, err := pairRequests(ctx, tx, me, them)
		if err != nil {
			return err
		}
		switch {
		case friends:
			out = RequestResp{Status: StatusAlreadyFriends}
			if own != nil {
				out.RequestID = own.id
			} else if theirs != nil {
				out.RequestID = theirs.id
			}
			return nil
		case theirs != nil && theirs.status == StatusPending:
			// They asked first: this request is their answer. Their privacy does
			// not apply, they asked.
			if err := s.checkFriendCaps(ctx, tx, me, them); err != nil {
				return err
			}
			if err := befriend(ctx, tx, me, them, now); err != nil {
				return err
			}
			id, _, err := saveRequest(ctx, tx, own, me, them, r.Message, StatusAccepted, now)
			if err != nil {
				return err
			}
			out, answered = RequestResp{RequestID: id, Status: StatusAccepted}, theirs.id
			return nil
		case privacy == Nobody:
			return errCannotRequest()
		}
		id, createdAt, err := saveRequest(ctx, tx, own, me, them, r.Message, StatusPending, now)
		if err != nil {
			return err
		}
		out, created = RequestResp{RequestID: id, Status: StatusPending}, createdAt
		return nil
	})
	if err != nil {
		return RequestResp{}, fmt.Errorf("friend request: %w", err)
	}
	switch out.Status {
	case StatusPending:
		// Also on a re-send: the first attempt may have committed and died before
		// pushing; clients key requests by request_id.
		s.deliver.Push(ctx, deliver.ToUser(them), wire.FriendRequest{RequestID: out.RequestID, From: me, Message: r.Message, CreatedAt: ms(created), User: wire.UserCard(sender)}, deliver.Origin{})
		s.publish(ctx, subject.EvtFriendRequestSent, RequestSentEvent{RequestID: out.RequestID, From: me, To: them, Message: r.Message, CreatedAt: ms(created)})
	case StatusAccepted:
		s.deliver.Push(ctx, deliver.ToUser(them), wire.FriendResponded{RequestID: answered, By: me, Accepted: true}, deliver.Origin{})
		s.added(ctx, c, them)
	}
	return out, nil
}

// pairRequests reads both directions' requests between me and them.
func pairRequests(ctx context.Context, tx *sql.Tx, me, them int64) (own, theirs *reqRow, err error) {
	rows, err := tx.QueryContext(ctx, "SELECT id, from_id, status, created_at FROM friend_requests WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)",
		me, them, them, me)
	if err != nil {
		return nil, nil, fmt.Errorf("pair requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r reqRow
		var from int64
		if err := rows.Scan(&r.id, &from, &r.status, &r.created); err != nil {
			return nil, nil, fmt.Errorf("scan request: %w", err)
		}
		if from == me {
			own = &r
		} else {
			theirs = &r
		}
	}
	return own, theirs, rows.Err()
}

// saveRequest stores me's request to them with status, reusing the pair's row.
// Re-sending a pending request keeps its id and created_at and updates the
// message; a row that is no longer pending (declined, cancelled, or accepted and
// the friendship since deleted) starts over as a new request. It returns the id
// and created_at.
func saveRequest(ctx context.Context, tx *sql.Tx, own *reqRow, me, them int64, msg, status string, now time.Time) (int64, time.Time, error) {
	if own == nil {
		res, err := tx.ExecContext(ctx, "INSERT INTO friend_requests (from_id, to_id, message, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
			me, them, msg, status, now, now)
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("insert request: %w", err)
		}
		id, err := res.LastInsertId()
		return id, now, err
	}
	created := now
	if own.status == StatusPending && status == StatusPending {
		created = own.created
	}
	_, err := tx.ExecContext(ctx, "UPDATE friend_requests SET message = ?, status = ?, created_at = ?, updated_at = ? WHERE id = ?",
		msg, status, created, now, own.id)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("update request: %w", err)
	}
	return own.id, created, nil
}

// befriend stores the friendship in both directions and marks any pending
// request between the two accepted. The caller holds both users' locks.
func befriend(ctx context.Context, tx *sql.Tx, a, b int64, now time.Time) error {
	lo, hi := min(a, b), max(a, b)
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO friendships (user_id, friend_id, created_at) VALUES (?, ?, ?), (?, ?, ?)",
		lo, hi, now, hi, lo, now); err != nil {
		return fmt.Errorf("insert friendship: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE friend_requests SET status = ?, updated_at = ? WHERE ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)) AND status = ?",
		StatusAccepted, now, a, b, b, a, StatusPending); err != nil {
		return fmt.Errorf("accept requests: %w", err)
	}
	return nil
}

// checkFriendCaps refuses a new friendship that would take either side past
// MaxFriends. Exact: the caller holds both users' locks.
func (s *Service) checkFriendCaps(ctx context.Context, tx *sql.Tx, me, them int64) error {
	var mine, theirs int
	err := tx.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM friendships WHERE user_id = ?), (SELECT COUNT(*) FROM friendships WHERE user_id = ?)",
		me, them).Scan(&mine, &theirs)
	if err != nil {
		return fmt.Errorf("count friends: %w", err)
	}
	if mine >= s.cfg.MaxFriends {
		return imerr.New(imerr.Conflict, "you have reached the limit of %d friends", s.cfg.MaxFriends)
	}
	if theirs >= s.cfg.MaxFriends {
		return imerr.New(imerr.Conflict, "this user cannot add more friends")
	}
	return nil
}

// added tells both sides of a new friendship; the caller's own connection has the
// reply and is skipped.
func (s *Service) added(ctx context.Context, c endpoint.Caller, other int64) {
	s.changed(ctx, c.UserID, other)
	s.deliver.Push(ctx, deliver.ToUser(other), wire.FriendAdded{UserRef: wire.UserRef{UserID: c.UserID}}, deliver.Origin{})
	s.deliver.Push(ctx, deliver.ToUser(c.UserID), wire.FriendAdded{UserRef: wire.UserRef{UserID: other}}, deliver.From(c))
}

// respond accepts or declines a request made to the caller.
func (s *Service) respond(ctx context.Context, c endpoint.Caller, r RespondReq) (RespondResp, error) {
	var from, to int64
	err := s.db.QueryRowContext(ctx, "SELECT from_id, to_id FROM friend_requests WHERE id = ?", r.RequestID).Scan(&from, &to)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && to != c.UserID) {
		// Someone else's request looks exactly like a missing one.
		return RespondResp{}, imerr.New(imerr.NotFound, "friend request %d not found", r.RequestID)
	}
	if err != nil {
		return RespondResp{}, fmt.Errorf("load request: %w", err)
	}
	accept := *r.Accept
	now := s.at()
	var status string
	changed := false
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		changed = false
		if _, err := lockPair(ctx, tx, from, to); err != nil {
			return err
		}
		// Rows are never deleted and only change under the pair's locks.
		var cur string
		if err := tx.QueryRowContext(ctx, "SELECT status FROM friend_requests WHERE id = ?", r.RequestID).Scan(&cur); err != nil {
			return fmt.Errorf("request status: %w", err)
		}
		switch {
		case cur == StatusPending && accept:
			if err := s.checkFriendCaps(ctx, tx, to, from); err != nil {
				return err
			}
			if err := befriend(ctx, tx, from, to, now); err != nil {
				return err
			}
			status, changed = StatusAccepted, true
		case cur == StatusPending:
			if _, err := tx.ExecContext(ctx, "UPDATE friend_requests SET status = ?, updated_at = ? WHERE id = ?", StatusDeclined, now, r.RequestID); err != nil {
				return fmt.Errorf("decline: %w", err)
			}
			status, changed = StatusDeclined, true
		case cur == StatusAccepted && accept, cur == StatusDeclined && !accept:
			status = cur // a retry, or another device answered the same way
		default:
			return imerr.New(imerr.Conflict, "this request is already %s", cur)
		}
		return nil
	})
	if err != nil {
		return RespondResp{}, fmt.Errorf("respond: %w", err)
	}
	if changed {
		s.deliver.Push(ctx, deliver.ToUser(from), wire.FriendResponded{RequestID: r.RequestID, By: to, Accepted: accept}, deliver.Origin{})
		if accept {
			s.added(ctx, c, from)
		}
	}
	return RespondResp{Status: status}, nil
}
