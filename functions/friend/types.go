package friend

import (
	"errors"
	"time"

	"natter/shared/validate"
)

// Request statuses, and the extra answer of friend.request between friends.
const (
	StatusPending        = "pending"
	StatusAccepted       = "accepted"
	StatusDeclined       = "declined"
	StatusCancelled      = "cancelled"
	StatusAlreadyFriends = "already_friends"
)

// Privacy values.
const (
	Everyone = "everyone"
	Nobody   = "nobody"
	Friends  = "friends"
)

// Defaults of a user without a user_privacy row.
const (
	DefaultFriendRequests = Everyone
	DefaultMessages       = Friends
	DefaultGroups         = Everyone
	DefaultPresence       = Friends
	DefaultSearch         = Everyone
)

const (
	maxRequestMessage = 200
	maxRemark         = 64
	defaultPage       = 50
	maxPage           = 100
)

type Empty struct{}

// RequestReq is friend.request.
type RequestReq struct {
	To      int64  `json:"to"`
	Message string `json:"message"`
}

func (r *RequestReq) Validate() error {
	if r.To <= 0 {
		return errors.New("to: a user id is required")
	}
	return validate.Text("message", r.Message, maxRequestMessage)
}

// RequestResp answers friend.request. Status is pending, accepted (the target had
// already asked the caller) or already_friends.
type RequestResp struct {
	RequestID int64  `json:"request_id,omitempty"`
	Status    string `json:"status"`
}

// RespondReq is friend.respond; Accept is required so that a forgotten field never
// declines by accident.
type RespondReq struct {
	RequestID int64 `json:"request_id"`
	Accept    *bool `json:"accept"`
}

func (r *RespondReq) Validate() error {
	if r.RequestID <= 0 {
		return errors.New("request_id required")
	}
	if r.Accept == nil {
		return errors.New("accept required: true or false")
	}
	return nil
}

type RespondResp struct {
	Status string `json:"status"`
}

// Directions of friend.requests.
const (
	Incoming = "incoming"
	Outgoing = "outgoing"
)

// RequestsReq is friend.requests: one page, newest first.
type RequestsReq struct {
	Direction string `json:"direction"` // incoming (default) or outgoing
	Status    string `json:"status"`    // optional filter
	Before    int64  `json:"before"`    // request id, exclusive
	Limit     int    `json:"limit"`
}

func (r *RequestsReq) Validate() error {
	switch r.Direction {
	case "", Incoming, Outgoing:
	default:
		return errors.New("direction: incoming or outgoing")
	}
	switch r.Status {
	case "", StatusPending, StatusAccepted, StatusDeclined, StatusCancelled:
	default:
		return errors.New("status: pending, accepted, declined or cancelled")
	}
	if r.Before < 0 {
		return errors.New("before: a request id")
	}
	if r.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	return nil
}

// User is the short profile shown next to a request, friend or block.
type User struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
}

// Request is one friend request; User is the other side (the sender of an
// incoming request, the target of an outgoing one).
type Request struct {
	RequestID int64  `json:"request_id"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	Message   string `json:"message"`
	Status    string `json:"status"`
	CreatedAt int64  `json:"created_at"`
	UpdatedAt int64  `json:"updated_at"`
	User      User   `json:"user"`
}

type RequestsResp struct {
	Requests []Request `json:"requests"`
	HasMore  bool      `json:"has_more"`
}

// Friend is one entry of friend.list. Blocked is set when the caller has blocked
// this friend (blocking keeps the friendship).
type Friend struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Remark   string `json:"remark"`
	Blocked  bool   `json:"blocked"`
	Since    int64  `json:"since"`
}

// PageReq pages friend.list and block.list by user id: After (exclusive), up to
// Limit (0 or more than the cap: the cap, MaxFriends or MaxBlocks). A reply
// stops early once it nears wire.MaxReply bytes; HasMore says to ask again from
// the last user id.
type PageReq struct {
	After int64 `json:"after,omitempty"`
	Limit int   `json:"limit,omitempty"`
}

func (r *PageReq) Validate() error {
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit must not be negative")
	}
	return nil
}

type ListResp struct {
	Friends []Friend `json:"friends"`
	HasMore bool     `json:"has_more"`
}

// UserReq names another user: friend.delete, block.add, block.remove.
type UserReq struct {
	UserID int64 `json:"user_id"`
}

func (r *UserReq) Validate() error {
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	return nil
}

// RemarkReq is friend.remark; an empty remark clears it.
type RemarkReq struct {
	UserID int64  `json:"user_id"`
	Remark string `json:"remark"`
}

func (r *RemarkReq) Validate() error {
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	return validate.Name("remark", r.Remark, maxRemark)
}

type Block struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Since    int64  `json:"since"`
}

type BlocksResp struct {
	Blocks  []Block `json:"blocks"`
	HasMore bool    `json:"has_more"`
}

// Privacy answers account.privacy.get and .set.
type Privacy struct {
	FriendRequests string `json:"friend_requests"` // everyone | nobody
	Messages       string `json:"messages"`        // friends | everyone
	Groups         string `json:"groups"`          // who may add me to groups: everyone | friends | nobody
	Presence       string `json:"presence"`        // who may see when I am online: everyone | friends | nobody
	Search         string `json:"search"`          // who may find me with user.search: everyone | friends | nobody
}

// PrivacySetReq changes the fields that are present.
type PrivacySetReq struct {
	FriendRequests *string `json:"friend_requests"`
	Messages       *string `json:"messages"`
	Groups         *string `json:"groups"`
	Presence       *string `json:"presence"`
	Search         *string `json:"search"`
}

func (r *PrivacySetReq) Validate() error {
	if r.FriendRequests == nil && r.Messages == nil && r.Groups == nil && r.Presence == nil && r.Search == nil {
		return errors.New("nothing to set: give friend_requests, messages, groups, presence or search")
	}
	if v := r.Search; v != nil && *v != Everyone && *v != Friends && *v != Nobody {
		return errors.New("search: everyone, friends or nobody")
	}
	if v := r.Presence; v != nil && *v != Everyone && *v != Friends && *v != Nobody {
		return errors.New("presence: everyone, friends or nobody")
	}
	if v := r.Groups; v != nil && *v != Everyone && *v != Friends && *v != Nobody {
		return errors.New("groups: everyone, friends or nobody")
	}
	if v := r.FriendRequests; v != nil && *v != Everyone && *v != Nobody {
		return errors.New("friend_requests: everyone or nobody")
	}
	if v := r.Messages; v != nil && *v != Friends && *v != Everyone {
		return errors.New("messages: friends or everyone")
	}
	return nil
}

// Push payloads.
type (
	// RequestSentEvent is published on im.evt.friend.request.sent.
	RequestSentEvent struct {
		RequestID int64  `json:"request_id"`
		From      int64  `json:"from"`
		To        int64  `json:"to"`
		Message   string `json:"message"`
		CreatedAt int64  `json:"created_at"`
	}
)

func ms(t time.Time) int64 { return t.UnixMilli() }
