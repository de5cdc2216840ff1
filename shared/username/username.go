// Package username holds the one rule for usernames: register stores, and login
// and lookup compare, the canonical form only. It follows the PRECIS
// UsernameCaseMapped profile (RFC 8265: full-width folded to ASCII, lower case,
// NFC), then keeps natter's charset, so "ＡＬＩＣＥ" and "Alice" are "alice", and
// "alİce" (a dotted capital I) is no username at all rather than "alice".
package username

import (
	"errors"
	"regexp"

	"golang.org/x/text/secure/precis"
)

var charset = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

// ErrInvalid says a name is not a username.
var ErrInvalid = errors.New("username: 3-32 letters, digits, '_', '.' or '-'")

// Canonical returns the canonical form of s, or ErrInvalid.
func Canonical(s string) (string, error) {
	if len(s) > 128 {
		return "", ErrInvalid
	}
	c, err := precis.UsernameCaseMapped.String(s)
	if err != nil || !charset.MatchString(c) {
		return "", ErrInvalid
	}
	return c, nil
}
