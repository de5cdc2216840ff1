package admin

import (
	"testing"
	"time"
)

// TOTPCode is the code of secret at t (tests play the authenticator app).
func TOTPCode(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	c, err := totpCode(secret, uint64(t.Unix()/30))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
