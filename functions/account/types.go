package account

import (
	"errors"
	"time"
	"unicode/utf8"

	"natter/shared/username"
	"natter/shared/validate"
)

var (
	platforms = map[string]bool{"": true, "ios": true, "android": true, "web": true, "desktop": true, "mac": true, "windows": true, "linux": true}
)

const (
	minPassword = 8
	maxPassword = 128
	maxNickname = 64
	maxAvatar   = 512
	maxBio      = 512
)

// RegisterReq is account.register. ClientID makes a retry safe: a register
// retried with the same client_id gets the first answer; without it, a taken
// username is a conflict whatever the password.
type RegisterReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Nickname string `json:"nickname"`
	ClientID string `json:"client_id,omitempty"`
}

func (r *RegisterReq) Validate() error {
	if _, err := username.Canonical(r.Username); err != nil {
		return err
	}
	if err := validPassword(r.Password); err != nil {
		return err
	}
	if r.ClientID != "" {
		if err := validate.Token("client_id", r.ClientID); err != nil {
			return err
		}
	}
	return validate.Name("nickname", r.Nickname, maxNickname)
}

type RegisterResp struct {
	UserID int64 `json:"user_id"`
}

type LoginReq struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	DeviceID   string `json:"device_id"`
	Platform   string `json:"platform"`
	AppVersion string `json:"app_version,omitempty"` // shown in account.devices
}

func (r *LoginReq) Validate() error {
	if r.Username == "" || len(r.Username) > 64 {
		return errors.New("username required")
	}
	if r.Password == "" || len(r.Password) > maxPassword {
		return errors.New("password required")
	}
	if err := validate.Token("device_id", r.DeviceID); err != nil {
		return err
	}
	if !platforms[r.Platform] {
		return errors.New("platform: one of ios, android, web, desktop, mac, windows, linux")
	}
	if r.AppVersion != "" {
		if err := validate.Token("app_version", r.AppVersion); err != nil {
			return err
		}
	}
	return nil
}

// Tokens answer login and refresh.
type Tokens struct {
	UserID       int64  `json:"user_id"`
	SessionID    string `json:"session_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"` // access token lifetime, seconds
}

type RefreshReq struct {
	RefreshToken string `json:"refresh_token"`
}

func (r *RefreshReq) Validate() error {
	if r.RefreshToken == "" {
		return errors.New("refresh_token required")
	}
	return nil
}

type Empty struct{}

type ProfileReq struct {
	UserID int64 `json:"user_id"`
}

func (r *ProfileReq) Validate() error {
	if r.UserID <= 0 {
		return errors.New("user_id required")
	}
	return nil
}

type Profile struct {
	UserID    int64  `json:"user_id"`
	Username  string `json:"username"`
	Nickname  string `json:"nickname"`
	Avatar    string `json:"avatar"`
	Bio       string `json:"bio"`
	CreatedAt int64  `json:"created_at"` // unix ms
}

// UpdateProfileReq changes the fields that are present (nil = unchanged).
type UpdateProfileReq struct {
	UserID   int64   `json:"user_id"` // optional; must be the caller when set
	Nickname *string `json:"nickname"`
	Avatar   *string `json:"avatar"`
	Bio      *string `json:"bio"`
}

func (r *UpdateProfileReq) Validate() error {
	if r.Nickname == nil && r.Avatar == nil && r.Bio == nil {
		return errors.New("nothing to update: give nickname, avatar or bio")
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"nickname", r.Nickname, maxNickname}, {"avatar", r.Avatar, maxAvatar}, {"bio", r.Bio, maxBio}} {
		if f.v != nil {
			check := validate.Text
			if f.name == "nickname" {
				check = validate.Name
			}
			if err := check(f.name, *f.v, f.max); err != nil {
				return err
			}
		}
	}
	return nil
}

type DevicesReq struct {
	UserID int64 `json:"user_id"` // optional; must be the caller when set
}

type Device struct {
	SessionID   string `json:"session_id"`
	DeviceID    string `json:"device_id"`
	Platform    string `json:"platform"`
	AppVersion  string `json:"app_version"`
	Online      bool   `json:"online"`
	Away        bool   `json:"away"`
	Current     bool   `json:"current"`
	LoggedInAt  int64  `json:"logged_in_at"`
	RefreshedAt int64  `json:"refreshed_at"`
	LastActive  int64  `json:"last_active"` // unix ms: the latest connect, disconnect or activity an edge reported; 0 if never connected
	LastIP      string `json:"last_ip"`     // the address of its latest connection
}

type DevicesResp struct {
	Devices []Device `json:"devices"`
}

func validPassword(p string) error {
	if n := utf8.RuneCountInString(p); n < minPassword || len(p) > maxPassword {
		return errors.New("password: 8-128 characters")
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }
