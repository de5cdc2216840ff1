package group

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"natter/functions/deliver"
	"natter/functions/perm"
	"natter/shared/convid"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/validate"
	"natter/shared/wire"
)

func (s *Service) create(ctx context.Context, c endpoint.Caller, r CreateReq) (Info, error) {
	if r.Avatar != "" {
		path, err := s.avatar(ctx, c.UserID, r.Avatar)
		if err != nil {
			return Info{}, err
		}
		r.Avatar = path
	}
	if r.JoinPolicy == "" {
		r.JoinPolicy = PolicyApproval
	}
	members := dedupe(r.Members)
	for i, m := range members {
		if m == c.UserID {
			members = append(members[:i], members[i+1:]...)
			break
		}
	}
	maxMembers := s.maxMembers()
	if len(members)+1 > maxMembers {
		return Info{}, imerr.New(imerr.Conflict, "a group holds at most %d members", maxMembers)
	}
	var err error
	if r.Name, err = s.words.Apply("the group name", r.Name); err != nil {
		return Info{}, err
	}
	if err := s.mayAdd(ctx, c.UserID, members); err != nil {
		return Info{}, err
	}
	var clientID any
	if r.ClientID != "" {
		clientID = r.ClientID
	}
	var g row
	// Its own transaction, not through a message writer: nothing else can write
	// the new conversation before this commits.
	sys, err := s.store.Create(ctx, func(tx *sql.Tx) (*wire.Message, error) {
		if len(members) > 0 {
			existing, err := s.existingUsers(ctx, tx, members)
			if err != nil {
				return nil, err
			}
			if len(existing) != len(members) {
				return nil, imerr.New(imerr.NotFound, "%d of the members do not exist", len(members)-len(existing))
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO chat_groups (owner_id, name, avatar, intro, join_policy, history_visible, member_count, max_members, client_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.UserID, r.Name, r.Avatar, r.Intro, r.JoinPolicy, r.HistoryVisible, len(members)+1, maxMembers, clientID)
		if err != nil {
			return nil, err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO conversations (id, kind) VALUES (?, 2)", convid.OfGroup(id).Raw); err != nil {
			return nil, fmt.Errorf("group conversation: %w", err)
		}
		if err := insertMembers(ctx, tx, id, []int64{c.UserID}, perm.Owner, c.UserID, 0); err != nil {
			return nil, err
		}
		if err := insertMembers(ctx, tx, id, members, perm.Member, c.UserID, 0); err != nil {
			return nil, err
		}
		if g, err = scanGroup(tx.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE id = ?", id)); err != nil {
			return nil, err
		}
		return systemMessage(id, SystemEvent{Event: EvtCreated, Actor: c.UserID, Users: members})
	})
	if db.IsDuplicate(err) && r.ClientID != "" {
		// A retried create: answer with the group the first attempt made.
		g, err = scanGroup(s.db.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE owner_id = ? AND client_id = ?", c.UserID, r.ClientID))
		if err != nil {
			return Info{}, fmt.Errorf("retried create: %w", err)
		}
		owner := perm.Owner
		return g.info(&owner), nil
	}
	if err != nil {
		var ie *imerr.Error
		if errors.As(err, &ie) {
			return Info{}, err
		}
		return Info{}, fmt.Errorf("create group: %w", err)
	}
	// Everyone is new: the edges learn of the group, and each member gets its
	// first message on their own subject (see change).
	everyone := append([]int64{c.UserID}, members...)
	s.deliver.Joined(g.id, everyone...)
	s.deliver.Push(ctx, deliver.ToUsers(everyone...), wire.MsgNew{Message: *sys}, deliver.From(c))
	owner := perm.Owner
	return g.info(&owner), nil
}

func (s *Service) list(ctx context.Context, c endpoint.Caller, r ListReq) (ListResp, error) {
	limit := validate.Limit(r.Limit, 100, 500)
	rows, err := s.db.QueryContext(ctx, "SELECT "+groupColumnsG+", m.role FROM group_members m JOIN chat_groups g ON g.id = m.group_id WHERE m.user_id = ? AND m.group_id > ? ORDER BY m.group_id LIMIT ?",
		c.UserID, r.After, limit+1)
	if err != nil {
		return ListResp{}, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	out := ListResp{Groups: []Info{}}
	budget := wire.NewBudget()
	for rows.Next() {
		var g row
		var role perm.Role
		if err := rows.Scan(&g.id, &g.owner, &g.name, &g.avatar, &g.intro, &g.policy, &g.historyVisible, &g.muteAll, &g.count, &g.max, &g.dismissed, &g.created, &role); err != nil {
			return ListResp{}, fmt.Errorf("scan group: %w", err)
		}
		if len(out.Groups) == limit || !budget.Take(256+2*(len(g.name)+len(g.avatar)+len(g.intro))) {
			out.HasMore = true
			break
		}
		out.Groups = append(out.Groups, g.info(&role))
	}
	return out, rows.Err()
}

// get answers anyone (a would-be member needs the name, policy and size to decide
// to join); MyRole tells members their role.
func (s *Service) get(ctx context.Context, c endpoint.Caller, r GroupReq) (Info, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE id = ?", r.GroupID))
	if errors.Is(err, sql.ErrNoRows) {
		return Info{}, errNoGroup
	}
	if err != nil {
		return Info{}, fmt.Errorf("get group: %w", err)
	}
	role, ok, err := roleOf(ctx, s.db, r.GroupID, c.UserID)
	if err != nil {
		return Info{}, err
	}
	if !ok {
		return g.info(nil), nil
	}
	return g.info(&role), nil
}

func (s *Service) update(ctx context.Context, c endpoint.Caller, r UpdateReq) (Info, error) {
	if r.Avatar != nil && *r.Avatar != "" {
		path, err := s.avatar(ctx, c.UserID, *r.Avatar)
		if err != nil {
			return Info{}, err
		}
		r.Avatar = &path
	}
	if r.Name != nil {
		name, err := s.words.Apply("the group name", *r.Name)
		if err != nil {
			return Info{}, err
		}
		r.Name = &name
	}
	var g row
	var role perm.Role
	err := s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		var err error
		if g, role, err = actor(ctx, tx, r.GroupID, c); err != nil {
			return nil, err
		}
		if err := perm.Check(perm.UpdateInfo, role, nil, false); err != nil {
			return nil, err
		}
		changes := map[string]any{}
		if r.Name != nil {
			changes["name"] = *r.Name
		}
		if r.Avatar != nil {
			changes["avatar"] = *r.Avatar
		}
		if r.Intro != nil {
			changes["intro"] = *r.Intro
		}
		if r.JoinPolicy != nil {
			changes["join_policy"] = *r.JoinPolicy
		}
		if r.HistoryVisible != nil {
			changes["history_visible"] = *r.HistoryVisible
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chat_groups SET name = COALESCE(?, name), avatar = COALESCE(?, avatar), intro = COALESCE(?, intro),
			join_policy = COALESCE(?, join_policy), history_visible = COALESCE(?, history_visible) WHERE id = ?`,
			r.Name, r.Avatar, r.Intro, r.JoinPolicy, r.HistoryVisible, r.GroupID); err != nil {
			return nil, err
		}
		if g, err = scanGroup(tx.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE id = ?", r.GroupID)); err != nil {
			return nil, err
		}
		return &SystemEvent{Event: EvtUpdated, Actor: c.UserID, Changes: changes}, nil
	})
	if err != nil {
		return Info{}, err
	}
	return g.info(&role), nil
}

// dismiss ends the group. Members keep their membership rows so that history stays
// readable and offline devices learn of it through sync; every later change or
// message is refused.
func (s *Service) dismiss(ctx context.Context, c endpoint.Caller, r GroupReq) (Empty, error) {
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		g, err := lockGroup(ctx, tx, r.GroupID)
		if err != nil {
			return nil, err
		}
		role, ok, err := roleOf(ctx, tx, r.GroupID, c.UserID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errNotMember
		}
		if err := perm.Check(perm.Dismiss, role, nil, false); err != nil || g.dismissed {
			return nil, err // dismissed already: a retry
		}
		return s.setDismissed(ctx, tx, r.GroupID, &SystemEvent{Event: EvtDismissed, Actor: c.UserID})
	})
}

func (s *Service) setDismissed(ctx context.Context, tx *sql.Tx, group int64, ev *SystemEvent) (*SystemEvent, error) {
	if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET dismissed_at = ? WHERE id = ?", s.now(), group); err != nil {
		return nil, err
	}
	return ev, nil
}

func (s *Service) muteAll(ctx context.Context, c endpoint.Caller, r MuteAllReq) (Empty, error) {
	return Empty{}, s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		g, role, err := actor(ctx, tx, r.GroupID, c)
		if err != nil {
			return nil, err
		}
		if err := perm.Check(perm.MuteAll, role, nil, false); err != nil || g.muteAll == r.Muted {
			return nil, err
		}
		return setMuteAll(ctx, tx, r.GroupID, r.Muted, &SystemEvent{Event: EvtMutedAll, Actor: c.UserID})
	})
}

func setMuteAll(ctx context.Context, tx *sql.Tx, group int64, muted bool, ev *SystemEvent) (*SystemEvent, error) {
	if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET mute_all = ? WHERE id = ?", muted, group); err != nil {
		return nil, err
	}
	ev.Muted = &muted
	return ev, nil
}

func (s *Service) announce(ctx context.Context, c endpoint.Caller, r AnnounceReq) (Announcement, error) {
	var a Announcement
	var err error
	if r.Text, err = s.words.Apply("the announcement", r.Text); err != nil {
		return Announcement{}, err
	}
	err = s.change(ctx, c, r.GroupID, func(tx *sql.Tx) (*SystemEvent, error) {
		_, role, err := actor(ctx, tx, r.GroupID, c)
		if err != nil {
			return nil, err
		}
		if err := perm.Check(perm.Announce, role, nil, false); err != nil {
			return nil, err
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		res, err := tx.ExecContext(ctx, "INSERT INTO group_announcements (group_id, author_id, text, client_id, created_at) VALUES (?, ?, ?, ?, ?)",
			r.GroupID, c.UserID, r.Text, r.ClientID, now)
		if err != nil {
			return nil, err
		}
		a = Announcement{AuthorID: c.UserID, Text: r.Text, CreatedAt: now.UnixMilli()}
		if a.ID, err = res.LastInsertId(); err != nil {
			return nil, err
		}
		return &SystemEvent{Event: EvtAnnounced, Actor: c.UserID, Text: r.Text}, nil
	})
	if db.IsDuplicate(err) {
		// A retried announce: the first one stands.
		var at time.Time
		err = s.db.QueryRowContext(ctx, "SELECT id, text, created_at FROM group_announcements WHERE group_id = ? AND author_id = ? AND client_id = ?",
			r.GroupID, c.UserID, r.ClientID).Scan(&a.ID, &a.Text, &at)
		a.AuthorID, a.CreatedAt = c.UserID, at.UnixMilli()
	}
	if err != nil {
		return Announcement{}, err
	}
	return a, nil
}

func (s *Service) announcements(ctx context.Context, c endpoint.Caller, r AnnouncementsReq) (AnnouncementsResp, error) {
	if _, ok, err := roleOf(ctx, s.db, r.GroupID, c.UserID); err != nil {
		return AnnouncementsResp{}, err
	} else if !ok {
		return AnnouncementsResp{}, errNotMember
	}
	limit := validate.Limit(r.Limit, 20, 100)
	before := r.Before
	if before == 0 {
		before = 1<<63 - 1
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, author_id, text, created_at FROM group_announcements WHERE group_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
		r.GroupID, before, limit+1)
	if err != nil {
		return AnnouncementsResp{}, fmt.Errorf("announcements: %w", err)
	}
	defer rows.Close()
	out := AnnouncementsResp{Announcements: []Announcement{}}
	for rows.Next() {
		var a Announcement
		var at time.Time
		if err := rows.Scan(&a.ID, &a.AuthorID, &a.Text, &at); err != nil {
			return AnnouncementsResp{}, err
		}
		a.CreatedAt = at.UnixMilli()
		out.Announcements = append(out.Announcements, a)
	}
	if len(out.Announcements) > limit {
		out.Announcements, out.HasMore = out.Announcements[:limit], true
	}
	return out, rows.Err()
}

// groupColumnsG is groupColumns qualified for joins with alias g.
var groupColumnsG = func() string {
	parts := strings.Split(groupColumns, ", ")
	for i := range parts {
		parts[i] = "g." + parts[i]
	}
	return strings.Join(parts, ", ")
}()

// avatar turns a group avatar's file id (an image the caller uploaded with
// purpose group_avatar) into the path clients load it from.
func (s *Service) avatar(ctx context.Context, user int64, fileID string) (string, error) {
	if s.files == nil {
		return "", imerr.New(imerr.Unavailable, "avatars are not served here")
	}
	id, err := strconv.ParseInt(fileID, 10, 64)
	if err != nil || id <= 0 {
		return "", imerr.New(imerr.BadRequest, "avatar: the file_id of an image uploaded with purpose group_avatar, or \"\" for none")
	}
	return s.files.Avatar(ctx, user, id, "group_avatar")
}
