package friend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/username"
	"natter/shared/wire"
)

// LookupReq is user.lookup: one user by exact username.
type LookupReq struct {
	Username string `json:"username"`
}

func (r *LookupReq) Validate() error {
	if r.Username == "" || len(r.Username) > 64 {
		return errors.New("username required")
	}
	return nil
}

var errNoSuchUser = imerr.New(imerr.NotFound, "no user with this username")

// lookup finds a user by exact username, so that a newcomer can send a friend
// request to someone whose username they were told. Only exact names match (no
// prefix, no listing). A user who takes no friend requests is found only by
// friends, and a user who blocked the caller is not found; either answers as a
// username nobody has.
func (s *Service) lookup(ctx context.Context, c endpoint.Caller, r LookupReq) (wire.UserCard, error) {
	name, err := username.Canonical(r.Username)
	if err != nil {
		return wire.UserCard{}, errNoSuchUser
	}
	var u wire.UserCard
	var requests sql.NullString
	var friends, blockedBy bool
	err = s.db.QueryRowContext(ctx, `SELECT u.id, u.username, u.nickname, u.avatar, p.friend_requests,
			EXISTS(SELECT 1 FROM friendships f WHERE f.user_id = u.id AND f.friend_id = ?),
			EXISTS(SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?)
		FROM users u LEFT JOIN user_privacy p ON p.user_id = u.id WHERE u.username = ?`, c.UserID, c.UserID, name).
		Scan(&u.UserID, &u.Username, &u.Nickname, &u.Avatar, &requests, &friends, &blockedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return wire.UserCard{}, errNoSuchUser
	}
	if err != nil {
		return wire.UserCard{}, fmt.Errorf("look up user: %w", err)
	}
	if u.UserID != c.UserID && (blockedBy || (requests.String == Nobody && !friends)) {
		return wire.UserCard{}, errNoSuchUser
	}
	return u, nil
}
