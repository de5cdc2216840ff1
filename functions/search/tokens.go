package search

import (
	"hash/fnv"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Tokens are produced here, in Go, not by the database: MariaDB has no ngram
// parser and InnoDB's minimum token size and stopwords are server settings, so
// the index stores 64-bit hashes of tokens the indexer computed.
//
//   - Text is normalised rune by rune: full-width forms folded to their ASCII
//     forms, lower-cased, and Latin, Greek and Cyrillic letters stripped of
//     their accents (NFD, combining marks dropped). Hangul and kana are left
//     whole (decomposing them would split syllables).
//   - Runs of letters and digits of alphabetic scripts are words. A word is
//     indexed whole and by each prefix of 2 to maxPrefix runes, so a query word
//     matches words it begins ("meet" finds "meeting").
//   - Runs of CJK ideographs, kana and Hangul (written without spaces) are
//     indexed by every character (unigram) and every pair of neighbours
//     (bigram). A query run of one character looks its unigram up, a longer run
//     all its bigrams; the match is then checked against the stored text, so
//     "会议纪要" finds "明天的会议纪要发一下" but not a text holding 会议 and
//     纪要 apart.

// maxPrefix bounds the prefixes a word is indexed by; a longer query word is
// looked up by its first maxPrefix runes and checked against the text.
const maxPrefix = 12

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

// Token is the hash of one token.
type Token int64

func hashRunes(rs []rune) Token {
	h := fnv.New64a()
	var b [utf8.UTFMax]byte
	for _, r := range rs {
		n := utf8.EncodeRune(b[:], r)
		_, _ = h.Write(b[:n])
	}
	return Token(h.Sum64())
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
	for _, s := range segments(t) {
		rs := runesOf(t, s)
		if s.cjk {
			for i := range rs {
				add(hashRunes(rs[i : i+1]))
				if i+1 < len(rs) {
					add(hashRunes(rs[i : i+2]))
				}
			}
			continue
		}
		add(hashRunes(rs))
		for n := 2; n <= min(len(rs)-1, maxPrefix); n++ {
			add(hashRunes(rs[:n]))
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

// Tokens are the tokens every matching text holds (a superset of the matches:
// Match decides), the likely rarest first: the index reads the first one's
// postings and looks the others up for each. Rarity is guessed from the
// term: a longer word is rarer than a short one (whose prefix token every
// longer word starting so shares), a CJK pair about as rare as a four-letter
// word, a single CJK character common.
func (q Query) Tokens() []Token {
	seen := map[Token]bool{}
	var out []Token
	add := func(tok Token) {
		if !seen[tok] {
			seen[tok] = true
			out = append(out, tok)
		}
	}
	terms := slices.Clone(q.terms)
	slices.SortStableFunc(terms, func(a, b term) int { return rarity(b) - rarity(a) })
	for _, tm := range terms {
		switch {
		case tm.cjk && len(tm.runes) == 1:
			add(hashRunes(tm.runes))
		case tm.cjk:
			for i := 0; i+1 < len(tm.runes); i++ {
				add(hashRunes(tm.runes[i : i+2]))
			}
		case len(tm.runes) > maxPrefix:
			add(hashRunes(tm.runes[:maxPrefix]))
		default:
			add(hashRunes(tm.runes))
		}
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
