package gateway

import (
	"testing"

	"natter/shared/wire"
)

func TestLeadingID(t *testing.T) {
	tests := []struct {
		frame, want string
	}{
		{`{"id":"c1","op":"ping"}`, "c1"},
		{" \t\r\n{ \"id\" :\n \"c-2:x\" , \"op\":", "c-2:x"},
		{`{"id":"","op":"ping"}`, ""},
		{`{"id":"é€","op":"ping"}`, "é€"},
		{`{"op":"ping","id":"c1"}`, ""}, // not first
		{`{"id":"a\"b"}`, ""},           // escaped: needs a parser
		{"{\"id\":\"a\x01b\"}", ""},     // control character: not JSON
		{"{\"id\":\"a\xffb\"}", ""},     // not UTF-8
		{`{"id":"unterminated`, ""},
		{`{"id":12}`, ""},
		{`{"idx":"c1"}`, ""},
		{`["id","c1"]`, ""},
		{``, ""},
		{`{"id":"` + string(make([]byte, 200)) + `"}`, ""},
	}
	for _, tt := range tests {
		if got := leadingID([]byte(tt.frame)); got != tt.want {
			t.Errorf("leadingID(%q) = %q, want %q", tt.frame, got, tt.want)
		}
	}
	long := `{"id":"`
	for range wire.MaxID {
		long += "x"
	}
	if got := leadingID([]byte(long + `"}`)); len(got) != wire.MaxID {
		t.Errorf("an id of %d bytes: got %d bytes", wire.MaxID, len(got))
	}
}
