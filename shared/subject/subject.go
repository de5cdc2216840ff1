// Package subject builds every NATS subject natter uses, so no other package
// formats one by hand.
package subject

import "strconv"

const (
	// RequestPrefix prefixes the subjects of the ops clients call through the
	// edge: im.v1.<op>.
	RequestPrefix = "im.v1."
	// InternalPrefix prefixes the subjects of internal ops, which only the edge
	// calls for itself (session.connect, ...): im.internal.<op>. A space of their
	// own, so that NATS permissions grant them apart from client ops.
	InternalPrefix = "im.internal."
	// EventPrefix prefixes events between services: im.evt.<domain>.<event>.
	EventPrefix = "im.evt."
	// DeliverPrefix prefixes per-user delivery subjects: im.deliver.<userID>.
	DeliverPrefix = "im.deliver."
	// EventStream is the JetStream stream of the events between services
	// (sessions, relations, security, files, ...) for durable consumers.
	EventStream = "IM_EVENTS"
	// MessageStream is the JetStream stream of message events (sent, edited,
	// recalled): every message, for offline push and search indexing. A stream of
	// its own, so that its volume never pushes a session revocation out of
	// IM_EVENTS, and with its own limits.
	MessageStream = "IM_MESSAGES"
	// PushDeadStream is the JetStream stream of offline pushes that failed after
	// their retries (dead letters), kept for operators to inspect and replay. Its
	// subjects (im.evt.push.dead.<provider>) are in no other stream.
	PushDeadStream = "IM_PUSH_DEAD"
)

// Streams lists the JetStream streams and the subjects each captures; the
// subjects of different streams never overlap (NATS refuses it), and every event
// subject is in one (TestStreams). A new event domain needs its line here.
var Streams = map[string][]string{
	EventStream:    {EventPrefix + "session.>", EventPrefix + "relations.>", EventPrefix + "friend.>", EventPrefix + "security.>", EventPrefix + "user.>", EventPrefix + "account.>", EventPrefix + "group.>", EventPrefix + "file.>", EventPrefix + "config.>"},
	MessageStream:  {EventPrefix + "message.>"},
	PushDeadStream: {EventPrefix + "push.dead.>"},
}

// Request is the subject serving op (e.g. "msg.send" -> "im.v1.msg.send").
func Request(op string) string { return RequestPrefix + op }

// Internal is the subject serving internal op (e.g. "session.connect" ->
// "im.internal.session.connect").
func Internal(op string) string { return InternalPrefix + op }

// Deliver is the subject every edge holding a connection of user subscribes to.
func Deliver(user int64) string {
	return DeliverPrefix + strconv.FormatInt(user, 10)
}

// DeliverGroupPrefix prefixes group delivery subjects: im.deliver.g.<groupID>.
const DeliverGroupPrefix = DeliverPrefix + "g."

// DeliverGroup is the subject of a group's pushes: every edge holding a
// connection of one of its members subscribes to it, and fans out locally.
func DeliverGroup(group int64) string {
	return DeliverGroupPrefix + strconv.FormatInt(group, 10)
}

// Event names (seed names, under im.evt.).
const (
	EvtMessageSent    = EventPrefix + "message.sent"
	EvtUserCreated    = EventPrefix + "user.created"
	EvtSessionRevoked = EventPrefix + "session.revoked"
)

// Message events besides message.sent (stream IM_MESSAGES).
const (
	EvtMessageEdited   = EventPrefix + "message.edited"
	EvtMessageRecalled = EventPrefix + "message.recalled"
)

// EvtAccountDeleted is published when a user deletes their account; the group
// domain takes them out of their groups.
const EvtAccountDeleted = EventPrefix + "account.deleted"

// EvtLoginLocked is published when failed logins lock an account.
const EvtLoginLocked = EventPrefix + "security.login_locked"

// EvtRelationsChanged is published after a block, friendship or privacy change
// commits; workers drop their cached send permissions for the users it names.
const EvtRelationsChanged = EventPrefix + "relations.changed"

// EvtFriendRequestSent is published when a friend request is sent or re-sent.
const EvtFriendRequestSent = EventPrefix + "friend.request.sent"

// EvtFileUploaded is published when a file becomes ready; the file domain's
// worker consumes it durably to hash the file and make its thumbnail.
const EvtFileUploaded = EventPrefix + "file.uploaded"

// PushDead is the subject of a dead letter of provider (offline push): stream
// IM_PUSH_DEAD.
func PushDead(provider string) string { return EventPrefix + "push.dead." + provider }

// EvtAdminRefused is published by the endpoint adapter each time it refuses an
// admin op to its caller (an operator whose role does not reach it, or a caller
// who is no operator); the back office audits those above a rate.
const EvtAdminRefused = EventPrefix + "security.admin_refused"

// EvtDeviceKicked is published when a new connection pushes an older one of the
// same user out (the device limit); the back office audits it.
const EvtDeviceKicked = EventPrefix + "security.device_kicked"
