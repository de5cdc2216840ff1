// Package validate holds the field checks several domains share, so a rule (what a
// client id may contain, how text length is counted) is written once.
package validate

import (
	"fmt"
	"regexp"
	"unicode"
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

// Name checks a name shown to other users (nickname, group name, remark): Text's
// rules, and no control characters or bidirectional controls, which can make a
// name read as something else ("‮moc.evil" shown backwards) or break a layout.
func Name(field, s string, maxRunes int) error {
	if err := Text(field, s, maxRunes); err != nil {
		return err
	}
	for _, r := range s {
		if unicode.IsControl(r) || isBidiControl(r) {
			return fmt.Errorf("%s: no control or text-direction characters (U+%04X)", field, r)
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F: // ALM, LRM, RLM
		return true
	case r >= 0x202A && r <= 0x202E: // embeddings and overrides
		return true
	case r >= 0x2066 && r <= 0x2069: // isolates
		return true
	}
	return false
}
