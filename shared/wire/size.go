package wire

// MaxReply bounds the data of one reply in bytes. NATS refuses a message over the
// server's max_payload (1 MB by default), and a reply that large would also sit
// whole in an edge's per-connection queue: every paged op stops a page before it
// and says has_more, as for a full page. Items are counted by Size estimates
// that err high.
const MaxReply = 512 << 10

// MaxContent bounds a message's content (its JSON) in bytes, so that any one
// message fits a reply with room to spare.
const MaxContent = 64 << 10

// Size estimates m's encoded size: its variable fields plus room for the fixed ones.
func (m *Message) Size() int {
	return 256 + len(m.ConvID) + len(m.ClientMsgID) + len(m.Type) + len(m.Content) + 48*len(m.Reactions)
}

// Budget counts the bytes of a reply being built.
type Budget struct{ left int }

// NewBudget returns a budget of MaxReply bytes.
func NewBudget() *Budget { return &Budget{left: MaxReply} }

// Take spends n bytes and reports whether they fit. The first item of a reply
// always fits (a page must make progress; MaxContent keeps it small).
func (b *Budget) Take(n int) bool {
	first := b.left == MaxReply
	if n > b.left && !first {
		return false
	}
	b.left -= n
	return true
}
