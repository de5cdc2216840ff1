package gateway

import (
	"net/http"
	"strings"
	"time"

	"natter/shared/auth"
	"natter/shared/imerr"
)

// authenticate checks an access token: signature, expiry, and that its session
// was not revoked.
func (g *Gateway) authenticate(token string) (auth.Claims, *imerr.Error) {
	if token == "" {
		return auth.Claims{}, imerr.New(imerr.Unauthorized, "missing access token")
	}
	claims, err := g.signer.Verify(token)
	if err != nil {
		return auth.Claims{}, imerr.Wrap(imerr.Unauthorized, err, "invalid or expired access token")
	}
	if g.rev.revoked(claims.SessionID, time.Now()) {
		return auth.Claims{}, imerr.New(imerr.Unauthorized, "session revoked: log in again")
	}
	return claims, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}
