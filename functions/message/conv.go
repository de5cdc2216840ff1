package message

import (
	"fmt"
	"strconv"
	"strings"

	"natter/shared/endpoint"
	"natter/shared/imerr"
)

// Conversation kinds, as stored in conversations.kind.
const (
	kindDirect = 1
	kindGroup  = 2
)

// directID is the 1:1 conversation of users a and b: "d:<low>:<high>", so both
// sides compute the same id without a lookup.
func directID(a, b int64) string {
	if a > b {
		a, b = b, a
	}
	return "d:" + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10)
}

// parsedConv is a conversation id taken apart.
type parsedConv struct {
	id     string
	kind   int
	a, b   int64 // direct: the two users
	member bool  // direct: whether the caller is one of them
}

func parseConv(id string, c endpoint.Caller) (parsedConv, error) {
	kind, rest, ok := strings.Cut(id, ":")
	if ok && kind == "d" {
		as, bs, ok := strings.Cut(rest, ":")
		a, err1 := strconv.ParseInt(as, 10, 64)
		b, err2 := strconv.ParseInt(bs, 10, 64)
		if ok && err1 == nil && err2 == nil && a > 0 && a < b && directID(a, b) == id {
			return parsedConv{id: id, kind: kindDirect, a: a, b: b, member: c.UserID == a || c.UserID == b}, nil
		}
	}
	if ok && kind == "g" {
		return parsedConv{}, imerr.New(imerr.NotFound, "group conversations are not available yet")
	}
	return parsedConv{}, imerr.New(imerr.BadRequest, "conv_id: %q is not a conversation id", id)
}

// peer is the other user of a direct conversation.
func (p parsedConv) peer(self int64) int64 {
	if p.a == self {
		return p.b
	}
	return p.a
}

func (p parsedConv) String() string { return fmt.Sprintf("%s(kind %d)", p.id, p.kind) }
