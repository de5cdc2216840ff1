// Package validate holds the field checks several domains share, so a rule (what a
// client id may contain, how text length is counted) is written once.
package validate

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Text checks that s is valid UTF-8 of at most maxRunes code points.
func Text(field, s string, maxRunes int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: invalid UTF-8", field)
	}
	if utf8.RuneCountInString(s) > maxRunes {
		return fmt.Errorf("%s: over %d characters", field, maxRunes)
	}
	return nil
}

var tokenRe = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Token checks an identifier chosen by clients (client message ids, device ids,
// idempotency keys): 1-64 letters, digits, '_', '.', ':' or '-'.
func Token(field, s string) error {
	if !tokenRe.MatchString(s) {
		return fmt.Errorf("%s: 1-64 letters, digits, '_', '.', ':' or '-'", field)
	}
	return nil
}

// Limit is the size of a page a client asked for: 0 asks for def, and more than
// max gets max, the page then saying has_more as any full page does. One rule for
// every paged op; a negative limit is refused by the request's Validate.
func Limit(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}
