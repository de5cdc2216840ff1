package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"natter/shared/config"
)

func TestVerify(t *testing.T) {
	s, err := NewSigner(config.Auth{Secret: "0123456789abcdef0123", AccessTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(config.Auth{Secret: "another-secret-0123456", AccessTTL: time.Minute})
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
