package search

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Tokens are produced here, in Go, not by the database: MariaDB has no ngram
// parser and InnoDB's minimum token size and stopwords are server settings, so
// the index stores 64-bit tokens the indexer computed.
//
//   - Text is normalised rune by rune: full-width forms folded to their ASCII
//     forms, lower-cased, and Latin, Greek and Cyrillic letters stripped of
//     their accents (NFD, combining marks dropped). Hangul and kana are left
//     whole (decomposing them would split syllables).
//   - Runs of letters and digits of alphabetic scripts are words; runs of CJK
//     ideographs, kana and Hangul (written without spaces) are split into
//     pairs of neighbours, the run's last character standing alone.
//   - A token is the first 8 bytes of a word's or a pair's UTF-8, big-endian,
//     zero-padded: one token per word and per CJK character. Their order is
//     the order of the text, so the tokens a prefix begins are one range: a
//     query word looks up the range of words it begins ("meet" finds
//     "meeting"), a single CJK character the pairs it starts, a longer CJK
//     run the exact tokens of its pairs. What the 8 bytes cannot tell apart
//     (longer words, pairs apart in the text) is checked against the stored
//     text, so "会议纪要" finds "明天的会议纪要发一下" but not a text holding
//     会议 and 纪要 apart.
//
// One token a word, rather than a hash per prefix, is what keeps the index
// writes small: a message of ten words is ten postings, not forty.

// normRune is one rune of normalised text and where its source rune starts in
// the original text (bytes).
type normRune struct {
	r   rune
	off int
}

// normalize folds text for matching, keeping for each rune the offset of the
// original rune it came from (an accented letter may become one rune, a
// ligature several).
func normalize(s string) []normRune {
	out := make([]normRune, 0, len(s))
	var buf [8]rune
	for off, r := range s {
		for _, f := range foldRune(r, buf[:0]) {
			out = append(out, normRune{f, off})
		}
	}
	return out
}

// foldRune appends r's folded form to dst.
func foldRune(r rune, dst []rune) []rune {
	if r >= 0xFF00 && r <= 0xFFEF { // full-width and half-width forms
		if f, _ := utf8.DecodeRuneInString(width.Fold.String(string(r))); f != utf8.RuneError {
			r = f
		}
	}
	if r < 0x80 {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, r)
	}
	if unicode.In(r, unicode.Latin, unicode.Greek, unicode.Cyrillic) {
		var b [utf8.UTFMax]byte
		n := utf8.EncodeRune(b[:], r)
		for _, d := range norm.NFD.String(string(b[:n])) {
			if unicode.Is(unicode.Mn, d) {
				continue
			}
			dst = append(dst, unicode.ToLower(d))
		}
		return dst
	}
	return append(dst, unicode.ToLower(r))
}

// isCJK reports runes of scripts written without spaces between words.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) || r == 'ー'
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// segment is a word or a CJK run of normalised text: runes [start, end).
type segment struct {
	start, end int
	cjk        bool
}

// segments splits normalised text into words and CJK runs.
func segments(t []normRune) []segment {
	var out []segment
	for i := 0; i < len(t); {
		r := t[i].r
		switch {
		case isCJK(r):
			j := i + 1
			for j < len(t) && isCJK(t[j].r) {
				j++
			}
			out = append(out, segment{i, j, true})
			i = j
		case isWordRune(r):
			j := i + 1
			for j < len(t) && isWordRune(t[j].r) && !isCJK(t[j].r) {
				j++
			}
			out = append(out, segment{i, j, false})
			i = j
		default:
			i++
		}
	}
	return out
}

// Token is up to 8 bytes of a word or a CJK pair, big-endian, zero-padded.
type Token uint64

// TokenRange is the tokens one query term matches: [Lo, Hi].
type TokenRange struct{ Lo, Hi Token }

// tokenBytes is how many bytes of a word a token holds.
const tokenBytes = 8

// appendRunes appends the UTF-8 of rs to dst.
func appendRunes(dst []byte, rs []rune) []byte {
	for _, r := range rs {
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// pack makes the token of b's first tokenBytes bytes.
func pack(b []byte) Token {
	var t uint64
	for i := range tokenBytes {
		t <<= 8
		if i < len(b) {
			t |= uint64(b[i])
		}
	}
	return Token(t)
}

// prefixRange is the range of tokens whose bytes begin with b (cut to
// tokenBytes: a longer b is one token).
func prefixRange(b []byte) TokenRange {
	b = b[:min(len(b), tokenBytes)]
	lo := pack(b)
	free := 8 * (tokenBytes - len(b))
	if free == 0 {
		return TokenRange{lo, lo}
	}
	return TokenRange{lo, lo | Token(uint64(1)<<free-1)}
}

func runesOf(t []normRune, s segment) []rune {
	rs := make([]rune, s.end-s.start)
	for i := range rs {
		rs[i] = t[s.start+i].r
	}
	return rs
}

// Tokens returns the distinct tokens that index text.
func Tokens(text string) []Token {
	t := normalize(text)
	seen := map[Token]struct{}{}
	var out []Token
	add := func(tok Token) {
		if _, dup := seen[tok]; !dup {
			seen[tok] = struct{}{}
			out = append(out, tok)
		}
	}
	var buf []byte
	for _, s := range segments(t) {
		rs := runesOf(t, s)
		if !s.cjk {
			add(pack(appendRunes(buf[:0], rs)))
			continue
		}
		for i := range rs {
			add(pack(appendRunes(buf[:0], rs[i:min(i+2, len(rs))])))
		}
	}
	return out
}

// Query is a parsed search query: terms that must all appear.
type Query struct {
	terms []term
}

// term is one query word or CJK run, normalised.
type term struct {
	runes []rune
	cjk   bool
}

// ParseQuery splits q into terms (at most maxTerms; duplicates dropped).
func ParseQuery(q string) Query {
	t := normalize(q)
	var out Query
	seen := map[string]bool{}
	for _, s := range segments(t) {
		rs := runesOf(t, s)
		if k := string(rs); !seen[k] && len(out.terms) < maxTerms {
			seen[k] = true
			out.terms = append(out.terms, term{rs, s.cjk})
		}
	}
	return out
}

// maxTerms bounds the terms of a query (each is a join).
const maxTerms = 8

// Empty reports a query with no term (only punctuation or spaces).
func (q Query) Empty() bool { return len(q.terms) == 0 }

// Ranges are, for each term, the range of tokens a matching text holds one
// of (a superset of the matches: Match decides), the likely rarest first: the
// index reads the first one's postings and checks the others for each.
// Rarity is guessed from the term: a longer word is rarer than a short one
// (whose range every longer word starting so falls in), a CJK pair about as
// rare as a four-letter word, a single CJK character common.
func (q Query) Ranges() []TokenRange {
	seen := map[TokenRange]bool{}
	var out []TokenRange
	add := func(r TokenRange) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	terms := slices.Clone(q.terms)
	slices.SortStableFunc(terms, func(a, b term) int { return rarity(b) - rarity(a) })
	var buf []byte
	for _, tm := range terms {
		if tm.cjk && len(tm.runes) > 1 {
			for i := 0; i+1 < len(tm.runes); i++ {
				tok := pack(appendRunes(buf[:0], tm.runes[i:i+2]))
				add(TokenRange{tok, tok})
			}
			continue
		}
		// A word, or one CJK character: the tokens it begins.
		add(prefixRange(appendRunes(buf[:0], tm.runes)))
	}
	return out
}

func rarity(t term) int {
	switch {
	case t.cjk && len(t.runes) == 1:
		return 1
	case t.cjk:
		return 4 + len(t.runes)
	}
	return len(t.runes)
}

// span is a match in a text: bytes [start, end) of the original.
type span struct{ start, end int }

// Match reports whether text holds every term (a word term at the start of a
// word, a CJK term anywhere in a CJK run) and where (the original text's
// bytes), for highlighting.
func (q Query) Match(text string) ([]span, bool) {
	if q.Empty() {
		return nil, false
	}
	t := normalize(text)
	segs := segments(t)
	var spans []span
	for _, tm := range q.terms {
		found := false
		for _, s := range segs {
			if s.cjk != tm.cjk || s.end-s.start < len(tm.runes) {
				continue
			}
			last := s.start // a word matches at its start only
			if s.cjk {
				last = s.end - len(tm.runes)
			}
			for i := s.start; i <= last; i++ {
				if equalAt(t, i, tm.runes) {
					found = true
					end := len(text)
					if k := i + len(tm.runes); k < len(t) {
						end = t[k].off
					}
					spans = append(spans, span{t[i].off, end})
				}
			}
		}
		if !found {
			return nil, false
		}
	}
	return mergeSpans(spans), true
}

func equalAt(t []normRune, i int, rs []rune) bool {
	for k, r := range rs {
		if t[i+k].r != r {
			return false
		}
	}
	return true
}

// mergeSpans sorts spans and merges those that overlap.
func mergeSpans(in []span) []span {
	for i := 1; i < len(in); i++ { // insertion sort: a handful of spans
		for j := i; j > 0 && in[j].start < in[j-1].start; j-- {
			in[j], in[j-1] = in[j-1], in[j]
		}
	}
	out := in[:0]
	for _, s := range in {
		if n := len(out); n > 0 && s.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// Snippet is a piece of a text around its matches, with the matches marked.
type Snippet struct {
	Text string `json:"text"`
	// Highlights are [start, end) offsets in Text, in Unicode code points.
	Highlights [][2]int `json:"highlights"`
}

// snippetRunes bounds a snippet's length.
const snippetRunes = 80

// snippet cuts text to about snippetRunes runes, starting a little before the
// first match, "…" marking what was cut, and converts the spans that fall in it.
func snippet(text string, spans []span) Snippet {
	runes := utf8.RuneCountInString(text)
	from := 0 // byte offset where the snippet starts
	if len(spans) > 0 && runes > snippetRunes {
		// Start up to 20 runes before the first match.
		back := 0
		from = spans[0].start
		for from > 0 && back < 20 {
			_, n := utf8.DecodeLastRuneInString(text[:from])
			from -= n
			back++
		}
	}
	to, n := from, 0
	for to < len(text) && n < snippetRunes {
		_, size := utf8.DecodeRuneInString(text[to:])
		to += size
		n++
	}
	var b strings.Builder
	prefix := 0
	if from > 0 {
		b.WriteString("…")
		prefix = 1
	}
	b.WriteString(text[from:to])
	if to < len(text) {
		b.WriteString("…")
	}
	out := Snippet{Text: b.String(), Highlights: [][2]int{}}
	for _, s := range spans {
		if s.end <= from || s.start >= to {
			continue
		}
		st, en := max(s.start, from), min(s.end, to)
		a := prefix + utf8.RuneCountInString(text[from:st])
		out.Highlights = append(out.Highlights, [2]int{a, a + utf8.RuneCountInString(text[st:en])})
	}
	return out
}
