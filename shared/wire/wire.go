// Package wire defines what travels between clients, the edge and functions: the JSON
// frames clients send and receive, and the NATS headers that carry identity and
// request ids from the edge to functions.
package wire

import (
	"encoding/json"
	"strconv"

	"natter/shared/imerr"
)

// MaxFrame is the largest client frame (WebSocket message or HTTP body) accepted.
const MaxFrame = 1 << 20

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
)

// WebSocket close codes (3000s: client may reconnect; 3500s: it must not retry as is).
const (
	CloseShutdown     = 3001 // edge going away: reconnect elsewhere
	CloseHeartbeat    = 3002 // no heartbeat within the timeout
	CloseKicked       = 3501 // another device took the slot, or the session was revoked
	CloseUnauthorized = 3502 // token expired or revoked: log in again
	CloseTooLarge     = 3503 // frame over MaxFrame
)

// AppendReplyOK appends {"id":id,"ok":true,"data":data} to dst without re-encoding data,
// which is already JSON from the function. The hot path uses it to avoid a decode/encode.
func AppendReplyOK(dst []byte, id string, data []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendQuote(dst, id)
	dst = append(dst, `,"ok":true`...)
	if len(data) > 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

// AppendReplyError appends an error reply frame to dst.
func AppendReplyError(dst []byte, id string, e *imerr.Error) []byte {
	b, _ := json.Marshal(Reply{ID: id, Error: e}) // fields are strings: cannot fail
	return append(dst, b...)
}

// EncodePush returns the JSON frame for a push event.
func EncodePush(event string, data any) ([]byte, error) {
	return json.Marshal(Push{Event: event, Data: data})
}
