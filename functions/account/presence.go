package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// PresenceGetReq is presence.get: up to MaxPresence users (a contact list).
type PresenceGetReq struct {
	UserIDs []int64 `json:"user_ids"`
}

// MaxPresence bounds one presence.get.
const MaxPresence = 200

func (r *PresenceGetReq) Validate() error {
	if len(r.UserIDs) == 0 || len(r.UserIDs) > MaxPresence {
		return fmt.Errorf("user_ids: 1 to %d user ids", MaxPresence)
	}
	for _, u := range r.UserIDs {
		if u <= 0 {
			return errors.New("user_ids: invalid user id")
		}
	}
	return nil
}

// UserPresence is one user's presence as the caller may see it.
type UserPresence struct {
	UserID   int64  `json:"user_id"`
	Status   string `json:"status"`              // online, away, offline, or unknown (hidden from the caller)
	LastSeen int64  `json:"last_seen,omitempty"` // unix ms, when offline and known
}

type PresenceGetResp struct {
	Users []UserPresence `json:"users"`
}

// presenceGet answers for each user whose privacy lets the caller see them
// (unknown otherwise, and for ids nobody has): live state from the connection
// registry, last seen from MySQL. Groups' members are asked this way; nothing
// pushes their presence.
func (s *Service) presenceGet(ctx context.Context, c endpoint.Caller, r PresenceGetReq) (PresenceGetResp, error) {
	users := dedupe(r.UserIDs)
	visible := map[int64]bool{}
	if s.rel != nil {
		var err error
		if visible, err = s.rel.PresenceVisible(ctx, c.UserID, users); err != nil {
			return PresenceGetResp{}, err
		}
	} else {
		for _, u := range users {
			visible[u] = true
		}
	}
	var shown []int64
	for _, u := range users {
		if visible[u] {
			shown = append(shown, u)
		}
	}
	live, err := s.presence.Statuses(ctx, shown)
	if err != nil {
		return PresenceGetResp{}, err
	}
	seen, err := s.lastSeen(ctx, shown)
	if err != nil {
		return PresenceGetResp{}, err
	}
	out := PresenceGetResp{Users: make([]UserPresence, 0, len(users))}
	for _, u := range users {
		p := UserPresence{UserID: u, Status: wire.PresenceUnknown}
		if visible[u] {
			switch st := live[u]; {
			case st.Away:
				p.Status = wire.PresenceAway
			case st.Online:
				p.Status = wire.PresenceOnline
			default:
				p.Status, p.LastSeen = wire.PresenceOffline, seen[u]
			}
		}
		out.Users = append(out.Users, p)
	}
	return out, nil
}

func (s *Service) lastSeen(ctx context.Context, users []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(users) == 0 {
		return out, nil
	}
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, last_seen_at FROM users WHERE id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(users)), ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("last seen: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u int64
		var at sql.NullTime
		if err := rows.Scan(&u, &at); err != nil {
			return nil, err
		}
		if at.Valid {
			out[u] = at.Time.UnixMilli()
		}
	}
	return out, rows.Err()
}

// PresenceSetReq is presence.set: this connection is away (idle) or back.
type PresenceSetReq struct {
	Status string `json:"status"` // online or away
}

func (r *PresenceSetReq) Validate() error {
	if r.Status != wire.PresenceOnline && r.Status != wire.PresenceAway {
		return errors.New("status: online or away")
	}
	return nil
}

// presenceSet marks the calling WebSocket away or back; the user is away when
// every live connection is. A change of the user's status reaches their online
// friends.
func (s *Service) presenceSet(ctx context.Context, c endpoint.Caller, r PresenceSetReq) (UserPresence, error) {
	if c.ConnID == "" {
		return UserPresence{}, imerr.New(imerr.BadRequest, "presence.set is for a WebSocket connection")
	}
	before, err := s.presence.Statuses(ctx, []int64{c.UserID})
	if err != nil {
		return UserPresence{}, err
	}
	ok, err := s.presence.SetAway(ctx, c.UserID, c.ConnID, r.Status == wire.PresenceAway)
	if err != nil {
		return UserPresence{}, err
	}
	if !ok {
		return UserPresence{}, imerr.New(imerr.NotFound, "this connection is not registered")
	}
	after, err := s.presence.Statuses(ctx, []int64{c.UserID})
	if err != nil {
		return UserPresence{}, err
	}
	if after[c.UserID] != before[c.UserID] && s.notifier != nil {
		s.notifier.StatusChanged(c.UserID)
	}
	status := wire.PresenceOnline
	if after[c.UserID].Away {
		status = wire.PresenceAway
	}
	return UserPresence{UserID: c.UserID, Status: status}, nil
}

func dedupe(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
