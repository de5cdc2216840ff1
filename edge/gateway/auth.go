package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"natter/shared/auth"
	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// opCheck is the internal op that tells whether a session is live.
const opCheck = "session.check"

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

// sessionCache remembers the sessions that session.check found live, until a TTL,
// so that HTTP calls get the checks a WebSocket gets when it connects (the
// session exists, is neither revoked nor expired, its user is not banned) for one
// round trip per session per TTL. Revocations the edge hears of apply at once
// (authenticate checks them first); a ban applies within the TTL.
type sessionCache struct {
	ttl  time.Duration
	mu   sync.Mutex
	live map[string]time.Time // session id -> trusted until
}

// maxCachedSessions bounds the cache; past it, it starts over.
const maxCachedSessions = 100_000

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, live: map[string]time.Time{}}
}

func (s *sessionCache) fresh(sid string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.live[sid])
}

func (s *sessionCache) remember(sid string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) >= maxCachedSessions {
		clear(s.live)
	}
	s.live[sid] = now.Add(s.ttl)
}

// checkSession asks session.check about c's session unless it was found live
// within the TTL; the answer's error is the client's.
func (g *Gateway) checkSession(ctx context.Context, c endpoint.Caller) *imerr.Error {
	now := time.Now()
	if g.sessions.fresh(c.SessionID, now) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	_, err := endpoint.Request(ctx, g.nc, opCheck, c, nil)
	g.m.observe("http", opCheck, err, time.Since(start))
	if err != nil {
		return clientError(err)
	}
	g.sessions.remember(c.SessionID, now)
	return nil
}
