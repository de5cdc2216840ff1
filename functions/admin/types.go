package admin

import (
	"errors"
	"time"
	"unicode/utf8"

	"natter/shared/op"
	"natter/shared/validate"
)

// Limits of requests.
const (
	maxPassword = 128
	minPassword = 8
	maxReason   = 256
	maxQuery    = 64
	maxPage     = 200
)

// Empty is a request or reply with no fields.
type Empty struct{}

// LoginReq is admin.login.
type LoginReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

func (r *LoginReq) Validate() error {
	if r.Username == "" || len(r.Username) > 64 || r.Password == "" || len(r.Password) > maxPassword {
		return errors.New("username and password required")
	}
	if len(r.TOTP) > 16 {
		return errors.New("totp: 6 digits")
	}
	return nil
}

// Operator is an operator account as the back office shows it.
type Operator struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Role      string `json:"role"`
	TOTP      bool   `json:"totp"`
	Disabled  bool   `json:"disabled"`
	CreatedAt int64  `json:"created_at"`
	LastLogin int64  `json:"last_login,omitempty"`
}

// LoginResp is admin.login's answer: an operator token (no refresh: log in again).
type LoginResp struct {
	Token     string   `json:"token"`
	ExpiresIn int64    `json:"expires_in"`
	Operator  Operator `json:"operator"`
}

// TOTPSetup is admin.totp.setup's answer: the secret to enter in an
// authenticator app (or the URI to scan); admin.totp.enable confirms it.
type TOTPSetup struct {
	Secret string `json:"secret"`
	URI    string `json:"uri"`
}

// TOTPEnableReq is admin.totp.enable: a code from the new secret.
type TOTPEnableReq struct {
	Code string `json:"code"`
}

func (r *TOTPEnableReq) Validate() error {
	if len(r.Code) != totpDigits {
		return errors.New("code: 6 digits")
	}
	return nil
}

// OperatorsReq is admin.operators.list.
type OperatorsReq struct {
	After int64 `json:"after"`
	Limit int   `json:"limit"`
}

// OperatorsResp is a page of operators.
type OperatorsResp struct {
	Operators []Operator `json:"operators"`
	HasMore   bool       `json:"has_more"`
}

// CreateOperatorReq is admin.operators.create.
type CreateOperatorReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (r *CreateOperatorReq) Validate() error {
	if op.AdminRank(r.Role) == 0 {
		return errors.New("role: superadmin, operator or auditor")
	}
	return validPassword(r.Password)
}

// UpdateOperatorReq is admin.operators.update: the fields present change, and
// the operator's sessions end.
type UpdateOperatorReq struct {
	OperatorID int64   `json:"operator_id"`
	Role       *string `json:"role,omitempty"`
	Disabled   *bool   `json:"disabled,omitempty"`
	Password   *string `json:"password,omitempty"`
	ResetTOTP  bool    `json:"reset_totp,omitempty"`
}

func (r *UpdateOperatorReq) Validate() error {
	if r.OperatorID <= 0 {
		return errors.New("operator_id required")
	}
	if r.Role != nil && op.AdminRank(*r.Role) == 0 {
		return errors.New("role: superadmin, operator or auditor")
	}
	if r.Password != nil {
		return validPassword(*r.Password)
	}
	return nil
}

func validPassword(p string) error {
	if n := utf8.RuneCountInString(p); n < minPassword || len(p) > maxPassword {
		return errors.New("password: 8-128 characters")
	}
	return nil
}

// AuditReq is admin.audit.list: the newest entries first, filtered by any of
// actor, target, action and time; before pages on (the last id seen).
type AuditReq struct {
	ActorKind  string `json:"actor_kind,omitempty"`
	ActorID    int64  `json:"actor_id,omitempty"`
	TargetKind string `json:"target_kind,omitempty"`
	TargetID   string `json:"target_id,omitempty"`
	Action     string `json:"action,omitempty"`
	Since      int64  `json:"since,omitempty"` // unix ms, inclusive
	Until      int64  `json:"until,omitempty"` // unix ms, exclusive
	Before     int64  `json:"before,omitempty"`
	Limit      int    `json:"limit,omitempty"`
}

func (r *AuditReq) Validate() error {
	for _, f := range []struct{ name, v string }{{"actor_kind", r.ActorKind}, {"target_kind", r.TargetKind}, {"target_id", r.TargetID}, {"action", r.Action}} {
		if len(f.v) > 64 {
			return errors.New(f.name + ": at most 64 bytes")
		}
	}
	if r.ActorID < 0 || r.Before < 0 || r.Since < 0 || r.Until < 0 || r.Limit < 0 {
		return errors.New("negative number")
	}
	return nil
}

// AuditResp is a page of the audit log, newest first.
type AuditResp struct {
	Entries []Entry `json:"entries"`
	HasMore bool    `json:"has_more"`
}

// UsersReq is admin.users.list: users whose username starts with query (or
// whose id is query), by id; banned only lists banned users.
type UsersReq struct {
	Query  string `json:"query,omitempty"`
	Banned bool   `json:"banned,omitempty"`
	After  int64  `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

func (r *UsersReq) Validate() error { return validate.Text("query", r.Query, maxQuery) }

// User is a chat user as the back office lists it.
type User struct {
	ID          int64  `json:"id"`
	Username    string `json:"username"`
	Nickname    string `json:"nickname"`
	CreatedAt   int64  `json:"created_at"`
	LastActive  int64  `json:"last_active,omitempty"`
	Banned      bool   `json:"banned"`
	BannedUntil int64  `json:"banned_until,omitempty"`
	BanReason   string `json:"ban_reason,omitempty"`
	Deleted     bool   `json:"deleted,omitempty"`
}

// UsersResp is a page of users.
type UsersResp struct {
	Users   []User `json:"users"`
	HasMore bool   `json:"has_more"`
}

// UserReq names a user.
type UserReq struct {
	UserID int64 `json:"user_id"`
}

func (r *UserReq) Validate() error { return validID("user_id", r.UserID) }

func validID(name string, id int64) error {
	if id <= 0 {
		return errors.New(name + " required")
	}
	return nil
}

// Device is one live session of a user.
type Device struct {
	SessionID  string `json:"session_id"`
	DeviceID   string `json:"device_id"`
	Platform   string `json:"platform"`
	LoggedInAt int64  `json:"logged_in_at"`
	LastActive int64  `json:"last_active,omitempty"`
	LastIP     string `json:"last_ip,omitempty"`
	Online     bool   `json:"online"`
}

// GroupRef is a group a user belongs to.
type GroupRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// UserDetail is admin.users.get's answer.
type UserDetail struct {
	User    User       `json:"user"`
	Devices []Device   `json:"devices"`
	Groups  []GroupRef `json:"groups"` // the first maxPage
	Counts  Counts     `json:"counts"`
}

// Counts are a user's totals.
type Counts struct {
	Friends  int `json:"friends"`
	Groups   int `json:"groups"`
	Sessions int `json:"sessions"`
	Blocks   int `json:"blocks"`
}

// BanReq is admin.users.ban: a reason, and an end (unix ms) or none (for good).
type BanReq struct {
	UserID int64  `json:"user_id"`
	Reason string `json:"reason"`
	Until  int64  `json:"until,omitempty"`
}

func (r *BanReq) Validate() error {
	if err := validID("user_id", r.UserID); err != nil {
		return err
	}
	if r.Reason == "" {
		return errors.New("reason required")
	}
	if r.Until < 0 {
		return errors.New("until: unix ms in the future, or absent")
	}
	return validate.Text("reason", r.Reason, maxReason)
}

// Ended says how many sessions an action ended.
type Ended struct {
	Sessions int `json:"sessions"`
}

// ResetPasswordReq is admin.users.password.reset.
type ResetPasswordReq struct {
	UserID   int64  `json:"user_id"`
	Password string `json:"password"`
}

func (r *ResetPasswordReq) Validate() error {
	if err := validID("user_id", r.UserID); err != nil {
		return err
	}
	return validPassword(r.Password)
}

// GroupsReq is admin.groups.list: groups whose name contains query (or whose id
// is query), by id.
type GroupsReq struct {
	Query string `json:"query,omitempty"`
	After int64  `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

func (r *GroupsReq) Validate() error { return validate.Text("query", r.Query, maxQuery) }

// Group is a group as the back office lists it.
type Group struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Owner       int64  `json:"owner"`
	MemberCount int    `json:"member_count"`
	MuteAll     bool   `json:"mute_all"`
	Dismissed   bool   `json:"dismissed"`
	CreatedAt   int64  `json:"created_at"`
}

// GroupsResp is a page of groups.
type GroupsResp struct {
	Groups  []Group `json:"groups"`
	HasMore bool    `json:"has_more"`
}

// GroupReq is admin.groups.get (with a page of members after user id after) and
// admin.groups.dismiss.
type GroupReq struct {
	GroupID int64 `json:"group_id"`
	After   int64 `json:"after,omitempty"`
	Limit   int   `json:"limit,omitempty"`
}

func (r *GroupReq) Validate() error { return validID("group_id", r.GroupID) }

// Member is one member of a group.
type Member struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Role     string `json:"role"`
	JoinedAt int64  `json:"joined_at"`
}

// GroupDetail is admin.groups.get's answer.
type GroupDetail struct {
	Group   Group    `json:"group"`
	Members []Member `json:"members"`
	HasMore bool     `json:"has_more"`
}

// GroupMuteReq is admin.groups.mute.
type GroupMuteReq struct {
	GroupID int64 `json:"group_id"`
	Muted   bool  `json:"muted"`
}

func (r *GroupMuteReq) Validate() error { return validID("group_id", r.GroupID) }

// GroupTransferReq is admin.groups.transfer.
type GroupTransferReq struct {
	GroupID int64 `json:"group_id"`
	UserID  int64 `json:"user_id"`
}

func (r *GroupTransferReq) Validate() error {
	if err := validID("group_id", r.GroupID); err != nil {
		return err
	}
	return validID("user_id", r.UserID)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
