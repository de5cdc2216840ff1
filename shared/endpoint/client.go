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
	"natter/shared/tracing"
	"natter/shared/wire"
)

// Request sends data to op name as caller and returns the raw reply body, or the
// *imerr.Error the function answered with. The edge and tests use it; functions
// calling each other do too.
func Request(ctx context.Context, nc *nats.Conn, name string, c Caller, data []byte) ([]byte, error) {
	o, ok := op.Lookup(name)
	if !ok {
		return nil, imerr.New(imerr.NotFound, "unknown op %q", name)
	}
	msg := &nats.Msg{Subject: o.Subject(), Data: data, Header: c.Headers()}
	if dl, ok := ctx.Deadline(); ok {
		msg.Header.Set(wire.HeaderDeadline, strconv.FormatInt(dl.UnixMilli(), 10))
	}
	tracing.Inject(ctx, msg.Header)
	rep, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, imerr.Wrap(imerr.Unavailable, err, "service unavailable")
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return nil, imerr.Wrap(imerr.Unavailable, err, "request timed out")
		}
		return nil, fmt.Errorf("request %s: %w", name, err)
	}
	if err := ReplyError(rep); err != nil {
		return nil, err
	}
	return rep.Data, nil
}

// ReplyError decodes the error a micro reply carries, or returns nil.
func ReplyError(rep *nats.Msg) error {
	if rep.Header == nil || rep.Header.Get(wire.HeaderErrorCode) == "" {
		return nil
	}
	var e imerr.Error
	if err := json.Unmarshal(rep.Data, &e); err != nil || !e.Code.Valid() {
		return imerr.New(imerr.Internal, "%s", rep.Header.Get(wire.HeaderError))
	}
	return &e
}

// Call is Request with a typed request and reply.
func Call[Resp any](ctx context.Context, nc *nats.Conn, name string, c Caller, req any) (Resp, error) {
	var resp Resp
	data, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("encode %s: %w", name, err)
	}
	out, err := Request(ctx, nc, name, c, data)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("decode %s reply: %w", name, err)
	}
	return resp, nil
}
