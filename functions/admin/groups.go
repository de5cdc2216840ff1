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

const groupColumns = "g.id, g.name, g.owner_id, g.member_count, g.mute_all, g.dismissed_at IS NOT NULL, g.created_at"

func scanGroup(sc interface{ Scan(...any) error }) (Group, error) {
	var g Group
	var created time.Time
	err := sc.Scan(&g.ID, &g.Name, &g.Owner, &g.MemberCount, &g.MuteAll, &g.Dismissed, &created)
	g.CreatedAt = ms(created)
	return g, err
}

// groupList answers admin.groups.list: by id, names containing query or an
// exact id.
func (s *Service) groupList(ctx context.Context, _ actor, r GroupsReq) (GroupsResp, error) {
	limit := min(max(r.Limit, 0), maxPage)
	if limit == 0 {
		limit = 50
	}
	q := "SELECT " + groupColumns + " FROM chat_groups g WHERE g.id > ?"
	args := []any{r.After}
	if query := strings.TrimSpace(r.Query); query != "" {
		if id, err := strconv.ParseInt(query, 10, 64); err == nil {
			q += " AND (g.id = ? OR g.name LIKE ?)"
			args = append(args, id, likeAnywhere(query))
		} else {
			q += " AND g.name LIKE ?"
			args = append(args, likeAnywhere(query))
		}
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY g.id LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return GroupsResp{}, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	out := GroupsResp{Groups: []Group{}}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return GroupsResp{}, err
		}
		if len(out.Groups) == limit {
			out.HasMore = true
			break
		}
		out.Groups = append(out.Groups, g)
	}
	return out, rows.Err()
}

func (s *Service) loadGroup(ctx context.Context, id int64) (Group, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups g WHERE g.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, imerr.New(imerr.NotFound, "group %d not found", id)
	}
	if err != nil {
		return Group{}, fmt.Errorf("load group %d: %w", id, err)
	}
	return g, nil
}

// groupGet answers admin.groups.get: the group and a page of its members by
// user id.
func (s *Service) groupGet(ctx context.Context, _ actor, r GroupReq) (GroupDetail, error) {
	g, err := s.loadGroup(ctx, r.GroupID)
	if err != nil {
		return GroupDetail{}, err
	}
	limit := min(max(r.Limit, 0), maxPage)
	if limit == 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.user_id, u.username, u.nickname, m.role, m.joined_at FROM group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ? AND m.user_id > ? ORDER BY m.user_id LIMIT ?`, r.GroupID, r.After, limit+1)
	if err != nil {
		return GroupDetail{}, fmt.Errorf("members: %w", err)
	}
	defer rows.Close()
	out := GroupDetail{Group: g, Members: []Member{}}
	for rows.Next() {
		var m Member
		var role int
		var joined time.Time
		if err := rows.Scan(&m.UserID, &m.Username, &m.Nickname, &role, &joined); err != nil {
			return GroupDetail{}, err
		}
		m.Role, m.JoinedAt = roleName(role), ms(joined)
		if len(out.Members) == limit {
			out.HasMore = true
			break
		}
		out.Members = append(out.Members, m)
	}
	return out, rows.Err()
}

// groupDismiss, groupMute and groupTransfer run the group domain's own changes
// (its transaction, system message and deliveries to the members) as the
// platform, and audit the group's state before and after.
func (s *Service) groupDismiss(ctx context.Context, a actor, r GroupReq) (Empty, error) {
	before, err := s.groups.PlatformDismiss(ctx, r.GroupID)
	if err != nil {
		return Empty{}, err
	}
	after := before
	after.Dismissed = true
	rec := byOperator(a, "group.dismiss", KindGroup, r.GroupID)
	rec.before, rec.after = before, after
	return Empty{}, s.audit(ctx, rec)
}

func (s *Service) groupMute(ctx context.Context, a actor, r GroupMuteReq) (Empty, error) {
	before, err := s.groups.PlatformMuteAll(ctx, r.GroupID, r.Muted)
	if err != nil {
		return Empty{}, err
	}
	after := before
	after.MuteAll = r.Muted
	rec := byOperator(a, "group.mute_all", KindGroup, r.GroupID)
	rec.before, rec.after = before, after
	return Empty{}, s.audit(ctx, rec)
}

func (s *Service) groupTransfer(ctx context.Context, a actor, r GroupTransferReq) (Empty, error) {
	before, err := s.groups.PlatformTransfer(ctx, r.GroupID, r.UserID)
	if err != nil {
		return Empty{}, err
	}
	after := before
	after.Owner = r.UserID
	rec := byOperator(a, "group.transfer", KindGroup, r.GroupID)
	rec.before, rec.after = before, after
	return Empty{}, s.audit(ctx, rec)
}
