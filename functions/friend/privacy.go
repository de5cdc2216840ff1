package friend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"natter/shared/db"
	"natter/shared/endpoint"
)

func (s *Service) privacyGet(ctx context.Context, c endpoint.Caller, _ Empty) (Privacy, error) {
	p := Privacy{FriendRequests: DefaultFriendRequests, Messages: DefaultMessages, Groups: DefaultGroups, Presence: DefaultPresence, Search: DefaultSearch}
	err := s.db.QueryRowContext(ctx, "SELECT friend_requests, messages, add_to_groups, presence, search FROM user_privacy WHERE user_id = ?", c.UserID).
		Scan(&p.FriendRequests, &p.Messages, &p.Groups, &p.Presence, &p.Search)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Privacy{}, fmt.Errorf("load privacy: %w", err)
	}
	return p, nil
}

// privacySet changes the fields present and answers the resulting settings. A
// user back on both defaults loses the row, so the table holds only users who
// differ from them.
func (s *Service) privacySet(ctx context.Context, c endpoint.Caller, r PrivacySetReq) (Privacy, error) {
	var p Privacy
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO user_privacy (user_id, friend_requests, messages, add_to_groups, presence, search) VALUES (?, COALESCE(?, ?), COALESCE(?, ?), COALESCE(?, ?), COALESCE(?, ?), COALESCE(?, ?))"+
			" ON DUPLICATE KEY UPDATE friend_requests = COALESCE(?, friend_requests), messages = COALESCE(?, messages), add_to_groups = COALESCE(?, add_to_groups), presence = COALESCE(?, presence), search = COALESCE(?, search)",
			c.UserID, r.FriendRequests, DefaultFriendRequests, r.Messages, DefaultMessages, r.Groups, DefaultGroups, r.Presence, DefaultPresence, r.Search, DefaultSearch,
			r.FriendRequests, r.Messages, r.Groups, r.Presence, r.Search)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT friend_requests, messages, add_to_groups, presence, search FROM user_privacy WHERE user_id = ?", c.UserID).
			Scan(&p.FriendRequests, &p.Messages, &p.Groups, &p.Presence, &p.Search); err != nil {
			return err
		}
		if p.FriendRequests == DefaultFriendRequests && p.Messages == DefaultMessages && p.Groups == DefaultGroups && p.Presence == DefaultPresence && p.Search == DefaultSearch {
			_, err = tx.ExecContext(ctx, "DELETE FROM user_privacy WHERE user_id = ?", c.UserID)
		}
		return err
	})
	if err != nil {
		return Privacy{}, fmt.Errorf("set privacy: %w", err)
	}
	s.changed(ctx, c.UserID)
	return p, nil
}
