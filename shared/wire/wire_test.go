package wire

import (
	"encoding/json"
	"testing"

	"natter/shared/imerr"
)

func TestAppendReply(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want Reply
	}{
		{"ok", AppendReplyOK(nil, `c"1`, []byte(`{"seq":3}`)), Reply{ID: `c"1`, OK: true, Data: json.RawMessage(`{"seq":3}`)}},
		{"ok empty", AppendReplyOK(nil, "c2", nil), Reply{ID: "c2", OK: true}},
		{"error", AppendReplyError(nil, "c3", imerr.New(imerr.Forbidden, "not yours")), Reply{ID: "c3", Error: &imerr.Error{Code: imerr.Forbidden, Message: "not yours"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reply
			if err := json.Unmarshal(tt.got, &r); err != nil {
				t.Fatalf("invalid JSON %s: %v", tt.got, err)
			}
			if r.ID != tt.want.ID || r.OK != tt.want.OK || string(r.Data) != string(tt.want.Data) {
				t.Fatalf("got %s, want %+v", tt.got, tt.want)
			}
			if (r.Error == nil) != (tt.want.Error == nil) || (r.Error != nil && *r.Error != *tt.want.Error) {
				t.Fatalf("error: got %+v, want %+v", r.Error, tt.want.Error)
			}
		})
	}
}
