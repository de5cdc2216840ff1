// Package endpoint is natter's one adapter between typed handlers and NATS micro
// services. A handler is a plain function of (ctx, Caller, Req) returning (Resp,
// error); the adapter decodes, validates, checks access, calls, encodes and maps
// errors, so no handler touches a NATS message. Server serves handlers; Request
// and Call are the client side.
package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/wire"
)

// Caller is who sent a request, as set by the edge in NATS headers.
type Caller struct {
	UserID    int64
	DeviceID  string
	SessionID string
	Role      string
	ConnID    string
	RequestID string
	// ClientIP is the client's address as the edge saw it, for audit logs.
	ClientIP string
}

// Validator is implemented by requests that check their own fields; the adapter
// calls it before the handler and answers bad_request on error.
type Validator interface{ Validate() error }

// Endpoint is one op bound to its handler.
type Endpoint struct {
	Op     op.Op
	handle func(ctx context.Context, c Caller, data []byte) ([]byte, error)
	check  func(data []byte) error
}

// Check decodes and validates a request body as the handler would receive it,
// without calling the handler: nil, or a bad_request error (fuzz tests use it).
func (e Endpoint) Check(data []byte) error { return e.check(data) }

// Handle binds the handler h to the op named name (which must be in op.All).
func Handle[Req, Resp any](name string, h func(context.Context, Caller, Req) (Resp, error)) Endpoint {
	decode := func(data []byte) (Req, error) {
		var req Req
		if len(data) > 0 {
			if err := json.Unmarshal(data, &req); err != nil {
				return req, imerr.Wrap(imerr.BadRequest, err, "malformed request: "+jsonProblem(err))
			}
		}
		if v, ok := any(&req).(Validator); ok {
			if err := v.Validate(); err != nil {
				return req, asBadRequest(err)
			}
		}
		return req, nil
	}
	return Endpoint{Op: op.Must(name), check: func(data []byte) error { _, err := decode(data); return err }, handle: func(ctx context.Context, c Caller, data []byte) ([]byte, error) {
		req, err := decode(data)
		if err != nil {
			return nil, err
		}
		resp, err := h(ctx, c, req)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(resp)
		if err != nil {
			return nil, fmt.Errorf("encode %s reply: %w", name, err)
		}
		return b, nil
	}}
}

// Headers returns the NATS headers that carry c.
func (c Caller) Headers() nats.Header {
	h := nats.Header{}
	if c.UserID != 0 {
		h.Set(wire.HeaderUser, strconv.FormatInt(c.UserID, 10))
	}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(wire.HeaderDevice, c.DeviceID)
	set(wire.HeaderSession, c.SessionID)
	set(wire.HeaderRole, c.Role)
	set(wire.HeaderConn, c.ConnID)
	set(wire.HeaderRequestID, c.RequestID)
	set(wire.HeaderClientIP, c.ClientIP)
	return h
}

func callerFrom(h nats.Header) (Caller, error) {
	c := Caller{
		DeviceID:  h.Get(wire.HeaderDevice),
		SessionID: h.Get(wire.HeaderSession),
		Role:      h.Get(wire.HeaderRole),
		ConnID:    h.Get(wire.HeaderConn),
		RequestID: h.Get(wire.HeaderRequestID),
		ClientIP:  h.Get(wire.HeaderClientIP),
	}
	if u := h.Get(wire.HeaderUser); u != "" {
		id, err := strconv.ParseInt(u, 10, 64)
		if err != nil || id <= 0 {
			return c, imerr.New(imerr.Unauthorized, "bad caller identity")
		}
		c.UserID = id
	}
	return c, nil
}

func asBadRequest(err error) error {
	var e *imerr.Error
	if errors.As(err, &e) {
		return err
	}
	return imerr.Wrap(imerr.BadRequest, err, err.Error())
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type.String())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON"
	}
	return "invalid request"
}
