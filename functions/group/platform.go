package group

import (
	"context"
	"database/sql"

	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// The back office's changes to a group (functions/admin, through its Groups
// interface). They run the same transactions, system messages and deliveries as
// the owner's own (change), with no member acting: the system message says Actor
// 0 and Platform. Each changes nothing when the group is already so (a retry).

func platformEvent(event string) *SystemEvent { return &SystemEvent{Event: event, Platform: true} }

// PlatformDismiss dismisses the group.
func (s *Service) PlatformDismiss(ctx context.Context, group int64) error {
	return s.change(ctx, endpoint.Caller{}, group, func(tx *sql.Tx) (*SystemEvent, error) {
		g, err := lockGroup(ctx, tx, group)
		if err != nil || g.dismissed {
			return nil, err
		}
		return s.setDismissed(ctx, tx, group, platformEvent(EvtDismissed))
	})
}

// PlatformMuteAll mutes (or unmutes) every member but the owner and admins.
func (s *Service) PlatformMuteAll(ctx context.Context, group int64, muted bool) error {
	return s.change(ctx, endpoint.Caller{}, group, func(tx *sql.Tx) (*SystemEvent, error) {
		g, err := lockGroup(ctx, tx, group)
		if err != nil {
			return nil, err
		}
		if g.dismissed {
			return nil, errDismissed
		}
		if g.muteAll == muted {
			return nil, nil
		}
		return setMuteAll(ctx, tx, group, muted, platformEvent(EvtMutedAll))
	})
}

// PlatformTransfer makes member user the owner; the old owner stays an admin.
func (s *Service) PlatformTransfer(ctx context.Context, group, user int64) error {
	return s.change(ctx, endpoint.Caller{}, group, func(tx *sql.Tx) (*SystemEvent, error) {
		g, err := lockGroup(ctx, tx, group)
		if err != nil {
			return nil, err
		}
		if g.dismissed {
			return nil, errDismissed
		}
		if g.owner == user {
			return nil, nil
		}
		if _, ok, err := roleOf(ctx, tx, group, user); err != nil {
			return nil, err
		} else if !ok {
			return nil, imerr.New(imerr.NotFound, "user %d is not a member of group %d", user, group)
		}
		if err := setOwner(ctx, tx, group, g.owner, user); err != nil {
			return nil, err
		}
		ev := platformEvent(EvtTransferred)
		ev.Users = []int64{user}
		return ev, nil
	})
}

var errDismissed = imerr.New(imerr.Conflict, "the group is dismissed")
