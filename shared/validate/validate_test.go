package validate

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	tests := []struct {
		s  string
		ok bool
	}{{"", true}, {"héllo", true}, {strings.Repeat("字", 5), true}, {strings.Repeat("字", 6), false}, {"\xff", false}}
	for _, tt := range tests {
		if err := Text("f", tt.s, 5); (err == nil) != tt.ok {
			t.Errorf("Text(%q) = %v", tt.s, err)
		}
	}
}

func TestToken(t *testing.T) {
	for s, ok := range map[string]bool{"a": true, "c-1.x:y_z": true, "": false, "a b": false, strings.Repeat("a", 65): false, "ü": false} {
		if err := Token("f", s); (err == nil) != ok {
			t.Errorf("Token(%q) = %v", s, err)
		}
	}
}

func TestName(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"Alice", true}, {"李雷", true}, {"عمر", true}, {"👨‍👩‍👧 family", true},
		{"evil\u202emoc", false}, {"a\u2066b", false}, {"tab\there", false}, {"nl\n", false}, {"bell\a", false}, {"x\u200fy", false},
	} {
		if err := Name("nickname", tt.s, 64); (err == nil) != tt.ok {
			t.Errorf("Name(%q): %v, want ok=%v", tt.s, err, tt.ok)
		}
	}
}
