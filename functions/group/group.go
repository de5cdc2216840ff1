// Package group serves groups of up to 5,000 members: creation, info, membership
// (invite, join with approval, leave, kick), roles, ownership, mutes,
// announcements and dismissal. Every change takes the group's row lock, so member
// counts and roles stay consistent under concurrency, and is written in the same
// transaction as a system message in the group's conversation, so a device that
// was offline learns it through sync like any other message.
package group

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"natter/functions/deliver"
	"natter/functions/msgstore"
	"natter/functions/perm"
	"natter/functions/sensitive"
	"natter/shared/config"
	"natter/shared/convid"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// Config is the group domain's settings (env prefix GROUP_ in the worker).
type Config struct {
	MaxMembers int `env:"MAX_MEMBERS" envDefault:"5000"`
}

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB      *sql.DB
	Store   *msgstore.Store
	Deliver *deliver.Deliverer
	// Relations says whom a user may add to groups (blocks, privacy); the friend
	// domain implements it. Nil allows everyone.
	Relations Relations
	// Files checks avatars (uploaded images); the file domain implements it. Nil
	// refuses avatars.
	Files Files
	// Words is the sensitive-word list applied to group names and
	// announcements; nil: none.
	Words *sensitive.List
	// Live is the runtime configuration (the max size of new groups); nil: the
	// Config value.
	Live   *dynconf.Live
	Config Config
}

// Files checks that an uploaded image may be a group's avatar.
type Files interface {
	// Avatar returns the path clients load the image from, when id is user's own
	// ready image uploaded with purpose ("group_avatar").
	Avatar(ctx context.Context, user, id int64, purpose string) (string, error)
}

// Relations decides who may be added to groups by whom.
type Relations interface {
	// MayAddToGroups returns those of users whom actor may not add.
	MayAddToGroups(ctx context.Context, actor int64, users []int64) ([]int64, error)
}

// Service implements the group endpoints.
type Service struct {
	db      *sql.DB
	store   *msgstore.Store
	deliver *deliver.Deliverer
	rel     Relations
	files   Files
	words   *sensitive.List
	live    *dynconf.Live
	cfg     Config
	now     func() time.Time
}

// New returns the group service.
func New(d Deps) *Service {
	return &Service{db: d.DB, store: d.Store, deliver: d.Deliver, rel: d.Relations, files: d.Files, words: d.Words, live: d.Live,
		cfg: config.WithDefaults(d.Config), now: time.Now}
}

// maxMembers is the size a group created now may reach: the config item, else
// GROUP_MAX_MEMBERS. A group keeps the size it was created with.
func (s *Service) maxMembers() int {
	if s.live == nil {
		return s.cfg.MaxMembers
	}
	return int(s.live.Int(dynconf.GroupMaxMembers, int64(s.cfg.MaxMembers)))
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("group.create", s.create),
		endpoint.Handle("group.list", s.list),
		endpoint.Handle("group.get", s.get),
		endpoint.Handle("group.update", s.update),
		endpoint.Handle("group.dismiss", s.dismiss),
		endpoint.Handle("group.invite", s.invite),
		endpoint.Handle("group.members", s.members),
		endpoint.Handle("group.kick", s.kick),
		endpoint.Handle("group.role.set", s.setRole),
		endpoint.Handle("group.mute", s.mute),
		endpoint.Handle("group.mute.all", s.muteAll),
		endpoint.Handle("group.transfer", s.transfer),
		endpoint.Handle("group.join", s.join),
		endpoint.Handle("group.join.requests", s.joinRequests),
		endpoint.Handle("group.join.respond", s.respond),
		endpoint.Handle("group.leave", s.leave),
		endpoint.Handle("group.announce", s.announce),
		endpoint.Handle("group.announcements", s.announcements),
	}
}

// row is a chat_groups row.
type row struct {
	id             int64
	owner          int64
	name           string
	avatar         string
	intro          string
	policy         string
	historyVisible bool
	muteAll        bool
	count          int
	max            int
	dismissed      bool
	created        time.Time
}

const groupColumns = "id, owner_id, name, avatar, intro, join_policy, history_visible, mute_all, member_count, max_members, dismissed_at IS NOT NULL, created_at"

func scanGroup(sc interface{ Scan(...any) error }) (row, error) {
	var g row
	err := sc.Scan(&g.id, &g.owner, &g.name, &g.avatar, &g.intro, &g.policy, &g.historyVisible, &g.muteAll, &g.count, &g.max, &g.dismissed, &g.created)
	return g, err
}

func (g row) info(my *perm.Role) Info {
	in := Info{GroupID: g.id, ConvID: convid.OfGroup(g.id).Raw, Name: g.name, Avatar: g.avatar, Intro: g.intro, OwnerID: g.owner,
		JoinPolicy: g.policy, HistoryVisible: g.historyVisible, MuteAll: g.muteAll, MemberCount: g.count, MaxMembers: g.max,
		Dismissed: g.dismissed, CreatedAt: g.created.UnixMilli()}
	if my != nil {
		in.MyRole = my.String()
	}
	return in
}

var errNoGroup = imerr.New(imerr.NotFound, "group not found")

// lockGroup loads the group and locks its row for the rest of tx: every change to
// a group's membership, roles or settings serialises here.
func lockGroup(ctx context.Context, tx *sql.Tx, id int64) (row, error) {
	g, err := scanGroup(tx.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE id = ? FOR UPDATE", id))
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, errNoGroup
	}
	if err != nil {
		return row{}, fmt.Errorf("lock group %d: %w", id, err)
	}
	return g, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// roleOf returns user's role, or ok=false when user is not a member.
func roleOf(ctx context.Context, q querier, group, user int64) (perm.Role, bool, error) {
	var r perm.Role
	err := q.QueryRowContext(ctx, "SELECT role FROM group_members WHERE group_id = ? AND user_id = ?", group, user).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("role in group %d: %w", group, err)
	}
	return r, true, nil
}

var errNotMember = imerr.New(imerr.Forbidden, "you are not a member of this group")

// actor locks the group and returns it with the caller's role; the caller must be
// a member and the group not dismissed.
func actor(ctx context.Context, tx *sql.Tx, group int64, c endpoint.Caller) (row, perm.Role, error) {
	g, err := lockGroup(ctx, tx, group)
	if err != nil {
		return row{}, 0, err
	}
	r, ok, err := roleOf(ctx, tx, group, c.UserID)
	if err != nil {
		return row{}, 0, err
	}
	if !ok {
		return row{}, 0, errNotMember
	}
	if g.dismissed {
		return row{}, 0, imerr.New(imerr.Forbidden, "this group was dismissed")
	}
	return g, r, nil
}

// SystemEvent is the content of a "system" message: what changed in the group.
type SystemEvent struct {
	Event   string         `json:"event"`
	Actor   int64          `json:"actor"`
	Users   []int64        `json:"users,omitempty"`
	Role    string         `json:"role,omitempty"`
	Until   int64          `json:"until,omitempty"` // mutes: unix ms, 0 = lifted
	Muted   *bool          `json:"muted,omitempty"`
	Text    string         `json:"text,omitempty"`
	Changes map[string]any `json:"changes,omitempty"`
	// Platform: the back office made the change (Actor is 0), not a member.
	Platform bool `json:"platform,omitempty"`
}

// System message events.
const (
	EvtCreated     = "group.created"
	EvtUpdated     = "group.updated"
	EvtDismissed   = "group.dismissed"
	EvtJoined      = "member.joined"
	EvtLeft        = "member.left"
	EvtKicked      = "member.kicked"
	EvtRole        = "member.role"
	EvtMuted       = "member.muted"
	EvtMutedAll    = "group.muted"
	EvtTransferred = "owner.transferred"
	EvtAnnounced   = "group.announcement"
)

// systemMessage is ev as a system message of group g, for the store to append.
func systemMessage(g int64, ev SystemEvent) (*wire.Message, error) {
	content, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("system message: %w", err)
	}
	return &wire.Message{ConvID: convid.OfGroup(g).Raw, Sender: ev.Actor, ClientMsgID: "sys-" + ids.Token(12), Type: wire.TypeSystem, Content: content}, nil
}

// change is how every group change but creation runs: fn makes the change inside
// a transaction (after taking the group's row lock through actor, target or
// lockGroup) and returns what happened, or nil for a change that changes nothing
// (a retry). The event is written as a system message of the group in the same
// transaction, which runs on the conversation's message writer (msgstore.Change),
// so it takes its seq in order with the members' sends and its push leaves in
// seq order. Users who left or were kicked get the push too: they are no longer
// members, but should learn why.
func (s *Service) change(ctx context.Context, c endpoint.Caller, group int64, fn func(tx *sql.Tx) (*SystemEvent, error)) error {
	conv := convid.OfGroup(group)
	from := deliver.From(c)
	var joined, gone []int64
	_, err := s.store.Change(ctx, conv.Raw, func(tx *sql.Tx) (*wire.Message, error) {
		joined, gone = nil, nil
		ev, err := fn(tx)
		if err != nil || ev == nil {
			return nil, err
		}
		switch ev.Event {
		case EvtKicked, EvtLeft:
			gone = ev.Users
		case EvtJoined:
			joined = ev.Users
		}
		return systemMessage(group, *ev)
	}, func(m *wire.Message, _ bool) {
		// The edges learn of the change first. New members get the message that
		// says so on their own subjects (their edges may not have the group's
		// subscription yet) and the group's later messages on the group's; members
		// who left get nothing sent on the group after it, and this message on
		// their own subjects.
		s.deliver.Joined(group, joined...)
		s.deliver.Left(group, gone...)
		s.deliver.Push(ctx, deliver.ToMembers(conv, -1).Except(joined...), wire.MsgNew{Message: *m}, from)
		if len(joined) > 0 {
			s.deliver.Push(ctx, deliver.ToUsers(joined...), wire.MsgNew{Message: *m}, from)
		}
		if len(gone) > 0 {
			s.deliver.Push(ctx, deliver.ToUsers(gone...), wire.MsgNew{Message: *m}, deliver.Origin{})
		}
	})
	return txError(err)
}

// addMembers adds users (existing, not yet members) to group g inside tx, enforcing
// the member cap, and returns who was added. minSeq hides earlier history from them
// unless the group shows history to newcomers.
func (s *Service) addMembers(ctx context.Context, tx *sql.Tx, g row, users []int64, by int64) ([]int64, error) {
	users = dedupe(users)
	existing, err := s.existingUsers(ctx, tx, users)
	if err != nil {
		return nil, err
	}
	if len(existing) < len(users) {
		return nil, imerr.New(imerr.NotFound, "%d of the users do not exist", len(users)-len(existing))
	}
	fresh, err := s.nonMembers(ctx, tx, g.id, users)
	if err != nil || len(fresh) == 0 {
		return nil, err
	}
	if g.count+len(fresh) > g.max {
		return nil, imerr.New(imerr.Conflict, "the group is full: %d of %d members", g.count, g.max)
	}
	var minSeq int64
	if !g.historyVisible {
		if err := tx.QueryRowContext(ctx, "SELECT last_seq FROM conversations WHERE id = ?", convid.OfGroup(g.id).Raw).Scan(&minSeq); err != nil {
			return nil, fmt.Errorf("group conversation: %w", err)
		}
	}
	if err := insertMembers(ctx, tx, g.id, fresh, perm.Member, by, minSeq); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET member_count = member_count + ?, members_version = members_version + 1 WHERE id = ?", len(fresh), g.id); err != nil {
		return nil, fmt.Errorf("count members: %w", err)
	}
	return fresh, nil
}

// batch is how many rows one multi-row INSERT or IN list carries.
const batch = 1000

func insertMembers(ctx context.Context, tx *sql.Tx, group int64, users []int64, role perm.Role, by, minSeq int64) error {
	conv := convid.OfGroup(group).Raw
	for start := 0; start < len(users); start += batch {
		chunk := users[start:min(start+batch, len(users))]
		gm := make([]any, 0, 4*len(chunk))
		cm := make([]any, 0, 4*len(chunk))
		for _, u := range chunk {
			gm = append(gm, group, u, role, by)
			cm = append(cm, u, conv, minSeq, group)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO group_members (group_id, user_id, role, invited_by) VALUES "+placeholders(len(chunk), 4), gm...); err != nil {
			return fmt.Errorf("insert members: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO conversation_members (user_id, conv_id, min_seq, target_id) VALUES "+placeholders(len(chunk), 4), cm...); err != nil {
			return fmt.Errorf("insert conversation members: %w", err)
		}
	}
	return nil
}

func (s *Service) existingUsers(ctx context.Context, tx *sql.Tx, users []int64) ([]int64, error) {
	return queryIDs(ctx, tx, "SELECT id FROM users WHERE id IN ", "", users)
}

func (s *Service) nonMembers(ctx context.Context, tx *sql.Tx, group int64, users []int64) ([]int64, error) {
	members, err := queryIDs(ctx, tx, "SELECT user_id FROM group_members WHERE group_id = ? AND user_id IN ", "", users, group)
	if err != nil {
		return nil, err
	}
	in := make(map[int64]bool, len(members))
	for _, m := range members {
		in[m] = true
	}
	var out []int64
	for _, u := range users {
		if !in[u] {
			out = append(out, u)
		}
	}
	return out, nil
}

// queryIDs runs prefix + "(?, ?, ...)" + suffix over ids in batches; lead args
// come before the ids.
func queryIDs(ctx context.Context, tx *sql.Tx, prefix, suffix string, ids []int64, lead ...any) ([]int64, error) {
	var out []int64
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(start+batch, len(ids))]
		args := append(append(make([]any, 0, len(lead)+len(chunk)), lead...), toAny(chunk)...)
		rows, err := tx.QueryContext(ctx, prefix+"("+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+")"+suffix, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// removeMember takes user out of group g inside tx; it reports false when user was
// not a member.
func removeMember(ctx context.Context, tx *sql.Tx, group, user int64) (bool, error) {
	res, err := tx.ExecContext(ctx, "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", group, user)
	if err != nil {
		return false, fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM conversation_members WHERE user_id = ? AND conv_id = ?", user, convid.OfGroup(group).Raw); err != nil {
		return false, fmt.Errorf("remove conversation member: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET member_count = member_count - 1, members_version = members_version + 1 WHERE id = ?", group); err != nil {
		return false, fmt.Errorf("count members: %w", err)
	}
	return true, nil
}

func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

func toAny(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// mayAdd refuses when actor may not add some of users to a group (they blocked
// actor, or their privacy says no). The answer does not say which, nor why: a
// user cannot tell a block from a privacy setting.
func (s *Service) mayAdd(ctx context.Context, actor int64, users []int64) error {
	if s.rel == nil || len(users) == 0 {
		return nil
	}
	refused, err := s.rel.MayAddToGroups(ctx, actor, users)
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		return imerr.New(imerr.Forbidden, "%d of the users cannot be added to a group by you", len(refused))
	}
	return nil
}

// txError maps a transaction's error for the client: refusals pass, the rest is
// internal.
func txError(err error) error {
	var ie *imerr.Error
	if err == nil || errors.As(err, &ie) {
		return err
	}
	return fmt.Errorf("group tx: %w", err)
}
