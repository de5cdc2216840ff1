package client

import (
	"context"
	"net"
)

// deadlineDialer dials TCP under the context given to Dial.
type deadlineDialer struct{ ctx context.Context }

func (d *deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(d.ctx, network, addr)
}

// SourceDialer dials from a given local address, so a load run can spread many
// connections over several loopback source addresses (127.0.0.2, ...) when one
// runs out of ports.
type SourceDialer struct {
	Ctx   context.Context
	Local net.IP
}

func (d *SourceDialer) Dial(network, addr string) (net.Conn, error) {
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: d.Local}}
	return nd.DialContext(d.Ctx, network, addr)
}
