package wire

import "encoding/json"

// Push payloads: every event a client can receive, one type each. The function
// that causes an event builds its type and hands it to the delivery owner
// (functions/deliver), which encodes it once into {"event":..., "data":...};
// clients (tests, the load tool, SDKs) decode into the same types.

// Event is the data of a push frame; EventName is the frame's "event".
type Event interface{ EventName() string }

// Message is one stored message as clients see it: in history, sync and the
// msg.new and msg.edited pushes.
type Message struct {
	ConvID      string          `json:"conv_id"`
	Seq         int64           `json:"seq"`
	ID          int64           `json:"id,string"` // 63-bit: a string so JavaScript keeps it exact
	Sender      int64           `json:"sender"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"` // the type's content; null once recalled
	SentAt      int64           `json:"sent_at"` // unix ms
	// Lifecycle: Edits counts edits (the version), Mod is the conversation's change
	// counter at this message's last edit, recall or reaction (see msg.sync).
	Edits      int        `json:"edits,omitempty"`
	EditedAt   int64      `json:"edited_at,omitempty"`
	Recalled   bool       `json:"recalled,omitempty"`
	RecalledBy int64      `json:"recalled_by,omitempty"`
	Mod        int64      `json:"mod,omitempty"`
	Reactions  []Reaction `json:"reactions,omitempty"`
}

// Message types. Clients send text and rich (and, with the files issue, media);
// system messages record group changes and only functions write them.
const (
	TypeText   = "text"
	TypeRich   = "rich"
	TypeSystem = "system"
)

// Reaction aggregates one emoji on a message.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Me    bool   `json:"me,omitempty"` // the caller reacted with it
}

// Event names.
const (
	EvtMsgNew             = "msg.new"
	EvtMsgEdited          = "msg.edited"
	EvtMsgRecalled        = "msg.recalled"
	EvtMsgReaction        = "msg.reaction"
	EvtMsgRead            = "msg.read"
	EvtTyping             = "typing"
	EvtConvUpdated        = "conv.updated"
	EvtSessionKicked      = "session.kicked"
	EvtFriendRequest      = "friend.request"
	EvtFriendResponded    = "friend.responded"
	EvtFriendAdded        = "friend.added"
	EvtFriendDeleted      = "friend.deleted"
	EvtGroupJoinRequested = "group.join.requested"
	EvtGroupJoinAnswered  = "group.join.answered"
	EvtPresenceChanged    = "presence.changed"
)

// Events lists every event name, in documentation order.
var Events = []string{EvtMsgNew, EvtMsgEdited, EvtMsgRecalled, EvtMsgReaction, EvtMsgRead, EvtTyping, EvtConvUpdated,
	EvtSessionKicked, EvtFriendRequest, EvtFriendResponded, EvtFriendAdded, EvtFriendDeleted,
	EvtGroupJoinRequested, EvtGroupJoinAnswered, EvtPresenceChanged}

type (
	// MsgNew is a new message in one of the user's conversations (group changes
	// arrive as messages of type "system").
	MsgNew struct{ Message }
	// MsgEdited is a message's latest version.
	MsgEdited struct{ Message }
	// MsgRecalled says a message's content is gone for good.
	MsgRecalled struct {
		ConvID string `json:"conv_id"`
		Seq    int64  `json:"seq"`
		By     int64  `json:"by"`
		Mod    int64  `json:"mod"`
	}
	// MsgReaction is one user adding or removing an emoji (also msg.react's reply).
	MsgReaction struct {
		ConvID string `json:"conv_id"`
		Seq    int64  `json:"seq"`
		Emoji  string `json:"emoji"`
		UserID int64  `json:"user_id"`
		Added  bool   `json:"added"`
		Count  int    `json:"count"` // users with this emoji on the message now
		Mod    int64  `json:"mod"`
	}
	// MsgRead is a 1:1 read receipt: the peer read up to Seq.
	MsgRead struct {
		ConvID string `json:"conv_id"`
		UserID int64  `json:"user_id"`
		Seq    int64  `json:"seq"`
	}
	// Typing says a user is typing in a conversation.
	Typing struct {
		ConvID string `json:"conv_id"`
		UserID int64  `json:"user_id"`
	}
	// ConvUpdated is the user's own state of a conversation after a change made
	// on another of their devices.
	ConvUpdated struct{ ConvState }
	// SessionKicked comes just before the edge closes the connection with 3501.
	SessionKicked struct {
		Reason string `json:"reason"`
	}
	// FriendRequest is a request received.
	FriendRequest struct {
		RequestID int64    `json:"request_id"`
		From      int64    `json:"from"`
		Message   string   `json:"message"`
		CreatedAt int64    `json:"created_at"`
		User      UserCard `json:"user"` // the sender
	}
	// FriendResponded answers a request the user sent.
	FriendResponded struct {
		RequestID int64 `json:"request_id"`
		By        int64 `json:"by"`
		Accepted  bool  `json:"accepted"`
	}
	// FriendAdded and FriendDeleted name the other user.
	FriendAdded   struct{ UserRef }
	FriendDeleted struct{ UserRef }
	// GroupJoinRequested reaches a group's owner and admins.
	GroupJoinRequested struct{ JoinRequest }
	// GroupJoinAnswered reaches the user who asked to join.
	GroupJoinAnswered struct {
		GroupID   int64  `json:"group_id"`
		RequestID int64  `json:"request_id"`
		Status    string `json:"status"` // accepted or rejected
	}
)

// ConvState is a member's settings and cursor for one conversation (also the
// reply of conv.pin, conv.mute, conv.hide and conv.read).
type ConvState struct {
	ConvID  string `json:"conv_id"`
	Pinned  bool   `json:"pinned"`
	Muted   bool   `json:"muted"`
	Hidden  bool   `json:"hidden"`
	ReadSeq int64  `json:"read_seq"`
	LastSeq int64  `json:"last_seq"`
	Unread  int64  `json:"unread"`
}

// UserCard is the short public profile that travels with events.
type UserCard struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
}

// UserRef names a user.
type UserRef struct {
	UserID int64 `json:"user_id"`
}

// JoinRequest is a request to join a group (also in group.join.requests).
type JoinRequest struct {
	RequestID int64  `json:"request_id"`
	GroupID   int64  `json:"group_id"`
	UserID    int64  `json:"user_id"`
	Nickname  string `json:"nickname"`
	Message   string `json:"message"`
	Status    string `json:"status"`
	CreatedAt int64  `json:"created_at"`
}

func (MsgNew) EventName() string             { return EvtMsgNew }
func (MsgEdited) EventName() string          { return EvtMsgEdited }
func (MsgRecalled) EventName() string        { return EvtMsgRecalled }
func (MsgReaction) EventName() string        { return EvtMsgReaction }
func (MsgRead) EventName() string            { return EvtMsgRead }
func (Typing) EventName() string             { return EvtTyping }
func (ConvUpdated) EventName() string        { return EvtConvUpdated }
func (SessionKicked) EventName() string      { return EvtSessionKicked }
func (FriendRequest) EventName() string      { return EvtFriendRequest }
func (FriendResponded) EventName() string    { return EvtFriendResponded }
func (FriendAdded) EventName() string        { return EvtFriendAdded }
func (FriendDeleted) EventName() string      { return EvtFriendDeleted }
func (GroupJoinRequested) EventName() string { return EvtGroupJoinRequested }
func (GroupJoinAnswered) EventName() string  { return EvtGroupJoinAnswered }

// SessionRevoked is published on im.evt.session.revoked (JetStream) when a
// session ends early (logout, ...): edges refuse its access tokens until they
// expire, replaying the last token lifetime of these on start.
type SessionRevoked struct {
	UserID    int64  `json:"user_id"`
	SessionID string `json:"session_id"`
	At        int64  `json:"at"` // unix ms
}

// EncodeEvent returns the push frame {"event":..., "data":...} of ev.
func EncodeEvent(ev Event) ([]byte, error) {
	return json.Marshal(Push{Event: ev.EventName(), Data: ev})
}

// Message events, published on JetStream (stream IM_MESSAGES) for the services
// that must see every message (offline push, search). Not pushed to clients.
type (
	// MessageSent is every stored message, system messages too (im.evt.message.sent).
	MessageSent struct {
		Message
		Mentions   []int64 `json:"mentions,omitempty"`
		MentionAll bool    `json:"mention_all,omitempty"`
	}
	// MessagesSent is several messages stored in one transaction, as one
	// event on im.evt.message.sent (a lone message travels as MessageSent):
	// consumers read either with DecodeSent.
	MessagesSent struct {
		Messages []MessageSent `json:"messages"`
	}
	// MessageEdited is a message's new version (im.evt.message.edited).
	MessageEdited struct{ Message }
	// MessageRecalled says a message's content is gone (im.evt.message.recalled).
	MessageRecalled struct {
		ConvID string `json:"conv_id"`
		Seq    int64  `json:"seq"`
		By     int64  `json:"by"`
		Mod    int64  `json:"mod"`
	}
)

// Presence statuses.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
	// PresenceUnknown answers presence.get for a user whose privacy hides their
	// presence from the caller.
	PresenceUnknown = "unknown"
)

// PresenceChanged reaches a user's online friends when the user comes online,
// goes away, comes back or goes offline (presence.changed).
type PresenceChanged struct {
	UserID   int64  `json:"user_id"`
	Status   string `json:"status"`              // online, away or offline
	LastSeen int64  `json:"last_seen,omitempty"` // unix ms, when offline
}

func (PresenceChanged) EventName() string { return EvtPresenceChanged }

// DecodeSent reads an im.evt.message.sent event, a MessageSent or a
// MessagesSent, as the messages it carries.
func DecodeSent(data []byte) ([]MessageSent, error) {
	var ev struct {
		MessageSent
		Messages []MessageSent `json:"messages"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, err
	}
	if ev.Messages != nil {
		return ev.Messages, nil
	}
	return []MessageSent{ev.MessageSent}, nil
}
