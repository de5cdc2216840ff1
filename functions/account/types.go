package account

import (
	"errors"
	"natter/shared/validate"
	"regexp"
	"time"
	"unicode/utf8"
)

var (
	usernameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)
	platforms  = map[string]bool{"": true, "ios": true, "android": true, "web": true, "desktop": true, "mac": true, "windows": true, "linux": true}
)

const (
	minPassword = 8
	maxPassword = 128
	maxNickname = 64
	maxAvatar   = 512
	maxBio      = 512
)

type RegisterReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Nickname string `json:"nickname"`
}

func (r *RegisterReq) Validate() error {
	if !usernameRe.MatchString(r.Username) {
		return errors.New("username: 3-32 letters, digits, '_', '.' or '-'")
	}
	if err := validPassword(r.Password); err != nil {
		return err
	}
	return validate.Text("nickname", r.Nickname, maxNickname)
}

type RegisterResp struct {
	UserID int64 `json:"user_id"`
}

type LoginReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
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
			if err := validate.Text(f.name, *f.v, f.max); err != nil {
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
	Online      bool   `json:"online"`
	Current     bool   `json:"current"`
	LoggedInAt  int64  `json:"logged_in_at"`
	RefreshedAt int64  `json:"refreshed_at"`
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
