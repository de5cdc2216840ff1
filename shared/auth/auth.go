// Package auth issues and checks access tokens (HS256 JWTs) and the opaque refresh
// tokens that renew them. The edge checks access tokens without a round trip; the
// account domain owns sessions, refresh and revocation.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"natter/shared/config"
	"natter/shared/ids"
)

// Claims are what an access token says about its bearer.
type Claims struct {
	UserID    int64
	SessionID string
	DeviceID  string
	Role      string
	ExpiresAt time.Time
}

// ErrInvalid is returned for a token that is malformed, forged or expired.
var ErrInvalid = errors.New("invalid token")

// Signer signs and verifies access tokens with one shared secret.
type Signer struct {
	key []byte
	ttl time.Duration
}

// NewSigner returns a Signer; the secret must be at least 16 bytes.
func NewSigner(c config.Auth) (*Signer, error) {
	if len(c.Secret) < 16 {
		return nil, errors.New("auth: AUTH_SECRET must be at least 16 bytes")
	}
	return &Signer{key: []byte(c.Secret), ttl: c.AccessTTL}, nil
}

type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	DeviceID  string `json:"did"`
	Role      string `json:"role,omitempty"`
}

// Issue returns a signed access token for c (ExpiresAt is set from the TTL) and its expiry.
func (s *Signer) Issue(c Claims, now time.Time) (string, time.Time, error) {
	exp := now.Add(s.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(c.UserID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			Issuer:    "natter",
		},
		SessionID: c.SessionID,
		DeviceID:  c.DeviceID,
		Role:      c.Role,
	})
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks an access token's signature, algorithm and expiry.
func (s *Signer) Verify(token string) (Claims, error) {
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer("natter"),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	uid, err := strconv.ParseInt(jc.Subject, 10, 64)
	if err != nil || uid <= 0 || jc.SessionID == "" {
		return Claims{}, fmt.Errorf("%w: bad subject", ErrInvalid)
	}
	return Claims{UserID: uid, SessionID: jc.SessionID, DeviceID: jc.DeviceID, Role: jc.Role, ExpiresAt: jc.ExpiresAt.Time}, nil
}

// NewRefresh returns a refresh token for session sid and the hash to store; the token
// is "<sid>.<secret>" so a lookup needs no scan.
func NewRefresh(sid string) (token string, hash []byte) {
	secret := ids.Token(32)
	h := sha256.Sum256([]byte(secret))
	return sid + "." + secret, h[:]
}

// ParseRefresh splits a refresh token into its session id and the secret's hash.
func ParseRefresh(token string) (sid string, hash []byte, err error) {
	sid, secret, ok := strings.Cut(token, ".")
	if !ok || sid == "" || secret == "" || len(token) > 256 {
		return "", nil, ErrInvalid
	}
	h := sha256.Sum256([]byte(secret))
	return sid, h[:], nil
}

// HashEqual compares two hashes in constant time.
func HashEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
