package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"natter/shared/imerr"
	"natter/shared/logging"
)

// bannedNow is the SQL expression (one ? for now) that says whether a users row
// (columns prefixed by table, "u." or "") is banned at now: banned, and either
// for good or until a time still ahead.
func bannedNow(table string) string {
	return "(" + table + "banned AND (" + table + "banned_until IS NULL OR " + table + "banned_until > ?))"
}

// Ban marks user banned (until, if not zero; for good otherwise) and ends every
// session: each edge closes the user's connections at once (session.kicked with
// reason, then 3501) and refuses their tokens; login, refresh and
// session.connect/check refuse while the ban lasts. The back office calls it.
func (s *Service) Ban(ctx context.Context, user int64, until time.Time, reason string) (sessions int, err error) {
	var end sql.NullTime
	if !until.IsZero() {
		end = sql.NullTime{Time: until.UTC(), Valid: true}
	}
	res, err := s.db.ExecContext(ctx, "UPDATE users SET banned = TRUE, banned_until = ?, ban_reason = ? WHERE id = ? AND deleted_at IS NULL", end, reason, user)
	if err != nil {
		return 0, fmt.Errorf("ban: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if err := s.exists(ctx, user); err != nil {
			return 0, err
		}
	}
	logging.From(ctx).Info().Str("event", "security").Int64("user", user).Msg("account banned")
	return s.endSessions(ctx, user, "1 = ?", []any{1}, "account banned: "+reason)
}

// Unban lifts a ban.
func (s *Service) Unban(ctx context.Context, user int64) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE users SET banned = FALSE, banned_until = NULL, ban_reason = '' WHERE id = ?", user); err != nil {
		return fmt.Errorf("unban: %w", err)
	}
	return s.exists(ctx, user)
}

// LogoutEverywhere ends every session of user (the back office's force logout).
func (s *Service) LogoutEverywhere(ctx context.Context, user int64, reason string) (int, error) {
	if err := s.exists(ctx, user); err != nil {
		return 0, err
	}
	return s.endSessions(ctx, user, "1 = ?", []any{1}, reason)
}

// ResetPassword sets user's password (hashed as register does) and ends every
// session, so that whoever held the old one is out.
func (s *Service) ResetPassword(ctx context.Context, user int64, password string) (int, error) {
	if err := validPassword(password); err != nil {
		return 0, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	var hash string
	if err := s.argon(ctx, func() { hash = HashPassword(password) }); err != nil {
		return 0, err
	}
	res, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ? AND deleted_at IS NULL", hash, user)
	if err != nil {
		return 0, fmt.Errorf("reset password: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return 0, imerr.New(imerr.NotFound, "user %d not found", user)
	}
	return s.endSessions(ctx, user, "1 = ?", []any{1}, "the password was reset")
}

func (s *Service) exists(ctx context.Context, user int64) error {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM users WHERE id = ? AND deleted_at IS NULL", user).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return imerr.New(imerr.NotFound, "user %d not found", user)
	}
	return err
}
