// Package wire defines what travels between clients, the edge and functions: the JSON
// frames clients send and receive, and the NATS headers that carry identity and
// request ids from the edge to functions.
package wire

import (
	"encoding/json"
	"unicode/utf8"

	"natter/shared/imerr"
)

// MaxFrame is the largest client frame (WebSocket message or HTTP body) accepted.
const MaxFrame = 1 << 20

// MaxID bounds a request's id in bytes. The edge echoes the id in the reply, so
// an unbounded id would unbound the reply (escaped control characters take six
// bytes each).
const MaxID = 128

// Request is a client frame asking for an operation.
type Request struct {
	ID   string          `json:"id"`
	Op   string          `json:"op"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Reply answers one Request; exactly one of Data and Error is set.
type Reply struct {
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error *imerr.Error    `json:"error,omitempty"`
}

// Push is a server-initiated frame (new message, receipt, kick notice, ...).
type Push struct {
	Event string `json:"event"`
	Data  any    `json:"data"`
}

// NATS headers set by the edge. Functions trust them because only edges and
// functions may publish on im.v1.> (see nats-config/).
const (
	HeaderUser      = "Natter-User"
	HeaderDevice    = "Natter-Device"
	HeaderSession   = "Natter-Session"
	HeaderRole      = "Natter-Role"
	HeaderConn      = "Natter-Conn"
	HeaderRequestID = "Natter-Request-Id"
	HeaderClientIP  = "Natter-Client-Ip" // the client's address, for audit logs
	// HeaderDeadline is when the caller stops waiting (unix ms): a worker does not
	// start a request past it. Clocks are assumed in sync (NTP).
	HeaderDeadline = "Natter-Deadline"

	// On delivery subjects: the connection that caused a push and must not get it
	// back (it already has the reply), and control messages for the edge.
	HeaderSkipConn = "Natter-Skip-Conn"
	HeaderControl  = "Natter-Control"

	// Set by micro on error replies.
	HeaderErrorCode = "Nats-Service-Error-Code"
	HeaderError     = "Nats-Service-Error"
)

// Control values on delivery subjects.
const (
	// ControlKick closes the connection named by HeaderConn (or every connection of
	// the session named by HeaderSession) with close code CloseKicked.
	ControlKick = "kick"
	// ControlGroupJoin, on a user's subject, says the user joined the group named
	// by HeaderGroup: the edge delivers that group's pushes to the user's
	// connections from then on.
	ControlGroupJoin = "group-join"
	// ControlGroupLeave, on a group's subject, says the users listed in
	// HeaderUsers left it: the edge stops delivering its pushes to them at once,
	// in order with the group's messages. On a user's subject it names the group
	// in HeaderGroup, for a connection still being set up.
	ControlGroupLeave = "group-leave"
)

// Headers of the group controls and pushes.
const (
	HeaderGroup     = "Natter-Group"      // a group id
	HeaderUsers     = "Natter-Users"      // user ids, comma-separated
	HeaderSkipUsers = "Natter-Skip-Users" // on a group push: members who get it on their own subjects
)

// WebSocket close codes (3000s: client may reconnect; 3500s: it must not retry as is;
// 1000s: RFC 6455's own).
const (
	CloseInvalidData  = 1007 // a text frame that is not UTF-8 (RFC 6455 section 8.1)
	CloseShutdown     = 3001 // edge going away: reconnect elsewhere
	CloseHeartbeat    = 3002 // no heartbeat within the timeout
	CloseSlowConsumer = 3003 // the client did not read what the edge queued for it: reconnect and sync
	CloseKicked       = 3501 // another device took the slot, or the session was revoked
	CloseUnauthorized = 3502 // token expired or revoked: log in again
	CloseTooLarge     = 3503 // frame over MaxFrame
)

// AppendReplyOK appends {"id":id,"ok":true,"data":data} to dst without re-encoding data,
// which is already JSON from the function. The hot path uses it to avoid a decode/encode.
func AppendReplyOK(dst []byte, id string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"ok":true`...)
	if len(data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// AppendReplyError appends {"id":id,"ok":false,"error":{"code":...,"message":...}}
// to dst: the bytes json.Marshal(Reply{ID: id, Error: e}) gives, without its
// allocations (rate-limited and malformed frames are answered this way).
func AppendReplyError(dst []byte, id string, e *imerr.Error) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"ok":false`...)
	if e != nil {
		dst = append(dst, `,"error":{"code":`...)
		dst = appendString(dst, string(e.Code))
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, e.Message)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, byte for byte as encoding/json writes
// it: quotes, backslashes and control characters escaped, <, > and & as \u003c,
// \u003e and \u0026, U+2028 and U+2029 escaped, and each byte that is not
// valid UTF-8 as \ufffd. Clients choose ids freely, so this is the only safe
// way to echo one (strconv.Quote writes Go syntax, such as \x01, which is not JSON).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is still to be copied as is
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// EncodePush returns the JSON frame for a push event.
func EncodePush(event string, data any) ([]byte, error) {
	return json.Marshal(Push{Event: event, Data: data})
}
