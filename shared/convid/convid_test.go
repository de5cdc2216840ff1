package convid

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want ID
		ok   bool
	}{
		{"d:1:2", ID{Raw: "d:1:2", Kind: Direct, A: 1, B: 2}, true},
		{"g:42", ID{Raw: "g:42", Kind: Group, Group: 42}, true},
		{"d:2:1", ID{}, false},
		{"d:1:1", ID{}, false},
		{"d:01:2", ID{}, false},
		{"d:0:2", ID{}, false},
		{"g:0", ID{}, false},
		{"g:+4", ID{}, false},
		{"g:4:5", ID{}, false},
		{"x:1", ID{}, false},
		{"", ID{}, false},
	}
	for _, tt := range tests {
		got, err := Parse(tt.raw)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v ok=%v", tt.raw, got, err, tt.want, tt.ok)
		}
	}
	if OfDirect(9, 3).Raw != "d:3:9" || OfDirect(9, 3).Peer(9) != 3 || !OfDirect(9, 3).Has(3) || OfGroup(5).Has(5) {
		t.Fatal("OfDirect/Peer/Has")
	}
}
