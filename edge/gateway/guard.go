package gateway

import (
	"encoding/binary"
	"errors"
	"io"
)

var errFrameTooLarge = errors.New("websocket message over the size limit")

// frameGuard sits between a WebSocket's TCP connection and gws's reader and follows
// the client's frame headers. When a data message (one frame, or fragments added up)
// would exceed limit, it calls onOver (which closes the connection with
// wire.CloseTooLarge) and fails the read, before gws sees the header: gws's own
// ReadMaxPayloadSize would close with the generic 1009 instead of natter's code.
// It relies on permessage-deflate being off, so payload length is message length.
type frameGuard struct {
	src    io.Reader
	limit  uint64
	onOver func()

	hdr  [14]byte // header being collected (2 + up to 8 length + 4 mask bytes)
	have int      // bytes of hdr collected so far
	skip uint64   // payload bytes left in the current frame
	msg  uint64   // payload bytes so far of the current data message
	err  error
}

func (g *frameGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.src.Read(p)
	if g.scan(p[:n]) {
		// Frames earlier in p are dropped with the connection: it is closing anyway.
		g.err = errFrameTooLarge
		g.onOver()
		return 0, g.err
	}
	return n, err
}

// scan follows b through frame headers and payloads and reports whether a frame
// pushed its message over the limit.
func (g *frameGuard) scan(b []byte) bool {
	for len(b) > 0 {
		if g.skip > 0 {
			k := min(g.skip, uint64(len(b)))
			g.skip -= k
			b = b[k:]
			continue
		}
		g.hdr[g.have] = b[0]
		g.have++
		b = b[1:]
		if g.have < 2 {
			continue
		}
		need, size := 2, uint64(g.hdr[1]&0x7f)
		switch size {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if g.hdr[1]&0x80 != 0 { // masked (every client frame)
			need += 4
		}
		if g.have < need {
			continue
		}
		switch size {
		case 126:
			size = uint64(binary.BigEndian.Uint16(g.hdr[2:4]))
		case 127:
			size = binary.BigEndian.Uint64(g.hdr[2:10])
		}
		g.have, g.skip = 0, size
		if size > g.limit {
			return true
		}
		switch opcode := g.hdr[0] & 0x0f; {
		case opcode >= 8: // control frame: interleaves with fragments, not part of them
		case opcode == 0: // continuation
			g.msg += size
		default:
			g.msg = size
		}
		if g.msg > g.limit {
			return true
		}
	}
	return false
}
