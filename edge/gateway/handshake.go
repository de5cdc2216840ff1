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
//
// It also corks: between cork and uncork, writes are gathered and leave in one
// write(2), so the frames a connection's writer finds queued cost one syscall.
// Gathering stops at maxCorkBuffer: what is gathered then leaves with the write
// that would overflow it, so a large flush is not copied whole a second time.
type heldConn struct {
	net.Conn
	mu      sync.Mutex
	started bool
	held    []byte
	corked  *[]byte // gathered writes while corked, from corkBuffers
}

// corkBuffers recycles cork buffers: a connection holds one only while it writes.
var corkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxCorkBuffer is the most a cork gathers before writing.
const maxCorkBuffer = 64 << 10

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked != nil {
		if !c.started || len(*c.corked)+len(p) <= maxCorkBuffer {
			*c.corked = append(*c.corked, p...)
			return len(p), nil
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		bufs := net.Buffers{*c.corked, p} // one writev
		*c.corked = (*c.corked)[:0]
		if _, err := bufs.WriteTo(c.Conn); err != nil {
			return 0, err
		}
		return len(p), nil
	}
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

// cork starts gathering writes.
func (c *heldConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked == nil {
		c.corked = corkBuffers.Get().(*[]byte)
	}
}

// uncork writes what was gathered since cork, in one write.
func (c *heldConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.corked
	if b == nil {
		return nil
	}
	c.corked = nil
	var err error
	if len(*b) > 0 {
		if !c.started {
			c.started = true
			c.held = append(c.held, *b...)
		} else if err = c.flushLocked(); err == nil {
			_, err = c.Conn.Write(*b)
		}
	}
	if cap(*b) <= maxCorkBuffer {
		*b = (*b)[:0]
		corkBuffers.Put(b)
	}
	return err
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
