package group

import (
	"errors"

	"natter/shared/validate"
	"natter/shared/wire"
)

// Join policies.
const (
	PolicyOpen     = "open"     // anyone may join; members may invite
	PolicyApproval = "approval" // joining makes a request that owner/admins review
	PolicyInvite   = "invite"   // only owner/admins add members
)

var (
	policies = map[string]bool{PolicyOpen: true, PolicyApproval: true, PolicyInvite: true}
)

const (
	maxName     = 64
	maxAvatar   = 512
	maxIntro    = 512
	maxAnnounce = 2000
	maxJoinMsg  = 200
	maxInvite   = 5000 // users per create/invite call
	maxMute     = 30 * 24 * 3600
)

type CreateReq struct {
	ClientID       string  `json:"client_id,omitempty"` // a retry with the same id returns the same group
	Name           string  `json:"name"`
	Avatar         string  `json:"avatar,omitempty"`
	Intro          string  `json:"intro,omitempty"`
	Members        []int64 `json:"members,omitempty"`
	JoinPolicy     string  `json:"join_policy,omitempty"` // default approval
	HistoryVisible bool    `json:"history_visible,omitempty"`
}

func (r *CreateReq) Validate() error {
	if r.ClientID != "" {
		if err := validate.Token("client_id", r.ClientID); err != nil {
			return err
		}
	}
	if r.Name == "" {
		return errors.New("name required")
	}
	if r.JoinPolicy != "" && !policies[r.JoinPolicy] {
		return errors.New("join_policy: open, approval or invite")
	}
	if err := validate.Name("name", r.Name, maxName); err != nil {
		return err
	}
	if err := validate.Text("avatar", r.Avatar, maxAvatar); err != nil {
		return err
	}
	if err := validate.Text("intro", r.Intro, maxIntro); err != nil {
		return err
	}
	return validUsers("members", r.Members)
}

// Info is a group as members see it.
type Info struct {
	GroupID        int64  `json:"group_id"`
	ConvID         string `json:"conv_id"`
	Name           string `json:"name"`
	Avatar         string `json:"avatar"`
	Intro          string `json:"intro"`
	OwnerID        int64  `json:"owner_id"`
	JoinPolicy     string `json:"join_policy"`
	HistoryVisible bool   `json:"history_visible"`
	MuteAll        bool   `json:"mute_all"`
	MemberCount    int    `json:"member_count"`
	MaxMembers     int    `json:"max_members"`
	Dismissed      bool   `json:"dismissed"`
	CreatedAt      int64  `json:"created_at"`
	MyRole         string `json:"my_role,omitempty"` // empty when the caller is not a member
}

type GroupReq struct {
	GroupID int64 `json:"group_id"`
}

func (r *GroupReq) Validate() error { return validGroup(r.GroupID) }

type UpdateReq struct {
	GroupID        int64   `json:"group_id"`
	Name           *string `json:"name"`
	Avatar         *string `json:"avatar"`
	Intro          *string `json:"intro"`
	JoinPolicy     *string `json:"join_policy"`
	HistoryVisible *bool   `json:"history_visible"`
}

func (r *UpdateReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.Name == nil && r.Avatar == nil && r.Intro == nil && r.JoinPolicy == nil && r.HistoryVisible == nil {
		return errors.New("nothing to update")
	}
	if r.Name != nil && *r.Name == "" {
		return errors.New("name must not be empty")
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"name", r.Name, maxName}, {"avatar", r.Avatar, maxAvatar}, {"intro", r.Intro, maxIntro}} {
		if f.v != nil {
			check := validate.Text
			if f.name == "name" {
				check = validate.Name
			}
			if err := check(f.name, *f.v, f.max); err != nil {
				return err
			}
		}
	}
	if r.JoinPolicy != nil && !policies[*r.JoinPolicy] {
		return errors.New("join_policy: open, approval or invite")
	}
	return nil
}

// ListReq pages group.list by group id: After (exclusive), up to Limit
// (default 100, at most 500); HasMore says to ask again from the last group id.
type ListReq struct {
	After int64 `json:"after,omitempty"`
	Limit int   `json:"limit,omitempty"`
}

func (r *ListReq) Validate() error {
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit must not be negative")
	}
	return nil
}

type ListResp struct {
	Groups  []Info `json:"groups"`
	HasMore bool   `json:"has_more"`
}

type UsersReq struct {
	GroupID int64   `json:"group_id"`
	UserIDs []int64 `json:"user_ids"`
}

func (r *UsersReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if len(r.UserIDs) == 0 {
		return errors.New("user_ids required")
	}
	return validUsers("user_ids", r.UserIDs)
}

// InviteResp says who was added; users already in the group are skipped.
type InviteResp struct {
	Added []int64 `json:"added"`
}

type MemberReq struct {
	GroupID int64 `json:"group_id"`
	UserID  int64 `json:"user_id"`
}

func (r *MemberReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	return nil
}

type MembersReq struct {
	GroupID int64 `json:"group_id"`
	After   int64 `json:"after,omitempty"` // user id cursor
	Limit   int   `json:"limit,omitempty"`
}

func (r *MembersReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit must not be negative")
	}
	return nil
}

type Member struct {
	UserID     int64  `json:"user_id"`
	Nickname   string `json:"nickname"`
	Avatar     string `json:"avatar"`
	Role       string `json:"role"`
	MutedUntil int64  `json:"muted_until,omitempty"`
	JoinedAt   int64  `json:"joined_at"`
}

type MembersResp struct {
	Members []Member `json:"members"`
	HasMore bool     `json:"has_more"`
}

type RoleReq struct {
	GroupID int64  `json:"group_id"`
	UserID  int64  `json:"user_id"`
	Role    string `json:"role"` // admin or member; ownership moves with group.transfer
}

func (r *RoleReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	if r.Role != "admin" && r.Role != "member" {
		return errors.New("role: admin or member (use group.transfer for owner)")
	}
	return nil
}

type MuteReq struct {
	GroupID int64 `json:"group_id"`
	UserID  int64 `json:"user_id"`
	Seconds int   `json:"seconds"` // 0 lifts the mute
}

func (r *MuteReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	if r.Seconds < 0 || r.Seconds > maxMute {
		return errors.New("seconds: 0 (unmute) to 30 days")
	}
	return nil
}

type MuteAllReq struct {
	GroupID int64 `json:"group_id"`
	Muted   bool  `json:"muted"`
}

func (r *MuteAllReq) Validate() error { return validGroup(r.GroupID) }

type JoinReq struct {
	GroupID int64  `json:"group_id"`
	Message string `json:"message,omitempty"`
}

func (r *JoinReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	return validate.Text("message", r.Message, maxJoinMsg)
}

type JoinResp struct {
	Status    string `json:"status"` // joined or pending
	RequestID int64  `json:"request_id,omitempty"`
}

type JoinRequestsResp struct {
	Requests []wire.JoinRequest `json:"requests"` // also pushed to admins as group.join.requested
}

type RespondReq struct {
	GroupID   int64 `json:"group_id"`
	RequestID int64 `json:"request_id"`
	Accept    bool  `json:"accept"`
}

func (r *RespondReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.RequestID <= 0 {
		return errors.New("request_id required")
	}
	return nil
}

type RespondResp struct {
	Status string `json:"status"` // accepted or rejected
}

type AnnounceReq struct {
	GroupID  int64  `json:"group_id"`
	ClientID string `json:"client_id"`
	Text     string `json:"text"`
}

func (r *AnnounceReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if err := validate.Token("client_id", r.ClientID); err != nil {
		return err
	}
	if r.Text == "" {
		return errors.New("text required")
	}
	return validate.Text("text", r.Text, maxAnnounce)
}

type Announcement struct {
	ID        int64  `json:"id"`
	AuthorID  int64  `json:"author_id"`
	Text      string `json:"text"`
	CreatedAt int64  `json:"created_at"`
}

type AnnouncementsReq struct {
	GroupID int64 `json:"group_id"`
	Before  int64 `json:"before,omitempty"`
	Limit   int   `json:"limit,omitempty"`
}

func (r *AnnouncementsReq) Validate() error {
	if err := validGroup(r.GroupID); err != nil {
		return err
	}
	if r.Before < 0 || r.Limit < 0 {
		return errors.New("before and limit must not be negative")
	}
	return nil
}

type AnnouncementsResp struct {
	Announcements []Announcement `json:"announcements"`
	HasMore       bool           `json:"has_more"`
}

type Empty struct{}

func validGroup(id int64) error {
	if id <= 0 {
		return errors.New("group_id required")
	}
	return nil
}

func validUsers(field string, ids []int64) error {
	if len(ids) > maxInvite {
		return errors.New(field + ": at most 5000 users per call")
	}
	for _, id := range ids {
		if id <= 0 {
			return errors.New(field + ": invalid user id")
		}
	}
	return nil
}
