package gateway

import (
	"bytes"
	"net"
	"sync"
)

// heldConn holds back the first write on a hijacked connection, the 101 response
// that gws writes during the upgrade, until release: the edge attaches the new
// connection to its user's deliveries in between, so no push sent after the
// client sees the 101 can miss it. Any other write, and Close, send the held
// bytes first, so the byte order on the wire never changes.
type heldConn struct {
	net.Conn
	mu      sync.Mutex
	started bool
	held    []byte
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		c.held = bytes.Clone(p)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// release sends the held bytes, if any.
func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	return c.flushLocked()
}

func (c *heldConn) flushLocked() error {
	if c.held == nil {
		return nil
	}
	held := c.held
	c.held = nil
	_, err := c.Conn.Write(held)
	return err
}

// Close sends what is held (an upgrade error response, say) before closing.
func (c *heldConn) Close() error {
	_ = c.release()
	return c.Conn.Close()
}
