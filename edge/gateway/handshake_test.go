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
