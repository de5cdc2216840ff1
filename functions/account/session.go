package account

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"natter/functions/deliver"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/wire"
)

func (s *Service) connect(ctx context.Context, c endpoint.Caller, r wire.ConnectReq) (wire.ConnectResp, error) {
	if r.ConnID == "" || len(r.ConnID) > 128 || strings.Contains(r.ConnID, "|") {
		return wire.ConnectResp{}, imerr.New(imerr.BadRequest, "conn_id required")
	}
	if c.DeviceID == "" || strings.Contains(c.DeviceID, "|") {
		return wire.ConnectResp{}, imerr.New(imerr.Unauthorized, "token has no device")
	}
	if err := s.liveSession(ctx, c); err != nil {
		return wire.ConnectResp{}, err
	}
	res, err := s.presence.Connect(ctx, c.UserID, r.ConnID, c.DeviceID, r.EdgeID, s.cfg.MaxDevices, s.cfg.DevicePolicy)
	if err != nil {
		return wire.ConnectResp{}, err
	}
	if res.Refused {
		return wire.ConnectResp{}, imerr.New(imerr.Conflict, "already connected on %d devices", s.cfg.MaxDevices)
	}
	for _, old := range res.Evicted {
		s.deliver.Kick(c.UserID, deliver.Kick{Conn: old, Reason: "signed in on another device"})
		s.kicked(ctx, wire.DeviceKicked{UserID: c.UserID, ConnID: old, DeviceID: c.DeviceID, Reason: "signed in on another device",
			At: s.now().UnixMilli(), ClientIP: c.ClientIP})
	}
	if res.CameOnline && s.notifier != nil {
		s.notifier.Online(c.UserID)
	}
	s.sessionActive(ctx, c, true)
	groups, err := s.groupsOf(ctx, []int64{c.UserID})
	if err != nil {
		return wire.ConnectResp{}, err
	}
	return wire.ConnectResp{Devices: res.Devices, Groups: groups[c.UserID]}, nil
}

// kicked publishes a kick for the audit trail (im.evt.security.device_kicked).
func (s *Service) kicked(ctx context.Context, ev wire.DeviceKicked) {
	if s.nc == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err == nil {
		err = s.nc.Publish(subject.EvtDeviceKicked, b)
	}
	if err != nil {
		logging.From(ctx).Warn().Err(err).Msg("publish device_kicked")
	}
}

// groups answers session.groups: the groups of each user, for an edge that
// missed group joins and leaves while it was cut off from NATS.
func (s *Service) groups(ctx context.Context, _ endpoint.Caller, r wire.GroupsReq) (wire.GroupsResp, error) {
	if len(r.UserIDs) == 0 || len(r.UserIDs) > wire.MaxGroupsUsers {
		return wire.GroupsResp{}, imerr.New(imerr.BadRequest, "user_ids: 1 to %d user ids", wire.MaxGroupsUsers)
	}
	g, err := s.groupsOf(ctx, r.UserIDs)
	return wire.GroupsResp{Groups: g}, err
}

// groupsOf reads the groups of users (group_members, by its user index), less
// dismissed ones (nothing is sent there any more): the edge delivers a group's
// pushes to its members' connections.
func (s *Service) groupsOf(ctx context.Context, users []int64) (map[int64][]int64, error) {
	args := make([]any, len(users))
	for i, u := range users {
		args[i] = u
	}
	rows, err := s.db.QueryContext(ctx, "SELECT m.user_id, m.group_id FROM group_members m JOIN chat_groups g ON g.id = m.group_id AND g.dismissed_at IS NULL WHERE m.user_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(users)), ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("groups of users: %w", err)
	}
	defer rows.Close()
	out := make(map[int64][]int64, len(users))
	for rows.Next() {
		var u, g int64
		if err := rows.Scan(&u, &g); err != nil {
			return nil, err
		}
		out[u] = append(out[u], g)
	}
	return out, rows.Err()
}

// check answers session.check: whether the caller's session is live and its user
// not banned. Edges ask it for HTTP calls, as session.connect does for a
// WebSocket, and cache the answer briefly.
func (s *Service) check(ctx context.Context, c endpoint.Caller, _ Empty) (wire.SessionCheck, error) {
	if err := s.liveSession(ctx, c); err != nil {
		return wire.SessionCheck{}, err
	}
	return wire.SessionCheck{Live: true}, nil
}

// liveSession checks that the caller's session exists, is neither revoked nor
// expired, and that its user is not banned.
func (s *Service) liveSession(ctx context.Context, c endpoint.Caller) error {
	if c.SessionID == "" || c.UserID == 0 {
		return imerr.New(imerr.Unauthorized, "token has no session")
	}
	var revoked sql.NullTime
	var expires time.Time
	var banned bool
	err := s.db.QueryRowContext(ctx, `SELECT s.revoked_at, s.expires_at, `+bannedNow("u.")+` FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.user_id = ?`, s.now(), c.SessionID, c.UserID).Scan(&revoked, &expires, &banned)
	if errors.Is(err, sql.ErrNoRows) || revoked.Valid || (err == nil && s.now().After(expires)) {
		return imerr.New(imerr.Unauthorized, "session ended: log in again")
	}
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	if banned {
		return imerr.New(imerr.Forbidden, "account banned")
	}
	return nil
}

func (s *Service) disconnect(ctx context.Context, c endpoint.Caller, r wire.DisconnectReq) (Empty, error) {
	if r.ConnID == "" || c.UserID == 0 {
		return Empty{}, imerr.New(imerr.BadRequest, "conn_id and caller required")
	}
	online, err := s.presence.Disconnect(ctx, c.UserID, r.ConnID)
	if err != nil {
		return Empty{}, err
	}
	s.sessionActive(ctx, c, false)
	if !online && s.notifier != nil {
		s.notifier.MaybeOffline(c.UserID) // after a grace: a reconnect is no change
	}
	return Empty{}, nil
}

// touch refreshes the connections an edge still holds, one pipelined script call
// per user.
func (s *Service) touch(ctx context.Context, _ endpoint.Caller, r wire.TouchReq) (Empty, error) {
	if len(r.Conns) > wire.MaxTouch {
		return Empty{}, imerr.New(imerr.TooLarge, "at most %d connections per touch", wire.MaxTouch)
	}
	for _, c := range r.Conns {
		if c.UserID <= 0 || c.ConnID == "" {
			return Empty{}, imerr.New(imerr.BadRequest, "conns: user and conn id required")
		}
	}
	return Empty{}, s.presence.Touch(ctx, r.Conns)
}

// sessionActive records a session's latest activity (and, at connect, the address
// it came from) for account.devices: noted for the next batched write once Run
// started, else written now. Best effort: a failure is logged.
func (s *Service) sessionActive(ctx context.Context, c endpoint.Caller, connected bool) {
	if c.SessionID == "" {
		return
	}
	if s.act != nil {
		ip := ""
		if connected {
			ip = c.ClientIP
		}
		s.act.note(c.SessionID, c.UserID, s.now(), ip)
		return
	}
	var err error
	if connected {
		_, err = s.db.ExecContext(ctx, "UPDATE sessions SET last_active_at = ?, last_ip = ? WHERE id = ? AND user_id = ?", s.now(), c.ClientIP, c.SessionID, c.UserID)
	} else {
		_, err = s.db.ExecContext(ctx, "UPDATE sessions SET last_active_at = ? WHERE id = ? AND user_id = ?", s.now(), c.SessionID, c.UserID)
	}
	if err != nil {
		logging.From(ctx).Warn().Err(err).Str("session", c.SessionID).Msg("session activity not recorded")
	}
}
