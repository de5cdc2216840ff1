package search

import (
	"testing"
)

// TestMatch: the query rules on texts alone (the index only narrows the
// candidates to these checks).
func TestMatch(t *testing.T) {
	tests := []struct {
		query, text string
		want        bool
	}{
		{"会议纪要", "明天的会议纪要发一下", true},
		{"纪要", "明天的会议纪要发一下", true},
		{"会", "明天的会议纪要发一下", true},
		{"会议纪要", "会议很长，纪要明天发", false}, // both bigrams, not together
		{"meeting", "Project MEETING at noon", true},
		{"meet", "Project meeting at noon", true},   // a prefix
		{"eting", "Project meeting at noon", false}, // not a word's start
		{"project noon", "Project meeting at noon", true},
		{"project lunch", "Project meeting at noon", false},
		{"cafe", "Lunch at the Café?", true}, // accents folded
		{"CAFÉ", "lunch at the cafe", true},
		{"ｍｅｅｔｉｎｇ", "meeting", true}, // full-width folded
		{"明天 meeting", "明天的meeting改到3点", true},
		{"meeting 3", "明天的meeting改到3点", true},
		{"会議", "明日の会議は10時から", true},   // Japanese
		{"회의", "내일 회의는 10시입니다", true}, // Korean
		{"!!", "anything", false},
	}
	for _, tt := range tests {
		q := ParseQuery(tt.query)
		_, got := q.Match(tt.text)
		if got != tt.want {
			t.Errorf("%q in %q: got %v, want %v", tt.query, tt.text, got, tt.want)
		}
		if !got {
			continue
		}
		// Whatever matches holds every token the query looks up: the index
		// finds it.
		have := map[Token]bool{}
		for _, tok := range Tokens(tt.text) {
			have[tok] = true
		}
		for _, tok := range q.Tokens() {
			if !have[tok] {
				t.Errorf("%q in %q: the text lacks a query token", tt.query, tt.text)
			}
		}
	}
}

func TestSnippet(t *testing.T) {
	text := "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua 会议纪要 end"
	spans, ok := ParseQuery("会议纪要").Match(text)
	if !ok {
		t.Fatal("no match")
	}
	sn := snippet(text, spans)
	if len(sn.Highlights) != 1 {
		t.Fatalf("highlights %v", sn.Highlights)
	}
	r := []rune(sn.Text)
	h := sn.Highlights[0]
	if got := string(r[h[0]:h[1]]); got != "会议纪要" {
		t.Fatalf("highlight %q in %q", got, sn.Text)
	}
	if r[0] != '…' {
		t.Fatalf("snippet %q should start with an ellipsis", sn.Text)
	}
	short, _ := ParseQuery("cafe").Match("Café au lait")
	if sn := snippet("Café au lait", short); sn.Text != "Café au lait" || sn.Highlights[0] != [2]int{0, 4} {
		t.Fatalf("snippet %+v", sn)
	}
}
