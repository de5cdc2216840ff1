// Package convid names conversations. A 1:1 conversation is "d:<low>:<high>" (both
// sides compute it without a lookup) and a group's is "g:<group id>"; clients see
// these ids in every message, list and push.
package convid

import (
	"strconv"
	"strings"

	"natter/shared/imerr"
)

// Kind tells 1:1 from group conversations; the values are stored in
// conversations.kind.
type Kind int8

const (
	Direct Kind = 1
	Group  Kind = 2
)

// ID is a conversation id taken apart.
type ID struct {
	Raw   string
	Kind  Kind
	A, B  int64 // Direct: the two users, A < B
	Group int64 // Group: the group
}

// OfDirect is the 1:1 conversation of users a and b.
func OfDirect(a, b int64) ID {
	if a > b {
		a, b = b, a
	}
	return ID{Raw: "d:" + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10), Kind: Direct, A: a, B: b}
}

// OfGroup is group g's conversation.
func OfGroup(g int64) ID {
	return ID{Raw: "g:" + strconv.FormatInt(g, 10), Kind: Group, Group: g}
}

// Parse reads a conversation id; anything but the canonical form of one is a
// bad request.
func Parse(raw string) (ID, error) {
	kind, rest, ok := strings.Cut(raw, ":")
	switch {
	case ok && kind == "d":
		as, bs, ok := strings.Cut(rest, ":")
		a, err1 := strconv.ParseInt(as, 10, 64)
		b, err2 := strconv.ParseInt(bs, 10, 64)
		if ok && err1 == nil && err2 == nil && a > 0 && a < b {
			if id := OfDirect(a, b); id.Raw == raw {
				return id, nil
			}
		}
	case ok && kind == "g":
		g, err := strconv.ParseInt(rest, 10, 64)
		if err == nil && g > 0 {
			if id := OfGroup(g); id.Raw == raw {
				return id, nil
			}
		}
	}
	return ID{}, imerr.New(imerr.BadRequest, "conv_id: %q is not a conversation id", raw)
}

// Has reports whether user belongs to a direct conversation by its id alone.
func (id ID) Has(user int64) bool { return id.Kind == Direct && (user == id.A || user == id.B) }

// Peer is the other user of a direct conversation.
func (id ID) Peer(self int64) int64 {
	if id.A == self {
		return id.B
	}
	return id.A
}

// Users are a direct conversation's two users (nil for a group).
func (id ID) Users() []int64 {
	if id.Kind != Direct {
		return nil
	}
	return []int64{id.A, id.B}
}

func (id ID) String() string { return id.Raw }
