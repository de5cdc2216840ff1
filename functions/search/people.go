package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"natter/shared/endpoint"
	"natter/shared/username"
	"natter/shared/validate"
	"natter/shared/wire"
)

// NameSearchReq is user.search and group.search: a name or its beginning.
type NameSearchReq struct {
	Query string `json:"query"`
	Limit int    `json:"limit,omitempty"`
}

const maxNameQuery = 64

func (r *NameSearchReq) Validate() error {
	if err := validate.Text("query", r.Query, maxNameQuery); err != nil {
		return err
	}
	if strings.TrimSpace(r.Query) == "" {
		return errors.New("query required")
	}
	return nil
}

// UserSearchResp is user.search's answer (at most limit users: no paging, a
// longer prefix narrows).
type UserSearchResp struct {
	Users []wire.UserCard `json:"users"`
}

// likePrefix escapes s for LIKE and appends %.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// userSearch finds users by exact username, or by the beginning of their
// nickname (case-insensitive). The user's privacy setting "search" decides who
// finds them at all (everyone, friends, nobody); a user who blocked the caller
// is never found, nor a deleted account. The exact username comes first.
func (s *Service) userSearch(ctx context.Context, c endpoint.Caller, r NameSearchReq) (UserSearchResp, error) {
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	q := strings.TrimSpace(r.Query)
	exact, err := username.Canonical(q)
	if err != nil {
		exact = "" // not a possible username: nickname prefix only
	}
	rows, err := s.db.QueryContext(ctx, `SELECT u.id, u.username, u.nickname, u.avatar FROM users u
		LEFT JOIN user_privacy p ON p.user_id = u.id
		WHERE (u.username = ? OR u.nickname_lc LIKE ?) AND u.deleted_at IS NULL
		  AND NOT (u.banned AND (u.banned_until IS NULL OR u.banned_until > ?))
		  AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?)
		  AND (u.id = ? OR COALESCE(p.search, 'everyone') = 'everyone'
		       OR (p.search = 'friends' AND EXISTS (SELECT 1 FROM friendships f WHERE f.user_id = u.id AND f.friend_id = ?)))
		ORDER BY u.username = ? DESC, u.nickname_lc, u.id LIMIT ?`,
		exact, likeEscape(strings.ToLower(q))+"%", time.Now(), c.UserID, c.UserID, c.UserID, exact, limit)
	if err != nil {
		return UserSearchResp{}, fmt.Errorf("user search: %w", err)
	}
	defer rows.Close()
	out := UserSearchResp{Users: []wire.UserCard{}}
	for rows.Next() {
		var u wire.UserCard
		if err := rows.Scan(&u.UserID, &u.Username, &u.Nickname, &u.Avatar); err != nil {
			return UserSearchResp{}, fmt.Errorf("user search: %w", err)
		}
		out.Users = append(out.Users, u)
	}
	return out, rows.Err()
}

// GroupHit is a group found.
type GroupHit struct {
	GroupID     int64  `json:"group_id"`
	Name        string `json:"name"`
	Avatar      string `json:"avatar"`
	Intro       string `json:"intro"`
	JoinPolicy  string `json:"join_policy"`
	MemberCount int    `json:"member_count"`
	Member      bool   `json:"member"` // the caller is a member
}

// GroupSearchResp is group.search's answer (at most limit groups).
type GroupSearchResp struct {
	Groups []GroupHit `json:"groups"`
}

// groupSearch finds the caller's own groups whose name holds the query, and
// public groups whose name begins with it (case- and accent-insensitive: the
// name's collation). A group is public when strangers may ask to join it
// (join_policy open or approval); an invite-only group is found by its members
// only. Dismissed groups are not found. The caller's groups come first.
func (s *Service) groupSearch(ctx context.Context, c endpoint.Caller, r NameSearchReq) (GroupSearchResp, error) {
	limit := validate.Limit(r.Limit, defLimit, maxLimit)
	q := likeEscape(strings.TrimSpace(r.Query))
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, avatar, intro, join_policy, member_count, MAX(member) AS member FROM (
			(SELECT g.id, g.name, g.avatar, g.intro, g.join_policy, g.member_count, 1 AS member FROM group_members gm
				JOIN chat_groups g ON g.id = gm.group_id
				WHERE gm.user_id = ? AND g.dismissed_at IS NULL AND g.name LIKE ? LIMIT ?)
			UNION ALL
			(SELECT g.id, g.name, g.avatar, g.intro, g.join_policy, g.member_count, 0 AS member FROM chat_groups g
				WHERE g.name LIKE ? AND g.join_policy IN ('open', 'approval') AND g.dismissed_at IS NULL LIMIT ?)
		) found GROUP BY id, name, avatar, intro, join_policy, member_count ORDER BY member DESC, name, id LIMIT ?`,
		c.UserID, "%"+q+"%", limit, q+"%", 4*limit, limit)
	if err != nil {
		return GroupSearchResp{}, fmt.Errorf("group search: %w", err)
	}
	defer rows.Close()
	out := GroupSearchResp{Groups: []GroupHit{}}
	for rows.Next() {
		var g GroupHit
		if err := rows.Scan(&g.GroupID, &g.Name, &g.Avatar, &g.Intro, &g.JoinPolicy, &g.MemberCount, &g.Member); err != nil {
			return GroupSearchResp{}, fmt.Errorf("group search: %w", err)
		}
		out.Groups = append(out.Groups, g)
	}
	return out, rows.Err()
}
