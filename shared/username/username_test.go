package username

import "testing"

func TestCanonical(t *testing.T) {
	tests := []struct {
		in, want string // want "": invalid
	}{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"ALICE_2.x-y", "alice_2.x-y"},
		{"ｓｅｃ＿ａｌｉｃｅ", "sec_alice"}, // full width
		{"sec_alİce", ""},          // dotted capital I: not folded into "alice"
		{"sec_alıce", ""},          // dotless i
		{"al ice", ""},
		{"al\u200bice", ""}, // zero-width space
		{"ab", ""},
		{"", ""},
		{"ａｂ", ""},
		{"café", ""},
	}
	for _, tt := range tests {
		got, err := Canonical(tt.in)
		if (tt.want == "") != (err != nil) || got != tt.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
