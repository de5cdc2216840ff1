package group

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"natter/functions/deliver"
	"natter/functions/perm"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/validate"
	"natter/shared/wire"
)

func (s *Service) invite(ctx context.Context, c endpoint.Caller, r UsersReq) (InviteResp, error) {
	if err := s.mayAdd(ctx, c.UserID, dedupe(r.UserIDs)); err != nil {
		return InviteResp{}, err
	}
	var added []int64
	err := s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		g, role, err := actor(ctx, tx, r.GroupID, c)
		if err != nil {
			return nil, err
		}
		// Open groups let any member invite; otherwise the table's rule applies.
		if g.policy != PolicyOpen {
			if err := perm.Check(perm.Invite, role, nil, false); err != nil {
				return nil, err
			}
		}
		if added, err = s.addMembers(ctx, tx, g, r.UserIDs, c.UserID); err != nil || len(added) == 0 {
			return nil, err // everyone was in already: a retry
		}
		return &SystemEvent{Event: EvtJoined, Actor: c.UserID, Users: added}, nil
	})
	if err != nil {
		return InviteResp{}, err
	}
	return InviteResp{Added: orEmpty(added)}, nil
}

func (s *Service) members(ctx context.Context, c endpoint.Caller, r MembersReq) (MembersResp, error) {
	if _, ok, err := roleOf(ctx, s.db, r.GroupID, c.UserID); err != nil {
		return MembersResp{}, err
	} else if !ok {
		return MembersResp{}, errNotMember
	}
	limit := validate.Limit(r.Limit, 100, 500)
	rows, err := s.db.QueryContext(ctx, `SELECT m.user_id, u.nickname, u.avatar, m.role, m.muted_until, m.joined_at
		FROM group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?`, r.GroupID, r.After, limit+1)
	if err != nil {
		return MembersResp{}, fmt.Errorf("members: %w", err)
	}
	defer rows.Close()
	out := MembersResp{Members: make([]Member, 0, limit)}
	now := s.now()
	budget := wire.NewBudget()
	for rows.Next() {
		var m Member
		var role perm.Role
		var muted sql.NullTime
		var joined time.Time
		if err := rows.Scan(&m.UserID, &m.Nickname, &m.Avatar, &role, &muted, &joined); err != nil {
			return MembersResp{}, fmt.Errorf("scan member: %w", err)
		}
		m.Role, m.JoinedAt = role.String(), joined.UnixMilli()
		if muted.Valid && muted.Time.After(now) {
			m.MutedUntil = muted.Time.UnixMilli()
		}
		if len(out.Members) < limit && !budget.Take(160+2*(len(m.Nickname)+len(m.Avatar))) { // escaping can double them
			out.HasMore = true
			return out, nil
		}
		out.Members = append(out.Members, m)
	}
	if len(out.Members) > limit {
		out.Members, out.HasMore = out.Members[:limit], true
	}
	return out, rows.Err()
}

// target loads the group as the caller acts on member user: both must be members,
// and the action must be allowed for the caller's role over the target's.
func target(ctx context.Context, tx *sql.Tx, group int64, c endpoint.Caller, user int64, a perm.Action) (row, perm.Role, perm.Role, error) {
	g, role, err := actor(ctx, tx, group, c)
	if err != nil {
		return row{}, 0, 0, err
	}
	trole, ok, err := roleOf(ctx, tx, group, user)
	if err != nil {
		return row{}, 0, 0, err
	}
	if !ok {
		return row{}, 0, 0, imerr.New(imerr.NotFound, "user %d is not a member of this group", user)
	}
	if err := perm.Check(a, role, &trole, user == c.UserID); err != nil {
		return row{}, 0, 0, err
	}
	return g, role, trole, nil
}

func (s *Service) kick(ctx context.Context, c endpoint.Caller, r MemberReq) (Empty, error) {
	if r.UserID == c.UserID {
		return Empty{}, perm.Check(perm.Kick, perm.Owner, nil, true)
	}
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		if _, _, _, err := target(ctx, tx, r.GroupID, c, r.UserID, perm.Kick); err != nil {
			return nil, err
		}
		if removed, err := removeMember(ctx, tx, r.GroupID, r.UserID); err != nil || !removed {
			return nil, err
		}
		return &SystemEvent{Event: EvtKicked, Actor: c.UserID, Users: []int64{r.UserID}}, nil
	})
}

func (s *Service) leave(ctx context.Context, c endpoint.Caller, r GroupReq) (Empty, error) {
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		g, err := lockGroup(ctx, tx, r.GroupID)
		if err != nil {
			return nil, err
		}
		role, ok, err := roleOf(ctx, tx, r.GroupID, c.UserID)
		if err != nil || !ok {
			return nil, err // leaving a group you are not in is a no-op (a retry)
		}
		if err := perm.Check(perm.Leave, role, nil, false); err != nil {
			return nil, err
		}
		if removed, err := removeMember(ctx, tx, r.GroupID, c.UserID); err != nil || !removed || g.dismissed {
			return nil, err
		}
		return &SystemEvent{Event: EvtLeft, Actor: c.UserID, Users: []int64{c.UserID}}, nil
	})
}

func (s *Service) setRole(ctx context.Context, c endpoint.Caller, r RoleReq) (Empty, error) {
	want, _ := perm.ParseRole(r.Role)
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		_, _, trole, err := target(ctx, tx, r.GroupID, c, r.UserID, perm.SetRole)
		if err != nil || trole == want {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?", want, r.GroupID, r.UserID); err != nil {
			return nil, err
		}
		return &SystemEvent{Event: EvtRole, Actor: c.UserID, Users: []int64{r.UserID}, Role: want.String()}, nil
	})
}

func (s *Service) transfer(ctx context.Context, c endpoint.Caller, r MemberReq) (Empty, error) {
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		if _, _, _, err := target(ctx, tx, r.GroupID, c, r.UserID, perm.Transfer); err != nil {
			return nil, err
		}
		if err := setOwner(ctx, tx, r.GroupID, c.UserID, r.UserID); err != nil {
			return nil, err
		}
		return &SystemEvent{Event: EvtTransferred, Actor: c.UserID, Users: []int64{r.UserID}}, nil
	})
}

// setOwner makes user the owner of group in tx; the old owner stays on as an admin.
func setOwner(ctx context.Context, tx *sql.Tx, group, old, user int64) error {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?", []any{perm.Admin, group, old}},
		{"UPDATE group_members SET role = ?, muted_until = NULL WHERE group_id = ? AND user_id = ?", []any{perm.Owner, group, user}},
		{"UPDATE chat_groups SET owner_id = ? WHERE id = ?", []any{user, group}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) mute(ctx context.Context, c endpoint.Caller, r MuteReq) (Empty, error) {
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		if _, _, _, err := target(ctx, tx, r.GroupID, c, r.UserID, perm.MuteMember); err != nil {
			return nil, err
		}
		var until sql.NullTime
		ev := &SystemEvent{Event: EvtMuted, Actor: c.UserID, Users: []int64{r.UserID}}
		if r.Seconds > 0 {
			until = sql.NullTime{Time: s.now().UTC().Add(time.Duration(r.Seconds) * time.Second).Truncate(time.Millisecond), Valid: true}
			ev.Until = until.Time.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, "UPDATE group_members SET muted_until = ? WHERE group_id = ? AND user_id = ?", until, r.GroupID, r.UserID); err != nil {
			return nil, err
		}
		return ev, nil
	})
}

func (s *Service) join(ctx context.Context, c endpoint.Caller, r JoinReq) (JoinResp, error) {
	var out JoinResp
	var admins []int64
	err := s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		out, admins = JoinResp{}, nil
		g, err := lockGroup(ctx, tx, r.GroupID)
		if err != nil {
			return nil, err
		}
		if g.dismissed {
			return nil, imerr.New(imerr.Forbidden, "this group was dismissed")
		}
		if _, ok, err := roleOf(ctx, tx, r.GroupID, c.UserID); err != nil || ok {
			out.Status = "joined" // already a member: a retry
			return nil, err
		}
		switch g.policy {
		case PolicyOpen:
			added, err := s.addMembers(ctx, tx, g, []int64{c.UserID}, c.UserID)
			if err != nil {
				return nil, err
			}
			out.Status = "joined"
			return &SystemEvent{Event: EvtJoined, Actor: c.UserID, Users: added}, nil
		case PolicyApproval:
			if g.count >= g.max {
				return nil, imerr.New(imerr.Conflict, "the group is full: %d of %d members", g.count, g.max)
			}
			// One request row per (group, user): asking again re-opens it.
			if _, err := tx.ExecContext(ctx, `INSERT INTO group_join_requests (group_id, user_id, message) VALUES (?, ?, ?)
				ON DUPLICATE KEY UPDATE message = VALUES(message), status = 'pending', handled_by = 0`, r.GroupID, c.UserID, r.Message); err != nil {
				return nil, err
			}
			if err := tx.QueryRowContext(ctx, "SELECT id FROM group_join_requests WHERE group_id = ? AND user_id = ?", r.GroupID, c.UserID).Scan(&out.RequestID); err != nil {
				return nil, err
			}
			out.Status = "pending"
			admins, err = queryIDs(ctx, tx, "SELECT user_id FROM group_members WHERE group_id = ? AND role IN ", "", []int64{int64(perm.Admin), int64(perm.Owner)}, r.GroupID)
			return nil, err
		default:
			return nil, imerr.New(imerr.Forbidden, "this group is invite-only")
		}
	})
	if err != nil {
		return JoinResp{}, err
	}
	if len(admins) > 0 {
		var nick string // as group.join.requests shows it; the push goes out anyway
		if err := s.db.QueryRowContext(ctx, "SELECT nickname FROM users WHERE id = ?", c.UserID).Scan(&nick); err != nil {
			logging.From(ctx).Warn().Err(err).Msg("requester's nickname")
		}
		s.deliver.Push(ctx, deliver.ToUsers(admins...), wire.GroupJoinRequested{JoinRequest: wire.JoinRequest{RequestID: out.RequestID, GroupID: r.GroupID, UserID: c.UserID,
			Nickname: nick, Message: r.Message, Status: "pending", CreatedAt: s.now().UnixMilli()}}, deliver.Origin{})
	}
	return out, nil
}

func (s *Service) joinRequests(ctx context.Context, c endpoint.Caller, r GroupReq) (JoinRequestsResp, error) {
	role, ok, err := roleOf(ctx, s.db, r.GroupID, c.UserID)
	if err != nil {
		return JoinRequestsResp{}, err
	}
	if !ok {
		return JoinRequestsResp{}, errNotMember
	}
	if err := perm.Check(perm.ReviewJoin, role, nil, false); err != nil {
		return JoinRequestsResp{}, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.user_id, u.nickname, r.message, r.status, r.created_at
		FROM group_join_requests r JOIN users u ON u.id = r.user_id
		WHERE r.group_id = ? AND r.status = 'pending' ORDER BY r.id LIMIT 500`, r.GroupID)
	if err != nil {
		return JoinRequestsResp{}, fmt.Errorf("join requests: %w", err)
	}
	defer rows.Close()
	out := JoinRequestsResp{Requests: []wire.JoinRequest{}}
	for rows.Next() {
		jr := wire.JoinRequest{GroupID: r.GroupID}
		var at time.Time
		if err := rows.Scan(&jr.RequestID, &jr.UserID, &jr.Nickname, &jr.Message, &jr.Status, &at); err != nil {
			return JoinRequestsResp{}, err
		}
		jr.CreatedAt = at.UnixMilli()
		out.Requests = append(out.Requests, jr)
	}
	return out, rows.Err()
}

func (s *Service) respond(ctx context.Context, c endpoint.Caller, r RespondReq) (RespondResp, error) {
	var out RespondResp
	var requester int64
	err := s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		g, role, err := actor(ctx, tx, r.GroupID, c)
		if err != nil {
			return nil, err
		}
		if err := perm.Check(perm.ReviewJoin, role, nil, false); err != nil {
			return nil, err
		}
		var status string
		err = tx.QueryRowContext(ctx, "SELECT user_id, status FROM group_join_requests WHERE id = ? AND group_id = ? FOR UPDATE", r.RequestID, r.GroupID).Scan(&requester, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, imerr.New(imerr.NotFound, "join request not found")
		}
		if err != nil {
			return nil, err
		}
		if out.Status = status; status != "pending" {
			return nil, nil // already handled: answer as before
		}
		var ev *SystemEvent
		out.Status = "rejected"
		if r.Accept {
			out.Status = "accepted"
			added, err := s.addMembers(ctx, tx, g, []int64{requester}, c.UserID)
			if err != nil {
				return nil, err
			}
			if len(added) > 0 {
				ev = &SystemEvent{Event: EvtJoined, Actor: c.UserID, Users: added}
			}
		}
		_, err = tx.ExecContext(ctx, "UPDATE group_join_requests SET status = ?, handled_by = ? WHERE id = ?", out.Status, c.UserID, r.RequestID)
		return ev, err
	})
	if err != nil {
		return RespondResp{}, err
	}
	s.deliver.Push(ctx, deliver.ToUser(requester), wire.GroupJoinAnswered{GroupID: r.GroupID, RequestID: r.RequestID, Status: out.Status}, deliver.Origin{})
	return out, nil
}

func orEmpty(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
