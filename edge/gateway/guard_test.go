package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// clientFrame returns a masked client frame header for a payload of n bytes,
// followed by n zero bytes.
func clientFrame(opcode byte, fin bool, n int) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	var h []byte
	switch {
	case n < 126:
		h = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		h = []byte{b0, 0x80 | 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = []byte{b0, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h = append(h, 9, 8, 7, 6) // mask key
	return append(h, make([]byte, n)...)
}

func TestFrameGuard(t *testing.T) {
	const limit = 1000
	const text, cont, ping = 0x1, 0x0, 0x9
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	tests := []struct {
		name  string
		input []byte
		over  bool
	}{
		{"small frames", cat(clientFrame(text, true, 10), clientFrame(text, true, 125)), false},
		{"16-bit length at the limit", clientFrame(text, true, limit), false},
		{"16-bit length over", clientFrame(text, true, limit+1), true},
		{"64-bit length over", clientFrame(text, true, 70000), true},
		{"fragments within", cat(clientFrame(text, false, 500), clientFrame(ping, true, 4), clientFrame(cont, true, 500)), false},
		{"fragments over", cat(clientFrame(text, false, 500), clientFrame(ping, true, 4), clientFrame(cont, false, 400), clientFrame(cont, true, 101)), true},
		{"new message resets", cat(clientFrame(text, true, 900), clientFrame(text, true, 900)), false},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				called := 0
				g := &frameGuard{src: wrap(bytes.NewReader(tt.input)), limit: limit, onOver: func() { called++ }}
				out, err := io.ReadAll(g)
				if tt.over {
					if !errors.Is(err, errFrameTooLarge) || called != 1 {
						t.Fatalf("err %v, onOver called %d times; want errFrameTooLarge once", err, called)
					}
					return
				}
				if err != nil || called != 0 || !bytes.Equal(out, tt.input) {
					t.Fatalf("err %v, onOver %d, passed %d of %d bytes", err, called, len(out), len(tt.input))
				}
			})
		}
	}
}
