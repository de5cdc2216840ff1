package wire

// ConnectReq is the body of session.connect, which the edge calls (as the token's
// user, device and session) before it accepts a WebSocket. The account domain
// checks that the session is live and the user not banned, records the connection
// and enforces the per-user device limit (kicking the oldest device through a
// control message on the user's delivery subject, or refusing this one).
type ConnectReq struct {
	ConnID   string `json:"conn_id"`
	EdgeID   string `json:"edge_id"`
	Platform string `json:"platform,omitempty"`
}

// ConnectResp answers session.connect.
type ConnectResp struct {
	// Devices is how many devices of the user are connected, this one included.
	Devices int `json:"devices"`
	// Groups are the user's groups: the edge delivers their pushes (on their
	// group subjects) to this connection.
	Groups []int64 `json:"groups,omitempty"`
}

// GroupsReq is the body of session.groups: an edge that lost NATS for a while
// asks its users' groups again, since group joins and leaves it missed meanwhile
// were not delivered.
type GroupsReq struct {
	UserIDs []int64 `json:"user_ids"`
}

// GroupsResp answers session.groups: each user's groups.
type GroupsResp struct {
	Groups map[int64][]int64 `json:"groups"`
}

// MaxGroupsUsers is how many users one session.groups asks about.
const MaxGroupsUsers = 1000

// TouchReq is the body of session.touch: an edge tells, every minute or so, which
// connections it still holds, so that connections of an edge that died stop
// counting as online (and against the device limit) a few minutes later.
type TouchReq struct {
	EdgeID string      `json:"edge_id"`
	Conns  []TouchConn `json:"conns"`
}

// TouchConn names one live connection.
type TouchConn struct {
	UserID int64  `json:"u"`
	ConnID string `json:"c"`
}

// MaxTouch is how many connections one session.touch carries at most.
const MaxTouch = 1000

// SessionCheck answers session.check, which an edge calls (as the token's user
// and session) before it serves HTTP calls of a session it has not seen lately:
// an error when the session ended or the user is banned.
type SessionCheck struct {
	Live bool `json:"live"`
}

// LoginLocked is published on im.evt.security.login_locked when failed logins
// lock an account (the audit trail keeps it).
type LoginLocked struct {
	Username  string `json:"username"`
	UserID    int64  `json:"user_id,omitempty"` // 0: no such user
	Failures  int64  `json:"failures"`
	LockedMs  int64  `json:"locked_ms"`
	At        int64  `json:"at"` // unix ms
	RequestID string `json:"request_id,omitempty"`
	ClientIP  string `json:"client_ip,omitempty"` // of the failure that locked it
}

// DisconnectReq is the body of session.disconnect, sent by the edge when a
// connection closes.
type DisconnectReq struct {
	ConnID string `json:"conn_id"`
}

// AccountDeleted is published on im.evt.account.deleted (JetStream) when a user
// deletes their account: the audit trail keeps it, and the group domain takes
// the user out of their groups.
type AccountDeleted struct {
	UserID   int64  `json:"user_id"`
	At       int64  `json:"at"` // unix ms
	ClientIP string `json:"client_ip,omitempty"`
}

// RelationsChanged is published on im.evt.relations.changed after a block,
// friendship or privacy setting of these users changed: every worker forgets
// its cached answers about them.
type RelationsChanged struct {
	Users []int64 `json:"users"`
}

// AdminRefused is published on im.evt.security.admin_refused when the adapter
// refuses an admin op.
type AdminRefused struct {
	Op       string `json:"op"`
	UserID   int64  `json:"user_id"` // the operator (or chat user) id the token named
	Role     string `json:"role"`
	Code     string `json:"code"`
	At       int64  `json:"at"` // unix ms
	ClientIP string `json:"client_ip,omitempty"`
}

// DeviceKicked is published on im.evt.security.device_kicked when a connection is
// closed to make room for another (ACCOUNT_DEVICE_POLICY kick_oldest).
type DeviceKicked struct {
	UserID   int64  `json:"user_id"`
	ConnID   string `json:"conn_id"`   // the connection closed
	DeviceID string `json:"device_id"` // the device that took its place
	Reason   string `json:"reason"`
	At       int64  `json:"at"` // unix ms
	ClientIP string `json:"client_ip,omitempty"`
}
