// Package ids makes unique, roughly time-ordered 63-bit ids (snowflake layout) and
// random opaque tokens.
package ids

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// epoch is 2026-01-01 UTC; 41 bits of milliseconds last until 2095.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

const (
	nodeBits = 10
	seqBits  = 12
	maxNode  = 1<<nodeBits - 1
	maxSeq   = 1<<seqBits - 1
)

// Generator makes ids for one node. Ids from different nodes never collide, so each
// worker process needs its own node number (config NODE_ID, or random at start).
type Generator struct {
	mu   sync.Mutex
	node int64
	last int64
	seq  int64
}

// NewGenerator returns a generator for node (taken modulo 1024).
func NewGenerator(node int64) *Generator {
	return &Generator{node: node & maxNode}
}

// RandomNode picks a node number when none is configured.
func RandomNode() int64 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return int64(b[0])<<8 | int64(b[1])
}

// Next returns a new id. It waits for the next millisecond if 4096 ids were already
// taken in this one, and never goes backwards if the clock does.
func (g *Generator) Next() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now().UnixMilli() - epoch
	if now < g.last {
		now = g.last
	}
	if now == g.last {
		g.seq++
		if g.seq > maxSeq {
			for now <= g.last {
				time.Sleep(100 * time.Microsecond)
				now = time.Now().UnixMilli() - epoch
			}
			g.seq = 0
		}
	} else {
		g.seq = 0
	}
	g.last = now
	return now<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
}

// Token returns n random bytes, URL-safe base64 encoded.
func Token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
