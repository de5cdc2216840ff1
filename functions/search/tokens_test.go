package search

import (
	"slices"
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
		// Past a token's 8 bytes the text decides.
		{"meetingrooms", "Meetingroomsbooked", true},
		{"meetingroomsx", "the meetingrooms", false},
		{"internationalization", "internationally", false},
		// One CJK character, wherever it stands in its run.
		{"点", "明天的meeting改到3点", true},
		{"到", "改到3点", true},
		{"改", "改到3点", true},
		{"会", "开会", true},
		{"회", "내일 회의는", true},
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
		// Whatever matches holds a token of every range the query looks up:
		// the index finds it.
		toks := Tokens(tt.text)
		for _, r := range q.Ranges() {
			if !slices.ContainsFunc(toks, func(tok Token) bool { return r.Lo <= tok && tok <= r.Hi }) {
				t.Errorf("%q in %q: the text has no token in %x-%x", tt.query, tt.text, r.Lo, r.Hi)
			}
		}
	}
}

// TestTokens: one token a word and a CJK character, so a message costs the
// index a posting a word; tokens sort as their text does.
func TestTokens(t *testing.T) {
	for text, want := range map[string]int{
		"Project meeting at noon":          4,
		"明天的会议":                            5,
		"meeting MEETING meeting.":         1,
		"明天的meeting改到3点":                   8, // 明天 天的 的 meeting 改到 到 3 点
		"internationalization, internally": 2,
	} {
		if got := len(Tokens(text)); got != want {
			t.Errorf("%q: %d tokens, want %d", text, got, want)
		}
	}
	r := ParseQuery("meet").Ranges()[0]
	for _, w := range []string{"meet", "meeting", "meetingroomsbooked"} {
		if tok := Tokens(w)[0]; tok < r.Lo || tok > r.Hi {
			t.Errorf("%q is not in the range of meet", w)
		}
	}
	for _, w := range []string{"mee", "meeu", "mefting"} {
		if tok := Tokens(w)[0]; tok >= r.Lo && tok <= r.Hi {
			t.Errorf("%q is in the range of meet", w)
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
