package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"natter/functions/perm"
	"natter/shared/convid"
	"natter/shared/endpoint"
	"natter/shared/imerr"
)

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

// errNoConversation answers for a conversation the caller cannot see, whether
// it exists or not: a stranger learns nothing from the difference.
var errNoConversation = imerr.New(imerr.NotFound, "conversation not found")

var errDismissed = imerr.New(imerr.Forbidden, "this group was dismissed")

// standingIn checks that the caller belongs to conv. Direct conversations need no
// query: membership is in the id.
func (s *Service) standingIn(ctx context.Context, c endpoint.Caller, conv convid.ID) (standing, error) {
	if conv.Kind == convid.Direct {
		if !conv.Has(c.UserID) {
			return standing{}, errNoConversation
		}
		return standing{}, nil
	}
	var st standing
	var muted sql.NullTime
	err := s.db.QueryRowContext(ctx, `SELECT cm.min_seq, gm.role, gm.muted_until, g.mute_all, g.dismissed_at IS NOT NULL, g.members_version
		FROM group_members gm
		JOIN chat_groups g ON g.id = gm.group_id
		JOIN conversation_members cm ON cm.user_id = gm.user_id AND cm.conv_id = ?
		WHERE gm.group_id = ? AND gm.user_id = ?`, conv.Raw, conv.Group, c.UserID).
		Scan(&st.minSeq, &st.role, &muted, &st.muteAll, &st.dismissed, &st.version)
	if errors.Is(err, sql.ErrNoRows) {
		return standing{}, errNoConversation
	}
	if err != nil {
		return standing{}, fmt.Errorf("group standing: %w", err)
	}
	st.mutedUntil = muted.Time
	return st, nil
}
