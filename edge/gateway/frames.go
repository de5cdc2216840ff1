package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"natter/shared/imerr"
	"natter/shared/tracing"

	"natter/shared/endpoint"
	"natter/shared/op"
	"natter/shared/wire"
)

// OpPing is the edge's built-in op: {"id":"x","op":"ping"} is answered
// {"id":"x","ok":true} by the edge itself, without a NATS round trip. It is not in
// op.All because no function serves it.
const OpPing = "ping"

// handleFrame answers one client frame: a request for an op of the table.
func (g *Gateway) handleFrame(c *conn, frame []byte) {
	start := time.Now()
	// Every frame takes a token before any parsing, malformed ones too: parsing is
	// the cost the limit bounds.
	if c.limiter != nil && !c.limiter.Allow() {
		g.refuse(c, leadingID(frame), opUnparsed, imerr.New(imerr.RateLimited, "too many frames: slow down"), start)
		return
	}
	var req wire.Request
	if err := json.Unmarshal(frame, &req); err != nil {
		g.refuse(c, "", opInvalid, imerr.New(imerr.BadRequest, "malformed frame: want {\"id\":...,\"op\":...,\"data\":...}"), start)
		return
	}
	o, known := op.Lookup(req.Op)
	label := req.Op
	if !known || o.Access == op.Internal || o.Access == op.Admin || o.BackOffice() {
		known, label = false, opInvalid
	}
	if req.Op == OpPing {
		known, label = true, OpPing
	}
	switch {
	case req.ID == "":
		g.refuse(c, "", label, imerr.New(imerr.BadRequest, "missing id"), start)
		return
	case len(req.ID) > wire.MaxID:
		g.refuse(c, "", label, imerr.New(imerr.BadRequest, "id over %d bytes", wire.MaxID), start)
		return
	case !known:
		g.refuse(c, req.ID, label, unknownOp(req.Op), start)
		return
	case req.Op == OpPing:
		c.reply(wire.AppendReplyOK(nil, req.ID, nil))
		g.m.observe("ws", OpPing, nil, time.Since(start))
		return
	case o.Access == op.Public && !g.publicLimits.allow("ip:"+c.addr, start):
		// Logins over a socket count with the address's HTTP logins: one budget
		// of password guesses per address, whatever the transport.
		g.refuse(c, req.ID, label, imerr.New(imerr.RateLimited, "too many requests: slow down"), start)
		return
	}
	if e := g.gate(o); e != nil {
		g.refuse(c, req.ID, label, e, start)
		return
	}

	reqID := g.newID(&g.reqSeq)
	ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
	ctx, span := tracing.Tracer().Start(ctx, "edge "+o.Name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start))
	out, err := endpoint.Request(ctx, g.nc, o.Name, c.caller(reqID), req.Data)
	if err != nil {
		span.SetStatus(codes.Error, string(imerr.From(err).Code))
	}
	span.End()
	cancel()
	dur := time.Since(start)
	g.m.observe("ws", o.Name, err, dur)
	if err != nil {
		e := clientError(err)
		logFailure(g.log.Warn().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id), e)
		c.reply(wire.AppendReplyError(nil, req.ID, e))
		g.log.Debug().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id).Str("code", string(e.Code)).Dur("dur", dur).Msg("request")
		return
	}
	c.reply(wire.AppendReplyOK(make([]byte, 0, len(out)+len(req.ID)+32), req.ID, out))
	g.log.Debug().Str("req_id", reqID).Str("op", o.Name).Str("conn", c.id).Str("code", "ok").Dur("dur", dur).Msg("request")
}

// maxOpEcho bounds how much of an unknown op's name an error repeats.
const maxOpEcho = 64

// unknownOp is the error, on both transports, for an op no client may call:
// absent from the table, or internal, which must look the same. The name is
// quoted as JSON text (the encoder then escapes the whole message once more).
func unknownOp(name string) *imerr.Error {
	if len(name) > maxOpEcho {
		name = name[:maxOpEcho] + "..."
	}
	quoted, _ := json.Marshal(name) // a string: cannot fail
	return imerr.New(imerr.NotFound, "unknown op %s", quoted)
}

// refuse answers a frame the edge rejects itself; the connection stays open.
func (g *Gateway) refuse(c *conn, id, label string, e *imerr.Error, start time.Time) {
	c.reply(wire.AppendReplyError(nil, id, e))
	g.m.observe("ws", label, e, time.Since(start))
}

// leadingID is the id of a frame that starts {"id":"...", as clients write it,
// found without parsing the rest: a frame refused before parsing is answered
// with its id when that is this cheap, and with "" otherwise (an id that is not
// plain text, or a frame with other fields first).
func leadingID(frame []byte) string {
	b := skipSpace(frame)
	if len(b) == 0 || b[0] != '{' {
		return ""
	}
	b = skipSpace(b[1:])
	if !bytes.HasPrefix(b, []byte(`"id"`)) {
		return ""
	}
	b = skipSpace(b[4:])
	if len(b) == 0 || b[0] != ':' {
		return ""
	}
	b = skipSpace(b[1:])
	if len(b) == 0 || b[0] != '"' {
		return ""
	}
	b = b[1:]
	for i := 0; i < len(b) && i <= wire.MaxID; i++ {
		switch c := b[i]; {
		case c == '"':
			if !utf8.Valid(b[:i]) {
				return ""
			}
			return string(b[:i])
		case c == '\\' || c < 0x20:
			return ""
		}
	}
	return ""
}

// skipSpace drops JSON whitespace from the front of b.
func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
