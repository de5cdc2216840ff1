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

// groupState is what the back office's group changes touch, for the audit log.
type groupState struct {
	Owner     int64 `json:"owner"`
	MuteAll   bool  `json:"mute_all"`
	Dismissed bool  `json:"dismissed"`
}

func (g Group) state() groupState {
	return groupState{Owner: g.Owner, MuteAll: g.MuteAll, Dismissed: g.Dismissed}
}

// groupChange runs a group domain change (its transaction, system message and
// deliveries to the members, as the platform) and audits the group's state
// before and after it.
func (s *Service) groupChange(ctx context.Context, a actor, group int64, action string, change func() error) (Empty, error) {
	before, err := s.loadGroup(ctx, group)
	if err != nil {
		return Empty{}, err
	}
	if err := change(); err != nil {
		return Empty{}, err
	}
	after, err := s.loadGroup(ctx, group)
	if err != nil {
		return Empty{}, err
	}
	rec := byOperator(a, action, KindGroup, group)
	rec.before, rec.after = before.state(), after.state()
	return Empty{}, s.audit(ctx, rec)
}

func (s *Service) groupDismiss(ctx context.Context, a actor, r GroupReq) (Empty, error) {
	return s.groupChange(ctx, a, r.GroupID, "group.dismiss", func() error { return s.groups.PlatformDismiss(ctx, r.GroupID) })
}

func (s *Service) groupMute(ctx context.Context, a actor, r GroupMuteReq) (Empty, error) {
	return s.groupChange(ctx, a, r.GroupID, "group.mute_all", func() error { return s.groups.PlatformMuteAll(ctx, r.GroupID, r.Muted) })
}

func (s *Service) groupTransfer(ctx context.Context, a actor, r GroupTransferReq) (Empty, error) {
	return s.groupChange(ctx, a, r.GroupID, "group.transfer", func() error { return s.groups.PlatformTransfer(ctx, r.GroupID, r.UserID) })
}
