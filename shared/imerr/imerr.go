// Package imerr holds natter's closed set of error codes and the one error type that
// crosses process boundaries. Handlers return *Error (or wrap one); the endpoint adapter
// and the edge are the only places that convert it to micro errors, frames or HTTP statuses.
package imerr

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
)

// Code is one of the documented error codes. The set is closed: clients switch on it.
type Code string

const (
	BadRequest   Code = "bad_request"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"
	RateLimited  Code = "rate_limited"
	TooLarge     Code = "too_large"
	Unavailable  Code = "unavailable"
	Internal     Code = "internal"
)

// Codes lists every code, in documentation order.
var Codes = []Code{BadRequest, Unauthorized, Forbidden, NotFound, Conflict, RateLimited, TooLarge, Unavailable, Internal}

// HTTPStatus is the status the edge answers with for c; it is also the numeric
// micro error code (Nats-Service-Error-Code), so both sides share one mapping.
func (c Code) HTTPStatus() int {
	switch c {
	case BadRequest:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case RateLimited:
		return http.StatusTooManyRequests
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Valid reports whether c belongs to the closed set.
func (c Code) Valid() bool {
	for _, k := range Codes {
		if k == c {
			return true
		}
	}
	return false
}

// Error is an error with a client-visible code and message. Cause is kept for logs
// and never sent to clients.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Cause   error  `json:"-"`
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Cause.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an error with code c and a client-visible message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with code c whose cause (kept for logs only) is err.
func Wrap(c Code, err error, message string) *Error {
	return &Error{Code: c, Message: message, Cause: err}
}

// From finds the *Error in err's chain; anything else becomes internal (or
// unavailable for deadline errors), with a generic message so internals never leak.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Code: Unavailable, Message: "request timed out", Cause: err}
	}
	// A store that cannot be reached is a retryable outage, not a bug: clients retry
	// unavailable (writes are idempotent), not internal.
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, syscall.ECONNREFUSED) {
		return &Error{Code: Unavailable, Message: "service temporarily unavailable", Cause: err}
	}
	return &Error{Code: Internal, Message: "internal error", Cause: err}
}

// CodeOf returns the code of err ("" for nil).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}
