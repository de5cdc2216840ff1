package gateway

import (
	"context"
	"encoding/json"
	"time"

	"natter/shared/endpoint"
	"natter/shared/wire"
)

// heartbeatSlots spreads pings over the interval: each tick pings one slot's
// connections, so 20,000 connections do not all get (and answer) a ping at once.
const heartbeatSlots = 30

// heartbeat pings every connection once per HeartbeatInterval and closes (3002)
// those silent for longer than HeartbeatTimeout, and (3003) those whose send
// queue stayed over QueueBytes for longer than QueueTimeout. One loop serves all
// connections.
// Each tick (HeartbeatInterval/heartbeatSlots) pings one slot but checks the
// silence of every connection, one atomic load each, so a close comes within a
// tick of the timeout rather than at the connection's next ping.
func (g *Gateway) heartbeat() {
	t := time.NewTicker(g.cfg.HeartbeatInterval / heartbeatSlots)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-g.stop:
			return
		case now := <-t.C:
			slot := tick % heartbeatSlots
			deadline := now.Add(-g.cfg.HeartbeatTimeout).UnixNano()
			slowSince := now.Add(-g.cfg.QueueTimeout).UnixNano()
			g.hub.each(func(c *conn) {
				if t := c.overSince.Load(); t != 0 && t < slowSince && g.cfg.QueueTimeout > 0 {
					c.dropSlow("send queue full for too long")
					return
				}
				if c.lastSeen.Load() < deadline {
					// Once: the connection stays in the hub until its read loop ends.
					if !c.timedOut.Swap(true) {
						c.closeAsync(wire.CloseHeartbeat, "heartbeat timeout")
					}
					return
				}
				if c.slot != slot {
					return
				}
				c.sock.Async(func() {
					_ = c.sock.SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
					_ = c.sock.WritePing(nil)
				})
			})
		}
	}
}

// touch tells the account domain every TouchInterval which connections this edge
// still holds, in batches of wire.MaxTouch, so that the connections of an edge
// that died stop counting as online and against the device limit.
func (g *Gateway) touch() {
	t := time.NewTicker(g.cfg.TouchInterval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			var conns []wire.TouchConn
			g.hub.each(func(c *conn) {
				conns = append(conns, wire.TouchConn{UserID: c.claims.UserID, ConnID: c.id})
			})
			for start := 0; start < len(conns); start += wire.MaxTouch {
				body, err := json.Marshal(wire.TouchReq{EdgeID: g.cfg.ID, Conns: conns[start:min(start+wire.MaxTouch, len(conns))]})
				if err != nil {
					continue
				}
				ctx, cancel := context.WithTimeout(g.ctx, g.cfg.RequestTimeout)
				if _, err := endpoint.Request(ctx, g.nc, "session.touch", endpoint.Caller{RequestID: g.newID(&g.reqSeq)}, body); err != nil {
					g.log.Warn().Err(err).Int("conns", len(conns)).Msg("session.touch failed")
				}
				cancel()
			}
		}
	}
}
