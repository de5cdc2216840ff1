package push

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// RegisterReq registers the calling device's provider token.
type RegisterReq struct {
	Platform string `json:"platform"`
	Token    string `json:"token"`
	Locale   string `json:"locale,omitempty"`
}

// maxToken bounds a provider token (APNs: 64 hex characters; FCM: about 160).
const maxToken = 512

func (r *RegisterReq) Validate() error {
	if !slices.Contains(platforms, r.Platform) {
		return fmt.Errorf("platform: one of %s", platformList())
	}
	if r.Token == "" || len(r.Token) > maxToken {
		return fmt.Errorf("token: 1 to %d characters", maxToken)
	}
	for i := 0; i < len(r.Token); i++ {
		if c := r.Token[i]; c <= ' ' || c > '~' {
			return errors.New("token: printable ASCII without spaces")
		}
	}
	if len(r.Locale) > 35 {
		return errors.New("locale: at most 35 characters")
	}
	for _, c := range r.Locale {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errors.New("locale: a language tag such as en-US")
		}
	}
	return nil
}

// Empty is a request or reply without fields.
type Empty struct{}

// Settings are the caller's push settings.
type Settings struct {
	// HideContent: pushes carry neither the sender nor the text, only "New
	// message" (or "3 new messages").
	HideContent bool `json:"hide_content"`
}

// SettingsSetReq changes the settings given.
type SettingsSetReq struct {
	HideContent *bool `json:"hide_content"`
}

func (r *SettingsSetReq) Validate() error {
	if r.HideContent == nil {
		return errors.New("nothing to set: give hide_content")
	}
	return nil
}

func device(c endpoint.Caller) error {
	if c.DeviceID == "" || c.SessionID == "" {
		return imerr.New(imerr.Unauthorized, "no device session")
	}
	return nil
}

// register stores the device's token, replacing the one it had, and takes the
// token from any other device that had it (a reinstall, another account on the
// same phone); a user keeps the MaxDevices most recently registered.
func (s *Service) register(ctx context.Context, c endpoint.Caller, r RegisterReq) (Empty, error) {
	if err := device(c); err != nil {
		return Empty{}, err
	}
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM push_tokens WHERE platform = ? AND token = ? AND NOT (user_id = ? AND device_id = ?)",
			r.Platform, r.Token, c.UserID, c.DeviceID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO push_tokens (user_id, device_id, session_id, platform, token, locale) VALUES (?, ?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE session_id = VALUES(session_id), platform = VALUES(platform), token = VALUES(token), locale = VALUES(locale),
				updated_at = CURRENT_TIMESTAMP(3)`,
			c.UserID, c.DeviceID, c.SessionID, r.Platform, r.Token, r.Locale)
		if err != nil {
			return err
		}
		// At most MaxDevices tokens per user: the oldest registrations go.
		_, err = tx.ExecContext(ctx, `DELETE FROM push_tokens WHERE user_id = ? AND device_id NOT IN
			(SELECT device_id FROM (SELECT device_id FROM push_tokens WHERE user_id = ? ORDER BY updated_at DESC, device_id LIMIT ?) newest)`,
			c.UserID, c.UserID, s.cfg.MaxDevices)
		return err
	})
	if err != nil {
		return Empty{}, fmt.Errorf("register push token: %w", err)
	}
	return Empty{}, nil
}

// unregister removes the calling device's token; idempotent.
func (s *Service) unregister(ctx context.Context, c endpoint.Caller, _ Empty) (Empty, error) {
	if err := device(c); err != nil {
		return Empty{}, err
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM push_tokens WHERE user_id = ? AND device_id = ?", c.UserID, c.DeviceID); err != nil {
		return Empty{}, fmt.Errorf("unregister push token: %w", err)
	}
	return Empty{}, nil
}

func (s *Service) settingsGet(ctx context.Context, c endpoint.Caller, _ Empty) (Settings, error) {
	var out Settings
	err := s.db.QueryRowContext(ctx, "SELECT hide_content FROM push_settings WHERE user_id = ?", c.UserID).Scan(&out.HideContent)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Settings{}, fmt.Errorf("load push settings: %w", err)
	}
	return out, nil
}

func (s *Service) settingsSet(ctx context.Context, c endpoint.Caller, r SettingsSetReq) (Settings, error) {
	if _, err := s.db.ExecContext(ctx, "INSERT INTO push_settings (user_id, hide_content) VALUES (?, ?) ON DUPLICATE KEY UPDATE hide_content = VALUES(hide_content)",
		c.UserID, *r.HideContent); err != nil {
		return Settings{}, fmt.Errorf("save push settings: %w", err)
	}
	return Settings{HideContent: *r.HideContent}, nil
}

// removeToken forgets a token its provider called no longer valid.
func (s *Service) removeToken(ctx context.Context, n Notification) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM push_tokens WHERE platform = ? AND token = ?", n.Platform, n.Token); err != nil {
		return fmt.Errorf("remove push token: %w", err)
	}
	return nil
}

// removeSession forgets the tokens a session registered (its end: logout, a new
// login on the device, a stolen refresh token).
func (s *Service) removeSession(ctx context.Context, user int64, session string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM push_tokens WHERE user_id = ? AND session_id = ?", user, session); err != nil {
		return fmt.Errorf("remove session's push tokens: %w", err)
	}
	return nil
}
