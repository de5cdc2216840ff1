// Package sensitive finds sensitive words in text: an Aho-Corasick automaton over
// folded runes (lower case, full-width ASCII forms as half-width), so "ＢａＤ"
// matches "bad" and Chinese words match as they are. A Matcher is built once per
// version of the word list and only read afterwards, so every request shares it
// without locks; List keeps the current one and swaps in a new one when the
// list changes.
package sensitive

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Action is what a word does to a text that contains it.
type Action uint8

// Actions, weakest first: a text takes its strongest word's action.
const (
	None   Action = iota
	Mask          // each matched character becomes '*'
	Review        // the text passes; a message goes to the review queue
	Block         // the text is refused
)

var actionNames = [...]string{None: "", Mask: "mask", Review: "review", Block: "block"}

func (a Action) String() string { return actionNames[a] }

// ParseAction reads "block", "mask" or "review".
func ParseAction(s string) (Action, bool) {
	switch s {
	case "block":
		return Block, true
	case "mask":
		return Mask, true
	case "review":
		return Review, true
	}
	return None, false
}

// Word is one entry of the list.
type Word struct {
	Text   string
	Action Action
}

// Fold maps r to the form words are matched in: full-width ASCII forms and the
// ideographic space to their half-width forms, then lower case. One rune maps to
// one rune, so positions in the folded text are positions in the original.
func Fold(r rune) rune {
	switch {
	case r >= 0xFF01 && r <= 0xFF5E:
		r -= 0xFEE0
	case r == 0x3000:
		r = ' '
	}
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(r)
}

// FoldString folds every rune of s.
func FoldString(s string) string { return strings.Map(Fold, s) }

// node is one state of the automaton.
type node struct {
	fail int32 // longest proper suffix that is also a prefix of some word
	// out is the word ending exactly here (-1: none); dict is the nearest state
	// on the fail chain with a word ending there (-1: none).
	out, dict int32
	depth     int32 // runes from the root
}

// Matcher is an immutable automaton over a word list.
type Matcher struct {
	nodes []node
	// The goto function of states other than the root: state s's edges are
	// edgeRune/edgeNext[edgeStart[s]:edgeStart[s+1]], sorted by rune. Most
	// states have one or two edges: a short scan, no hashing.
	edgeStart []int32
	edgeRune  []rune
	edgeNext  []int32
	root      map[rune]int32       // the root's edges, the most used lookups
	ascii     [utf8.RuneSelf]int32 // and the root's ASCII edges as an array (0: none)
	words     []Word
}

func key(state int32, r rune) uint64 { return uint64(state)<<32 | uint64(uint32(r)) }

// Build makes a Matcher for words (folded here; empty words are skipped; a word
// listed twice keeps its strongest action).
func Build(words []Word) *Matcher {
	m := &Matcher{nodes: []node{{out: -1, dict: -1}}, root: make(map[rune]int32)}
	next := make(map[uint64]int32) // the trie while it grows
	for _, w := range words {
		text := FoldString(w.Text)
		if text == "" {
			continue
		}
		s := int32(0)
		for _, r := range text {
			k := key(s, r)
			n, ok := next[k]
			if !ok {
				n = int32(len(m.nodes))
				m.nodes = append(m.nodes, node{out: -1, dict: -1, depth: m.nodes[s].depth + 1})
				next[k] = n
				if s == 0 {
					m.root[r] = n
					if r < utf8.RuneSelf {
						m.ascii[r] = n
					}
				}
			}
			s = n
		}
		if o := m.nodes[s].out; o >= 0 {
			if w.Action > m.words[o].Action {
				m.words[o].Action = w.Action
			}
			continue
		}
		m.nodes[s].out = int32(len(m.words))
		m.words = append(m.words, Word{Text: text, Action: w.Action})
	}
	// Breadth first: a state's fail link is computed after its parent's.
	type edge struct {
		r rune
		n int32
	}
	children := make([][]edge, len(m.nodes))
	for k, n := range next {
		s := int32(k >> 32)
		children[s] = append(children[s], edge{rune(uint32(k)), n})
	}
	m.edgeStart = make([]int32, len(m.nodes)+1)
	m.edgeRune = make([]rune, 0, len(next))
	m.edgeNext = make([]int32, 0, len(next))
	for s, cs := range children {
		slices.SortFunc(cs, func(a, b edge) int { return int(a.r) - int(b.r) })
		m.edgeStart[s] = int32(len(m.edgeRune))
		if s == 0 {
			continue // the root's edges are in root and ascii
		}
		for _, c := range cs {
			m.edgeRune = append(m.edgeRune, c.r)
			m.edgeNext = append(m.edgeNext, c.n)
		}
	}
	m.edgeStart[len(m.nodes)] = int32(len(m.edgeRune))
	queue := make([]int32, 0, len(m.nodes))
	for _, c := range children[0] {
		m.nodes[c.n].fail = 0
		queue = append(queue, c.n)
	}
	for i := 0; i < len(queue); i++ {
		s := queue[i]
		f := m.nodes[s].fail
		if m.nodes[f].out >= 0 {
			m.nodes[s].dict = f
		} else {
			m.nodes[s].dict = m.nodes[f].dict
		}
		for _, c := range children[s] {
			fs := f
			for {
				if n, ok := m.step(fs, c.r); ok {
					m.nodes[c.n].fail = n
					break
				}
				if fs == 0 {
					m.nodes[c.n].fail = 0
					break
				}
				fs = m.nodes[fs].fail
			}
			queue = append(queue, c.n)
		}
	}
	return m
}

func (m *Matcher) step(s int32, r rune) (int32, bool) {
	if s == 0 {
		if r < utf8.RuneSelf {
			n := m.ascii[r]
			return n, n != 0
		}
		n, ok := m.root[r]
		return n, ok
	}
	lo, hi := m.edgeStart[s], m.edgeStart[s+1]
	if hi-lo <= 8 {
		for i := lo; i < hi; i++ {
			if m.edgeRune[i] == r {
				return m.edgeNext[i], true
			}
		}
		return 0, false
	}
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		if m.edgeRune[mid] < r {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < m.edgeStart[s+1] && m.edgeRune[lo] == r {
		return m.edgeNext[lo], true
	}
	return 0, false
}

// Len is the number of distinct words.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return len(m.words)
}

// Match is one occurrence of a word: runes [Start, End) of the text.
type Match struct {
	Start, End int
	Word       int // index into the matcher's words
}

// Verdict is what the list says about a text.
type Verdict struct {
	Action Action
	// Text is the text with the mask words' characters replaced by '*' (the
	// input itself when nothing was masked).
	Text string
	// Words are the distinct words found (at most 16), for the review queue and
	// the error message.
	Words []string
}

// each calls f for every occurrence of a word in text.
func (m *Matcher) each(text string, f func(Match)) {
	s := int32(0)
	i := 0
	for _, r := range text {
		r = Fold(r)
		for {
			if n, ok := m.step(s, r); ok {
				s = n
				break
			}
			if s == 0 {
				break
			}
			s = m.nodes[s].fail
		}
		i++
		for o := s; o > 0; o = m.nodes[o].dict {
			if w := m.nodes[o].out; w >= 0 {
				f(Match{Start: i - int(m.nodes[o].depth), End: i, Word: int(w)})
			}
			if m.nodes[o].dict < 0 {
				break
			}
		}
	}
}

// Check finds the words in text and applies them. A text without any costs no
// allocation.
func (m *Matcher) Check(text string) Verdict {
	v := Verdict{Text: text}
	if m == nil || len(m.words) == 0 || text == "" {
		return v
	}
	var masks []Match
	m.each(text, func(x Match) {
		w := m.words[x.Word]
		if w.Action > v.Action {
			v.Action = w.Action
		}
		if len(v.Words) < 16 && !contains(v.Words, w.Text) {
			v.Words = append(v.Words, w.Text)
		}
		if w.Action == Mask {
			masks = append(masks, x)
		}
	})
	if len(masks) > 0 && v.Action != Block {
		slices.SortFunc(masks, func(a, b Match) int { return a.Start - b.Start })
		v.Text = mask(text, masks)
	}
	return v
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// mask replaces the runes the matches cover with '*'.
func mask(text string, ms []Match) string {
	var b strings.Builder
	b.Grow(len(text))
	i, j := 0, 0 // rune index; next match
	end := -1    // masked up to (exclusive)
	for _, r := range text {
		for j < len(ms) && ms[j].Start <= i {
			if ms[j].End > end {
				end = ms[j].End
			}
			j++
		}
		if i < end {
			b.WriteByte('*')
		} else {
			b.WriteRune(r)
		}
		i++
	}
	return b.String()
}
