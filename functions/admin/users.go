package admin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"natter/shared/imerr"
)

const userColumns = `u.id, u.username, u.nickname, u.created_at, u.banned, u.banned_until, u.ban_reason, u.deleted_at IS NOT NULL,
	(SELECT MAX(s.last_active_at) FROM sessions s WHERE s.user_id = u.id)`

func scanUser(sc interface{ Scan(...any) error }, now time.Time) (User, error) {
	var u User
	var created time.Time
	var until, active sql.NullTime
	if err := sc.Scan(&u.ID, &u.Username, &u.Nickname, &created, &u.Banned, &until, &u.BanReason, &u.Deleted, &active); err != nil {
		return User{}, err
	}
	u.CreatedAt = ms(created)
	if active.Valid {
		u.LastActive = ms(active.Time)
	}
	if until.Valid {
		u.BannedUntil = ms(until.Time)
		if !until.Time.After(now) { // the ban has run out
			u.Banned, u.BannedUntil, u.BanReason = false, 0, ""
		}
	}
	if !u.Banned {
		u.BanReason = ""
	}
	return u, nil
}

// users answers admin.users.list: by id, a username prefix or an exact id.
func (s *Service) users(ctx context.Context, _ actor, r UsersReq) (UsersResp, error) {
	limit := min(max(r.Limit, 0), maxPage)
	if limit == 0 {
		limit = 50
	}
	q := "SELECT " + userColumns + " FROM users u WHERE u.id > ?"
	args := []any{r.After}
	if query := strings.TrimSpace(r.Query); query != "" {
		if id, err := strconv.ParseInt(query, 10, 64); err == nil {
			q += " AND (u.id = ? OR u.username LIKE ?)"
			args = append(args, id, likePrefix(strings.ToLower(query)))
		} else {
			q += " AND u.username LIKE ?"
			args = append(args, likePrefix(strings.ToLower(query)))
		}
	}
	if r.Banned {
		q += " AND u.banned AND (u.banned_until IS NULL OR u.banned_until > ?)"
		args = append(args, s.now().UTC())
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY u.id LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return UsersResp{}, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := UsersResp{Users: []User{}}
	now := s.now()
	for rows.Next() {
		u, err := scanUser(rows, now)
		if err != nil {
			return UsersResp{}, err
		}
		if len(out.Users) == limit {
			out.HasMore = true
			break
		}
		out.Users = append(out.Users, u)
	}
	return out, rows.Err()
}

// likePrefix escapes s for LIKE and matches it as a prefix.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s) + "%"
}

func likeAnywhere(s string) string { return "%" + likePrefix(s) }

func (s *Service) loadUser(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users u WHERE u.id = ?", id), s.now())
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, imerr.New(imerr.NotFound, "user %d not found", id)
	}
	if err != nil {
		return User{}, fmt.Errorf("load user %d: %w", id, err)
	}
	return u, nil
}

// user answers admin.users.get: the user, their live sessions (online or not),
// their first groups and their counts.
func (s *Service) user(ctx context.Context, _ actor, r UserReq) (UserDetail, error) {
	u, err := s.loadUser(ctx, r.UserID)
	if err != nil {
		return UserDetail{}, err
	}
	out := UserDetail{User: u, Devices: []Device{}, Groups: []GroupRef{}}
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, platform, created_at, last_active_at, last_ip FROM sessions
		WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at LIMIT ?`, r.UserID, s.now().UTC(), maxPage)
	if err != nil {
		return UserDetail{}, fmt.Errorf("sessions: %w", err)
	}
	for rows.Next() {
		var d Device
		var created time.Time
		var active sql.NullTime
		if err := rows.Scan(&d.SessionID, &d.DeviceID, &d.Platform, &created, &active, &d.LastIP); err != nil {
			rows.Close()
			return UserDetail{}, err
		}
		d.LoggedInAt = ms(created)
		if active.Valid {
			d.LastActive = ms(active.Time)
		}
		out.Devices = append(out.Devices, d)
	}
	if err := rows.Close(); err != nil {
		return UserDetail{}, err
	}
	if err := s.markOnline(ctx, r.UserID, out.Devices); err != nil {
		return UserDetail{}, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT g.id, g.name, m.role FROM group_members m JOIN chat_groups g ON g.id = m.group_id
		WHERE m.user_id = ? ORDER BY g.id LIMIT ?`, r.UserID, maxPage)
	if err != nil {
		return UserDetail{}, fmt.Errorf("groups: %w", err)
	}
	for rows.Next() {
		var g GroupRef
		var role int
		if err := rows.Scan(&g.ID, &g.Name, &role); err != nil {
			rows.Close()
			return UserDetail{}, err
		}
		g.Role = roleName(role)
		out.Groups = append(out.Groups, g)
	}
	if err := rows.Close(); err != nil {
		return UserDetail{}, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM friendships WHERE user_id = ?),
		(SELECT COUNT(*) FROM group_members WHERE user_id = ?),
		(SELECT COUNT(*) FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?),
		(SELECT COUNT(*) FROM blocks WHERE user_id = ?)`, r.UserID, r.UserID, r.UserID, s.now().UTC(), r.UserID).
		Scan(&out.Counts.Friends, &out.Counts.Groups, &out.Counts.Sessions, &out.Counts.Blocks)
	if err != nil {
		return UserDetail{}, fmt.Errorf("counts: %w", err)
	}
	return out, nil
}

// markOnline sets Online on the devices with a connection (presence: the
// account domain's registry keeps a hash of connection -> device per user).
func (s *Service) markOnline(ctx context.Context, user int64, devs []Device) error {
	if len(devs) == 0 || s.presence == nil {
		return nil
	}
	online, err := s.presence.Devices(ctx, user)
	if err != nil {
		return err
	}
	for i := range devs {
		_, devs[i].Online = online[devs[i].DeviceID]
	}
	return nil
}

func roleName(r int) string {
	switch r {
	case 2:
		return "owner"
	case 1:
		return "admin"
	}
	return "member"
}

type banState struct {
	Banned bool   `json:"banned"`
	Until  int64  `json:"until,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (u User) banState() banState {
	return banState{Banned: u.Banned, Until: u.BannedUntil, Reason: u.BanReason}
}

// ban answers admin.users.ban: the account domain marks the user banned and
// ends every session (their connections close with session.kicked and 3501 on
// every edge, their tokens are refused), the send-permission caches forget
// them, and the audit log gets before and after.
func (s *Service) ban(ctx context.Context, a actor, r BanReq) (Ended, error) {
	var until time.Time
	if r.Until > 0 {
		until = time.UnixMilli(r.Until)
		if !until.After(s.now()) {
			return Ended{}, imerr.New(imerr.BadRequest, "until is in the past")
		}
	}
	n, err := s.banUser(ctx, a, r.UserID, until, r.Reason)
	return Ended{Sessions: n}, err
}

func (s *Service) banUser(ctx context.Context, a actor, user int64, until time.Time, reason string) (int, error) {
	before, err := s.loadUser(ctx, user)
	if err != nil {
		return 0, err
	}
	n, err := s.accounts.Ban(ctx, user, until, reason)
	if err != nil {
		return 0, err
	}
	s.forgetUser(user)
	after, err := s.loadUser(ctx, user)
	if err != nil {
		return 0, err
	}
	rec := byOperator(a, "user.ban", KindUser, user)
	rec.before, rec.after, rec.detail = before.banState(), after.banState(), fmt.Sprintf("%d sessions ended", n)
	return n, s.audit(ctx, rec)
}

// Ban bans user on operator's behalf, as admin.users.ban does: the review
// queue's "delete and ban" (functions/risk's Banner, which the worker wires to
// this).
func (s *Service) Ban(ctx context.Context, operator, user int64, reason string, until time.Time) error {
	if s.accounts == nil {
		return imerr.New(imerr.Unavailable, "bans are not served here")
	}
	a, err := s.operator(ctx, operator)
	if err != nil {
		return err
	}
	_, err = s.banUser(ctx, a, user, until, reason)
	return err
}

func (s *Service) unban(ctx context.Context, a actor, r UserReq) (Empty, error) {
	before, err := s.loadUser(ctx, r.UserID)
	if err != nil {
		return Empty{}, err
	}
	if err := s.accounts.Unban(ctx, r.UserID); err != nil {
		return Empty{}, err
	}
	s.forgetUser(r.UserID)
	rec := byOperator(a, "user.unban", KindUser, r.UserID)
	rec.before, rec.after = before.banState(), banState{}
	return Empty{}, s.audit(ctx, rec)
}

// forceLogout ends every session of the user: connections close at once.
func (s *Service) forceLogout(ctx context.Context, a actor, r UserReq) (Ended, error) {
	n, err := s.accounts.LogoutEverywhere(ctx, r.UserID, "signed out by an operator")
	if err != nil {
		return Ended{}, err
	}
	rec := byOperator(a, "user.logout", KindUser, r.UserID)
	rec.detail = fmt.Sprintf("%d sessions ended", n)
	return Ended{Sessions: n}, s.audit(ctx, rec)
}

func (s *Service) resetPassword(ctx context.Context, a actor, r ResetPasswordReq) (Ended, error) {
	n, err := s.accounts.ResetPassword(ctx, r.UserID, r.Password)
	if err != nil {
		return Ended{}, err
	}
	rec := byOperator(a, "user.password_reset", KindUser, r.UserID)
	rec.detail = fmt.Sprintf("%d sessions ended", n)
	return Ended{Sessions: n}, s.audit(ctx, rec)
}
