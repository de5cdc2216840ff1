package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/validate"
	"natter/shared/wire"
)

// DeviceLogoutReq is account.device.logout: sign out another of my devices.
type DeviceLogoutReq struct {
	DeviceID string `json:"device_id"`
}

func (r *DeviceLogoutReq) Validate() error { return validate.Token("device_id", r.DeviceID) }

// LoggedOut says how many sessions ended.
type LoggedOut struct {
	Sessions int `json:"sessions"`
}

// deviceLogout ends the sessions of one of the caller's other devices: their
// refresh tokens stop working, edges refuse their access tokens, and their
// connections close with 3501 after session.kicked. The calling device uses
// account.logout. Idempotent: a device with no live session ends nothing.
func (s *Service) deviceLogout(ctx context.Context, c endpoint.Caller, r DeviceLogoutReq) (LoggedOut, error) {
	if r.DeviceID == c.DeviceID {
		return LoggedOut{}, imerr.New(imerr.BadRequest, "this is the calling device: use account.logout")
	}
	n, err := s.endSessions(ctx, c.UserID, "device_id = ?", []any{r.DeviceID}, "signed out from another device")
	return LoggedOut{Sessions: n}, err
}

// logoutAll ends every session of the caller's but the calling one.
func (s *Service) logoutAll(ctx context.Context, c endpoint.Caller, _ Empty) (LoggedOut, error) {
	n, err := s.endSessions(ctx, c.UserID, "id <> ?", []any{c.SessionID}, "signed out from another device")
	return LoggedOut{Sessions: n}, err
}

// endSessions revokes the user's live sessions matching where, and tells every
// edge (kick now, refuse their tokens from then on).
func (s *Service) endSessions(ctx context.Context, uid int64, where string, args []any, reason string) (int, error) {
	var ended []string
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		ended = ended[:0]
		rows, err := tx.QueryContext(ctx, "SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND "+where+" FOR UPDATE", append([]any{uid}, args...)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ended = append(ended, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if len(ended) == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND "+where, append([]any{s.now(), uid}, args...)...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	for _, sid := range ended {
		s.revoked(ctx, uid, sid, reason)
	}
	return len(ended), nil
}

// PasswordChangeReq is account.password.change.
type PasswordChangeReq struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

func (r *PasswordChangeReq) Validate() error {
	if r.OldPassword == "" || len(r.OldPassword) > maxPassword {
		return errors.New("old_password required")
	}
	if r.OldPassword == r.NewPassword {
		return errors.New("new_password: the same as the old one")
	}
	return validPassword(r.NewPassword)
}

// passwordChange sets a new password when the old one is right, and ends every
// other session (someone who knew the old password is signed out). A wrong old
// password counts against the account's login guard like a failed login.
func (s *Service) passwordChange(ctx context.Context, c endpoint.Caller, r PasswordChangeReq) (LoggedOut, error) {
	name, err := s.checkOwnPassword(ctx, c, r.OldPassword)
	if err != nil {
		return LoggedOut{}, err
	}
	var hash string
	if err := s.argon(ctx, func() { hash = HashPassword(r.NewPassword) }); err != nil {
		return LoggedOut{}, err
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, c.UserID); err != nil {
		return LoggedOut{}, fmt.Errorf("set password: %w", err)
	}
	s.guard.succeeded(ctx, name)
	logging.From(ctx).Info().Str("event", "security").Int64("user", c.UserID).Str("client_ip", c.ClientIP).Msg("password changed")
	n, err := s.endSessions(ctx, c.UserID, "id <> ?", []any{c.SessionID}, "the password was changed")
	return LoggedOut{Sessions: n}, err
}

// checkOwnPassword verifies the caller's password for a sensitive change, under
// the same per-account guard as login; it returns the canonical username.
func (s *Service) checkOwnPassword(ctx context.Context, c endpoint.Caller, password string) (string, error) {
	var name, stored string
	err := s.db.QueryRowContext(ctx, "SELECT username, password_hash FROM users WHERE id = ? AND deleted_at IS NULL", c.UserID).Scan(&name, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return "", imerr.New(imerr.Unauthorized, "session ended: log in again")
	}
	if err != nil {
		return "", fmt.Errorf("load user: %w", err)
	}
	if err := s.guard.check(ctx, name); err != nil {
		return "", err
	}
	var ok bool
	if aerr := s.argon(ctx, func() { ok, err = checkPassword(stored, password) }); aerr != nil {
		return "", aerr
	}
	if err != nil {
		return "", fmt.Errorf("user %d: %w", c.UserID, err)
	}
	if !ok {
		s.guard.failed(ctx, name, c.UserID, c)
		return "", imerr.New(imerr.Forbidden, "wrong password")
	}
	return name, nil
}

// DeleteReq is account.delete: the password confirms it.
type DeleteReq struct {
	Password string `json:"password"`
}

func (r *DeleteReq) Validate() error {
	if r.Password == "" || len(r.Password) > maxPassword {
		return errors.New("password required")
	}
	return nil
}

// deleteAccount ends an account for good. In one transaction the user row is
// kept (ids stay unique, messages keep their sender) but anonymised: username
// "deleted-<id>", nickname "Deleted user", no avatar or bio, a password nothing
// matches; friendships both ways, pending friend requests, blocks the user made
// and their privacy settings are removed; every session ends. Then
// im.evt.account.deleted (JetStream, the audit trail) takes the user out of their
// groups: the group domain hands each group they own to its longest-serving
// admin, else member, and dismisses a group with nobody else (functions/group
// purge.go). Messages stay, under "Deleted user".
func (s *Service) deleteAccount(ctx context.Context, c endpoint.Caller, r DeleteReq) (LoggedOut, error) {
	if _, err := s.checkOwnPassword(ctx, c, r.Password); err != nil {
		return LoggedOut{}, err
	}
	now := s.now()
	anon := "deleted-" + strconv.FormatInt(c.UserID, 10)
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`UPDATE users SET deleted_at = ?, username = ?, nickname = 'Deleted user', avatar = '', bio = '', password_hash = '!',
				register_key = NULL WHERE id = ? AND deleted_at IS NULL`, []any{now, anon, c.UserID}},
			{"DELETE FROM friendships WHERE user_id = ? OR friend_id = ?", []any{c.UserID, c.UserID}},
			{"UPDATE friend_requests SET status = 'cancelled', updated_at = ? WHERE (from_id = ? OR to_id = ?) AND status = 'pending'", []any{now, c.UserID, c.UserID}},
			{"DELETE FROM blocks WHERE user_id = ?", []any{c.UserID}},
			{"DELETE FROM user_privacy WHERE user_id = ?", []any{c.UserID}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return LoggedOut{}, fmt.Errorf("delete account: %w", err)
	}
	n, err := s.endSessions(ctx, c.UserID, "1 = ?", []any{1}, "the account was deleted")
	if err != nil {
		return LoggedOut{}, err
	}
	// Friendships and blocks changed: every worker forgets its cached answers.
	if b, err := json.Marshal(wire.RelationsChanged{Users: []int64{c.UserID}}); err == nil {
		_ = s.nc.Publish(subject.EvtRelationsChanged, b)
	}
	logging.From(ctx).Info().Str("event", "security").Int64("user", c.UserID).Str("client_ip", c.ClientIP).Msg("account deleted")
	b, _ := json.Marshal(wire.AccountDeleted{UserID: c.UserID, At: now.UnixMilli(), ClientIP: c.ClientIP})
	if err := s.nc.Publish(subject.EvtAccountDeleted, b); err != nil {
		return LoggedOut{}, fmt.Errorf("publish account.deleted: %w", err) // a retry publishes again
	}
	return LoggedOut{Sessions: n}, nil
}
