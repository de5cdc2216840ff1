package scenario

import (
	"strconv"
	"testing"
)

func TestAtoi(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"1764691200123456789", 1764691200123456789, true},
		{strconv.FormatInt(1<<63-1, 10), 1<<63 - 1, true},
		{"9223372036854775808", 0, false}, // MaxInt64 + 1
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"12a", 0, false},
		{"1.5", 0, false},
	}
	for _, tt := range tests {
		got, ok := atoi([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("atoi(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestFieldRest(t *testing.T) {
	push := []byte(`{"conv_id":"g:12","seq":7,"id":"99","sender":3,"client_msg_id":"Lab-1.2.3","type":"text","content":{"text":"\"seq\":1"}}`)
	conv, rest, ok1 := fieldRest(push, "conv_id")
	seq, rest, ok2 := fieldRest(rest, "seq")
	cmid, _, ok3 := fieldRest(rest, "client_msg_id")
	if !ok1 || !ok2 || !ok3 || string(conv) != "g:12" || string(seq) != "7" || string(cmid) != "Lab-1.2.3" {
		t.Errorf("got %q %q %q (%v %v %v)", conv, seq, cmid, ok1, ok2, ok3)
	}
	// Out of encoding order, a key is not found after the one before it.
	if _, _, ok := fieldRest(rest, "conv_id"); ok {
		t.Error("conv_id found after client_msg_id")
	}
	if _, _, ok := fieldRest([]byte(`{"client_msg_id":"a\"b"}`), "client_msg_id"); ok {
		t.Error("an escaped string was read")
	}
}
