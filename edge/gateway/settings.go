package gateway

import (
	"context"

	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
)

// The edge follows the runtime configuration (shared/dynconf): it loads it with
// the internal op settings.snapshot (retried until a worker answers) and then
// applies every im.evt.config.changed. It reads one item itself: while
// registration is closed it refuses account.register without a NATS request,
// so that a registration flood costs the workers nothing (the account domain
// refuses it too: an edge that has not loaded yet lets it through to them).

const opRegister = "account.register"

// followSettings starts following the configuration until g stops.
func (g *Gateway) followSettings() error {
	load := func(ctx context.Context) (dynconf.Snapshot, error) {
		return endpoint.Call[dynconf.Snapshot](ctx, g.nc, "settings.snapshot", endpoint.Caller{}, struct{}{})
	}
	return g.live.Follow(g.ctx, g.nc, load, 0, g.log)
}

// Settings is the edge's view of the runtime configuration.
func (g *Gateway) Settings() *dynconf.Live { return g.live }

// gate refuses an op the configuration turns off at the edge (nil: go on).
func (g *Gateway) gate(o op.Op) *imerr.Error {
	if o.Name == opRegister && !g.live.Bool(dynconf.RegistrationOpen, true) {
		return imerr.New(imerr.Forbidden, "registration is closed")
	}
	return nil
}
