package gateway

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter is a token bucket per key (a user, or the client address of
// unauthenticated calls). Buckets idle for a while are dropped, so the map holds
// only recent callers.
type keyedLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	used time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	if perSecond <= 0 {
		return nil // off
	}
	return &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

// allow takes a token from key's bucket. A nil limiter allows everything.
func (k *keyedLimiter) allow(key string, now time.Time) bool {
	if k == nil {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > time.Minute {
		for key, b := range k.buckets {
			if now.Sub(b.used) > time.Minute {
				delete(k.buckets, key)
			}
		}
		k.swept = now
	}
	b := k.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.used = now
	return b.l.AllowN(now, 1)
}

// clientAddr is the caller's IP for per-address limits (RemoteAddr: put a trusted
// proxy's forwarding in front of this when there is one).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
