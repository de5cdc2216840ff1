package gateway

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/imerr"
)

// clientError is the one place where an error from a request becomes what a client
// sees: the function's *imerr.Error as is, NATS trouble as unavailable, anything
// else as internal (imerr.From hides its text).
func clientError(err error) *imerr.Error {
	var e *imerr.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) {
		return imerr.Wrap(imerr.Unavailable, err, "service unavailable")
	}
	return imerr.From(err)
}

// logFailure logs a request that failed on the server side (internal, unavailable)
// once, here where it is converted; client mistakes are only counted.
func logFailure(l *zerolog.Event, e *imerr.Error) {
	if e.Code != imerr.Internal && e.Code != imerr.Unavailable {
		return
	}
	l.Err(e).Str("code", string(e.Code)).Msg("request failed")
}

// writeJSONError answers an HTTP request with e's status and {"error":{...}}.
func writeJSONError(w http.ResponseWriter, e *imerr.Error) {
	body, _ := json.Marshal(struct {
		Error *imerr.Error `json:"error"`
	}{e}) // strings only: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Code == imerr.Unauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="natter"`)
	}
	w.WriteHeader(e.Code.HTTPStatus())
	_, _ = w.Write(body)
}
