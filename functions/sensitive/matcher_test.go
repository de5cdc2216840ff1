package sensitive

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	m := Build([]Word{
		{"bad", Mask}, {"badword", Block}, {"敏感词", Mask}, {"违禁", Block}, {"spam", Review},
		{"he", Mask}, {"she", Mask}, {"hers", Mask}, {"ＦＵＬＬ", Mask}, {"", Block},
	})
	tests := []struct {
		name, in string
		action   Action
		out      string
	}{
		{"clean", "good morning", None, "good morning"},
		{"empty", "", None, ""},
		{"mask", "a bad day", Mask, "a *** day"},
		{"case folded", "a BaD day", Mask, "a *** day"},
		{"full-width input", "a ｂａｄ day", Mask, "a *** day"},
		{"full-width word, half-width input", "full stop", Mask, "**** stop"},
		{"block wins", "a badword", Block, "a badword"},
		{"chinese mask", "这是敏感词吗", Mask, "这是***吗"},
		{"chinese block", "含有违禁内容", Block, "含有违禁内容"},
		{"review passes, masks the rest", "buy spam, bad", Review, "buy spam, ***"},
		{"overlaps", "ushers", Mask, "u*****"},
		{"adjacent", "badbad", Mask, "******"},
		{"mixed scripts", "ＢＡＤ敏感词", Mask, "******"},
		{"ideographic space is a space", "bad　x", Mask, "***　x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := m.Check(tt.in)
			if v.Action != tt.action || v.Text != tt.out {
				t.Errorf("Check(%q) = %v %q, want %v %q", tt.in, v.Action, v.Text, tt.action, tt.out)
			}
		})
	}
	if v := m.Check("bad spam bad"); len(v.Words) != 2 {
		t.Errorf("words %v, want each once", v.Words)
	}
	if m.Len() != 9 {
		t.Errorf("Len %d, want 9 (the empty word skipped)", m.Len())
	}
	// A state with 26 edges (bisected): each is found, and a rune between two
	// is not.
	var wide []Word
	for c := 'a'; c <= 'z'; c += 2 {
		wide = append(wide, Word{"q" + string(c) + "!", Mask})
	}
	for c := 'a'; c <= 'z'; c++ {
		wide = append(wide, Word{"q" + string(c), Review})
	}
	w := Build(wide)
	if v := w.Check("qa! qm! qz qb! q"); v.Action != Review || v.Text != "*** *** qz qb! q" {
		t.Errorf("wide state: %v %q", v.Action, v.Text)
	}
	var empty *Matcher
	if v := empty.Check("bad"); v.Action != None {
		t.Error("a nil matcher matched")
	}
}

// TestCheckAgainstNaive compares the automaton with a naive search on random
// words and texts over a small alphabet (many overlaps).
func TestCheckAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	// A small alphabet makes many overlaps; a wide one gives states of more
	// than 8 edges (searched by bisection).
	small, wide := []rune("abcAB敏感"), []rune("abcdefghijklmnopqrstuvwxyz0123456789敏感词违禁品")
	alpha := small
	str := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	for round := range 400 {
		alpha = small
		nwords := 1 + r.IntN(8)
		if round%2 == 1 {
			alpha, nwords = wide, 50+r.IntN(200)
		}
		var words []Word
		for range nwords {
			words = append(words, Word{str(1 + r.IntN(4)), Action(1 + r.IntN(3))})
		}
		m := Build(words)
		text := str(r.IntN(300))
		got := m.Check(text)
		want := naive(words, text)
		if got.Action != want.Action || got.Text != want.Text {
			t.Fatalf("round %d words %v text %q: got %v %q, want %v %q", round, words, text, got.Action, got.Text, want.Action, want.Text)
		}
	}
}

func naive(words []Word, text string) Verdict {
	folded := []rune(FoldString(text))
	orig := []rune(text)
	v := Verdict{}
	masked := make([]bool, len(orig))
	for _, w := range words {
		fw := []rune(FoldString(w.Text))
		for i := 0; i+len(fw) <= len(folded); i++ {
			if string(folded[i:i+len(fw)]) == string(fw) {
				v.Action = max(v.Action, w.Action)
				if w.Action == Mask {
					for j := i; j < i+len(fw); j++ {
						masked[j] = true
					}
				}
			}
		}
	}
	// A word listed twice keeps its strongest action, so mask only where the
	// strongest action of that word is Mask.
	strongest := map[string]Action{}
	for _, w := range words {
		f := FoldString(w.Text)
		strongest[f] = max(strongest[f], w.Action)
	}
	for i := range masked {
		masked[i] = false
	}
	for f, a := range strongest {
		if a != Mask {
			continue
		}
		fw := []rune(f)
		for i := 0; i+len(fw) <= len(folded); i++ {
			if string(folded[i:i+len(fw)]) == f {
				for j := i; j < i+len(fw); j++ {
					masked[j] = true
				}
			}
		}
	}
	out := make([]rune, len(orig))
	for i, c := range orig {
		out[i] = c
		if masked[i] && v.Action != Block {
			out[i] = '*'
		}
	}
	v.Text = string(out)
	return v
}

// benchWords makes n distinct words: a mix of Chinese (2-4 characters) and
// English (4-10 letters).
func benchWords(n int) []Word {
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	var out []Word
	for len(out) < n {
		var b strings.Builder
		if r.IntN(2) == 0 {
			for range 2 + r.IntN(3) {
				b.WriteRune(rune(0x4E00 + r.IntN(3000)))
			}
		} else {
			for range 4 + r.IntN(7) {
				b.WriteRune(rune('a' + r.IntN(26)))
			}
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, Word{w, Action(1 + r.IntN(3))})
		}
	}
	return out
}

// benchText is a 500-character message: Chinese and English mixed, built from
// the same alphabets so that partial matches happen.
func benchText() string {
	r := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	for i := 0; i < 500; i++ {
		if (i/20)%2 == 0 {
			b.WriteRune(rune(0x4E00 + r.IntN(3000)))
		} else if i%6 == 5 {
			b.WriteByte(' ')
		} else {
			b.WriteRune(rune('a' + r.IntN(26)))
		}
	}
	return b.String()
}

// BenchmarkCheck: 10,000 words, a 500-character message (docs/benchmarks.md).
func BenchmarkCheck(b *testing.B) {
	m := Build(benchWords(10000))
	text := benchText()
	b.Run("words=10000/chars=500", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.Check(text)
		}
	})
	clean := strings.Repeat("z", 500) // no word starts with z? still walks every rune
	b.Run("words=10000/chars=500/ascii", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.Check(clean)
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	words := benchWords(10000)
	b.ReportAllocs()
	for b.Loop() {
		_ = Build(words)
	}
}

func ExampleMatcher_Check() {
	m := Build([]Word{{"bad", Mask}, {"禁词", Block}})
	fmt.Println(m.Check("a ＢＡＤ day").Text)
	fmt.Println(m.Check("有禁词").Action)
	// Output:
	// a *** day
	// block
}
