package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"natter/shared/config"
	"natter/shared/op"
)

func TestVerify(t *testing.T) {
	s, err := NewSigner(config.Auth{Secret: "0123456789abcdef0123", AccessTTL: time.Minute, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(config.Auth{Secret: "another-secret-0123456", AccessTTL: time.Minute, Dev: true})
	now := time.Now()
	good, _, err := s.Issue(Claims{UserID: 42, SessionID: "s1", DeviceID: "d1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	expired, _, _ := s.Issue(Claims{UserID: 42, SessionID: "s1"}, now.Add(-2*time.Minute))
	forged, _, _ := other.Issue(Claims{UserID: 42, SessionID: "s1"}, now)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "42", "sid": "s1", "iss": "natter", "exp": now.Add(time.Hour).Unix()})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"good", good, true},
		{"expired", expired, false},
		{"forged", forged, false},
		{"alg none", noneTok, false},
		{"garbage", "abc.def.ghi", false},
		{"empty", "", false},
		{"tampered", good[:len(good)-2] + strings.Repeat("A", 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.Verify(tt.token)
			if tt.ok {
				if err != nil || c.UserID != 42 || c.SessionID != "s1" || c.DeviceID != "d1" {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRefresh(t *testing.T) {
	tok, hash := NewRefresh("sess")
	sid, h, err := ParseRefresh(tok)
	if err != nil || sid != "sess" || !HashEqual(h, hash) {
		t.Fatalf("ParseRefresh = %q %v", sid, err)
	}
	if _, h2, _ := ParseRefresh("sess.wrong"); HashEqual(h2, hash) {
		t.Fatal("wrong secret matched")
	}
	if _, _, err := ParseRefresh("nodot"); err == nil {
		t.Fatal("accepted token without separator")
	}
}

// TestSecrets: outside development a published or short secret refuses to start.
func TestSecrets(t *testing.T) {
	long := strings.Repeat("k", 32)
	tests := []struct {
		name string
		c    config.Auth
		ok   bool
	}{
		{"dev default without AUTH_DEV", config.Defaults[config.Auth](), false},
		{"dev default with AUTH_DEV", config.Auth{Secret: config.Defaults[config.Auth]().Secret, Dev: true}, true},
		{"compose trial secret", config.Auth{Secret: "natter-compose-secret-change-me"}, false},
		{"short", config.Auth{Secret: strings.Repeat("k", 31)}, false},
		{"long enough", config.Auth{Secret: long}, true},
		{"short previous", config.Auth{Secret: long, PreviousSecret: "short"}, false},
		{"too short even for dev", config.Auth{Secret: "short", Dev: true}, false},
	}
	for _, tt := range tests {
		if _, err := NewSigner(tt.c); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestRotation: tokens of the previous secret verify while it is configured;
// new tokens use the new one; a token of a secret no longer configured fails.
func TestRotation(t *testing.T) {
	a, b, c := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	now := time.Now()
	old, _ := NewSigner(config.Auth{Secret: a, AccessTTL: time.Minute})
	oldTok, _, _ := old.Issue(Claims{UserID: 1, SessionID: "s"}, now)
	rotated, err := NewSigner(config.Auth{Secret: b, PreviousSecret: a, AccessTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(oldTok); err != nil {
		t.Fatalf("old token during rotation: %v", err)
	}
	newTok, _, _ := rotated.Issue(Claims{UserID: 1, SessionID: "s"}, now)
	if _, err := old.Verify(newTok); err == nil {
		t.Fatal("a new token verified with the old secret alone")
	}
	later, _ := NewSigner(config.Auth{Secret: c, PreviousSecret: b, AccessTTL: time.Minute})
	if _, err := later.Verify(oldTok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a token of a retired secret: %v", err)
	}
	if _, err := later.Verify(newTok); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorTokensApart: a chat token never verifies as an operator token nor
// the reverse, even under the same secret (issuer and audience differ); a chat
// token never carries an operator role, whatever the caller asked for.
func TestOperatorTokensApart(t *testing.T) {
	chatCfg := config.Auth{Secret: "chat-secret-0123456789", AccessTTL: time.Minute, Dev: true}
	chat, err := NewSigner(chatCfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewOperatorSigner(config.AdminAuth{Secret: chatCfg.Secret, AccessTTL: time.Minute, Dev: true}, chatCfg); err == nil {
		t.Fatal("operator signer accepted the chat secret")
	}
	opSigner, err := NewOperatorSigner(config.AdminAuth{Secret: "admin-secret-0123456789", AccessTTL: time.Minute, Dev: true}, chatCfg)
	if err != nil {
		t.Fatal(err)
	}
	// Same key, other issuer: still apart.
	sameKey, err := NewOperatorSigner(config.AdminAuth{Secret: "chat-secret-0123456789", AccessTTL: time.Minute, Dev: true},
		config.Auth{Secret: "another-chat-secret-012345"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, role := range []string{"", "user", "superadmin", "operator", "auditor"} {
		tok, _, err := chat.Issue(Claims{UserID: 7, SessionID: "s", Role: role}, now)
		if err != nil {
			t.Fatal(err)
		}
		c, err := chat.Verify(tok)
		if err != nil || op.AdminRank(c.Role) != 0 {
			t.Fatalf("chat token asked role %q: %+v %v", role, c, err)
		}
		for _, s := range []*Signer{opSigner, sameKey} {
			if _, err := s.Verify(tok); err == nil {
				t.Fatalf("chat token (role %q) verified as an operator token", role)
			}
		}
	}
	if _, _, err := opSigner.Issue(Claims{UserID: 1, SessionID: "s", Role: "user"}, now); err == nil {
		t.Fatal("operator token without an operator role")
	}
	for _, s := range []*Signer{opSigner, sameKey} {
		tok, _, err := s.Issue(Claims{UserID: 1, SessionID: "s", Role: op.RoleSuperadmin}, now)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.Verify(tok); err != nil || c.Role != op.RoleSuperadmin {
			t.Fatalf("operator token: %+v %v", c, err)
		}
		if _, err := chat.Verify(tok); err == nil {
			t.Fatal("operator token verified as a chat token")
		}
	}
}
