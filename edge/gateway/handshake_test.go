package gateway

import (
	"bytes"
	"net"
	"testing"
)

// countingConn records each Write that reaches the network.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestHeldConnCork(t *testing.T) {
	under := &countingConn{}
	hc := &heldConn{Conn: under}
	_, _ = hc.Write([]byte("101|")) // held until release
	hc.cork()
	for _, s := range []string{"a|", "b|", "c|"} {
		if n, err := hc.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("corked write: %d, %v", n, err)
		}
	}
	if len(under.writes) != 0 {
		t.Fatalf("wrote %q while corked", under.writes)
	}
	if err := hc.uncork(); err != nil {
		t.Fatal(err)
	}
	// The held 101 first, then the corked frames in one write.
	if got := bytes.Join(under.writes, []byte(" ")); string(got) != "101| a|b|c|" {
		t.Fatalf("writes %q, want the 101 then one write of a|b|c|", got)
	}
	_, _ = hc.Write([]byte("d|"))
	if len(under.writes) != 3 || string(under.writes[2]) != "d|" {
		t.Fatalf("uncorked write went %q", under.writes)
	}
	if err := hc.uncork(); err != nil || len(under.writes) != 3 {
		t.Fatalf("uncork without cork: %v, %q", err, under.writes)
	}
}

// TestHeldConnCorkBounded: a cork gathers at most maxCorkBuffer bytes; a write
// that would overflow it leaves at once with what was gathered, in order.
func TestHeldConnCorkBounded(t *testing.T) {
	under := &countingConn{}
	hc := &heldConn{Conn: under}
	if err := hc.release(); err != nil {
		t.Fatal(err)
	}
	hc.cork()
	var want []byte
	for i := range 5 {
		p := bytes.Repeat([]byte{'a' + byte(i)}, 40<<10)
		want = append(want, p...)
		if n, err := hc.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		if len(*hc.corked) > maxCorkBuffer {
			t.Fatalf("after write %d the cork holds %d bytes", i, len(*hc.corked))
		}
	}
	if len(under.writes) == 0 {
		t.Fatal("200 KiB gathered without a write")
	}
	if err := hc.uncork(); err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(under.writes, nil); !bytes.Equal(got, want) {
		t.Fatalf("the network got %d bytes out of order or incomplete (want %d)", len(got), len(want))
	}
}
