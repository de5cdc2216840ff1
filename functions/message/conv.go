package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"natter/functions/group/perm"
	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// Conversation kinds, as stored in conversations.kind.
const (
	kindDirect = 1
	kindGroup  = 2
)

// directID is the 1:1 conversation of users a and b: "d:<low>:<high>", so both
// sides compute the same id without a lookup.
func directID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return "d:" + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10)
}

// GroupConv is the conversation of group g.
func GroupConv(g int64) string { return "g:" + strconv.FormatInt(g, 10) }

// parsedConv is a conversation id taken apart.
type parsedConv struct {
	id    string
	kind  int
	a, b  int64 // direct: the two users
	group int64 // group: the group id
}

var errUserNotFound = imerr.New(imerr.NotFound, "user not found")

func parseConv(id string) (parsedConv, error) {
	kind, rest, ok := strings.Cut(id, ":")
	switch {
	case ok && kind == "d":
		as, bs, ok := strings.Cut(rest, ":")
		a, err1 := strconv.ParseInt(as, 10, 64)
		b, err2 := strconv.ParseInt(bs, 10, 64)
		if ok && err1 == nil && err2 == nil && a > 0 && a < b && directID(a, b) == id {
			return parsedConv{id: id, kind: kindDirect, a: a, b: b}, nil
		}
	case ok && kind == "g":
		g, err := strconv.ParseInt(rest, 10, 64)
		if err == nil && g > 0 && GroupConv(g) == id {
			return parsedConv{id: id, kind: kindGroup, group: g}, nil
		}
	}
	return parsedConv{}, imerr.New(imerr.BadRequest, "conv_id: %q is not a conversation id", id)
}

// peer is the other user of a direct conversation.
func (p parsedConv) peer(self int64) int64 {
	if p.a == self {
		return p.b
	}
	return p.a
}

// standing is what the caller may see and do in a conversation.
type standing struct {
	minSeq int64 // messages up to this seq are hidden from the caller
	// groups only
	role       perm.Role
	mutedUntil time.Time
	muteAll    bool
	dismissed  bool
	version    int64 // chat_groups.members_version: keys the fan-out member cache
}

var errNotMember = imerr.New(imerr.Forbidden, "not a member of this conversation")

// standingIn checks that the caller belongs to conv. Direct conversations need no
// query: membership is in the id.
func (s *Service) standingIn(ctx context.Context, c endpoint.Caller, conv parsedConv) (standing, error) {
	if conv.kind == kindDirect {
		if c.UserID != conv.a && c.UserID != conv.b {
			return standing{}, errNotMember
		}
		return standing{}, nil
	}
	var st standing
	var muted sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT cm.min_seq, gm.role, gm.muted_until, g.mute_all, g.dismissed_at IS NOT NULL, g.members_version
		FROM group_members gm
		JOIN chat_groups g ON g.id = gm.group_id
		JOIN conversation_members cm ON cm.user_id = gm.user_id AND cm.conv_id = ?
		WHERE gm.group_id = ? AND gm.user_id = ?`, conv.id, conv.group, c.UserID).
		Scan(&st.minSeq, &st.role, &muted, &st.muteAll, &st.dismissed, &st.version)
	if errors.Is(err, sql.ErrNoRows) {
		return standing{}, errNotMember
	}
	if err != nil {
		return standing{}, fmt.Errorf("group standing: %w", err)
	}
	st.mutedUntil = muted.Time
	return st, nil
}
