// Package auth issues and checks access tokens (HS256 JWTs) and the opaque refresh
// tokens that renew them. The edge checks access tokens without a round trip; the
// account domain owns sessions, refresh and revocation.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"natter/shared/config"
	"natter/shared/ids"
	"natter/shared/op"
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

// Signer signs access tokens with the current secret and verifies them with it or
// the previous one (rotation). A token names its key by id ("kid": a hash of the
// secret, never the secret), so two keys cost no second try.
type Signer struct {
	issuer string // "natter" for chat tokens, "natter-admin" for operator tokens
	kid    string
	keys   map[string][]byte // kid -> secret
	ttl    time.Duration
}

// knownSecrets are published in this repository (development, compose trial):
// anyone can forge tokens with them.
var knownSecrets = []string{config.Defaults[config.Auth]().Secret, "natter-compose-secret-change-me",
	config.Defaults[config.AdminAuth]().Secret, "natter-compose-admin-secret-change-me"}

// Token issuers: a chat token and an operator token differ in issuer and
// audience (and, configured as they must be, in key), so that neither verifies
// as the other.
const (
	IssuerChat     = "natter"
	IssuerOperator = "natter-admin"
)

// minSecret is the shortest secret accepted outside development.
const minSecret = 32

// NewSigner returns a Signer. Outside development (c.Dev) it refuses a published
// secret and secrets shorter than 32 bytes; in development, secrets under 16 bytes.
func NewSigner(c config.Auth) (*Signer, error) {
	return newSigner(IssuerChat, "AUTH_", c)
}

// NewOperatorSigner returns the Signer of operator (back-office) tokens: issuer
// and audience "natter-admin", keys from ADMIN_AUTH_*, which must differ from the
// chat tokens' AUTH_SECRET. A chat Signer refuses its tokens and it refuses chat
// tokens.
func NewOperatorSigner(c config.AdminAuth, chat config.Auth) (*Signer, error) {
	if c.Secret == chat.Secret || (chat.PreviousSecret != "" && c.Secret == chat.PreviousSecret) {
		return nil, errors.New("auth: ADMIN_AUTH_SECRET must differ from AUTH_SECRET and AUTH_PREVIOUS_SECRET")
	}
	return newSigner(IssuerOperator, "ADMIN_AUTH_", config.Auth{Secret: c.Secret, PreviousSecret: c.PreviousSecret, Dev: c.Dev, AccessTTL: c.AccessTTL})
}

func newSigner(issuer, prefix string, c config.Auth) (*Signer, error) {
	s := &Signer{issuer: issuer, keys: map[string][]byte{}, ttl: c.AccessTTL}
	for i, secret := range []string{c.Secret, c.PreviousSecret} {
		name := prefix + []string{"SECRET", "PREVIOUS_SECRET"}[i]
		if secret == "" && i == 1 {
			continue
		}
		if err := checkSecret(name, prefix+"DEV", secret, c.Dev); err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(secret))
		kid := hex.EncodeToString(sum[:6])
		if i == 0 {
			s.kid = kid
		}
		s.keys[kid] = []byte(secret)
	}
	return s, nil
}

func checkSecret(name, devVar, secret string, dev bool) error {
	if dev {
		if len(secret) < 16 {
			return fmt.Errorf("auth: %s must be at least 16 bytes", name)
		}
		return nil
	}
	if slices.Contains(knownSecrets, secret) {
		return fmt.Errorf("auth: %s is a published development secret: set %d or more random bytes (or %s=true for development)", name, minSecret, devVar)
	}
	if len(secret) < minSecret {
		return fmt.Errorf("auth: %s must be at least %d bytes outside development (%s=true)", name, minSecret, devVar)
	}
	return nil
}

type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	DeviceID  string `json:"did"`
	Role      string `json:"role,omitempty"`
}

// Issue returns a signed access token for c (ExpiresAt is set from the TTL) and its expiry.
//
// A chat token never carries an operator role, whatever the users.role column
// says: the adapter would take its bearer for an operator (and refuse it every
// chat op). An operator token always carries one.
func (s *Signer) Issue(c Claims, now time.Time) (string, time.Time, error) {
	switch {
	case s.issuer == IssuerChat && op.AdminRank(c.Role) > 0:
		c.Role = ""
	case s.issuer == IssuerOperator && op.AdminRank(c.Role) == 0:
		return "", time.Time{}, fmt.Errorf("sign token: %q is not an operator role", c.Role)
	}
	exp := now.Add(s.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(c.UserID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			Issuer:    s.issuer,
			Audience:  jwt.ClaimStrings{s.issuer},
		},
		SessionID: c.SessionID,
		DeviceID:  c.DeviceID,
		Role:      c.Role,
	})
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.keys[s.kid])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks an access token's signature, algorithm and expiry.
func (s *Signer) Verify(token string) (Claims, error) {
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return s.keys[s.kid], nil // signed before keys had ids
		}
		if key, ok := s.keys[kid]; ok {
			return key, nil
		}
		return nil, errors.New("unknown key")
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.issuer),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// Chat tokens signed before they named an audience have none; an operator
	// token must name its own.
	if s.issuer == IssuerOperator && !slices.Contains(jc.Audience, IssuerOperator) {
		return Claims{}, fmt.Errorf("%w: not an operator token", ErrInvalid)
	}
	if len(jc.Audience) > 0 && !slices.Contains(jc.Audience, s.issuer) {
		return Claims{}, fmt.Errorf("%w: token for another audience", ErrInvalid)
	}
	if (s.issuer == IssuerChat) != (op.AdminRank(jc.Role) == 0) {
		return Claims{}, fmt.Errorf("%w: role %q in a %s token", ErrInvalid, jc.Role, s.issuer)
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
