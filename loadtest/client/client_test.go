package client

import (
	"testing"
)

func TestSplitFrames(t *testing.T) {
	tests := []struct {
		in         string
		push       bool
		event, out string
		reply      bool
		id         string
	}{
		{in: `{"event":"msg.new","data":{"conv_id":"d:1:2","seq":3}}`, push: true, event: "msg.new", out: `{"conv_id":"d:1:2","seq":3}`},
		{in: `{"event":"session.kicked","data":null}`, push: true, event: "session.kicked", out: `null`},
		{in: `{"event":"a\"b","data":{}}`},
		{in: `{"id":"1z","ok":true,"data":{"seq":4}}`, reply: true, id: "1z", out: `{"seq":4}`},
		{in: `{"id":"x","ok":true}`, reply: true, id: "x"},
		{in: `{"id":"x","ok":false,"error":{"code":"forbidden","message":"no"}}`},
		{in: `{"id":"x\"y","ok":true}`},
		{in: `{"ok":true,"id":"x"}`},
		{in: `{}`},
	}
	for _, tt := range tests {
		ev, data, ok := splitPush([]byte(tt.in))
		if ok != tt.push || (ok && (string(ev) != tt.event || string(data) != tt.out)) {
			t.Errorf("splitPush(%s) = %q, %q, %v", tt.in, ev, data, ok)
		}
		f, ok := splitReplyOK([]byte(tt.in))
		if ok != tt.reply || (ok && (f.ID != tt.id || string(f.Data) != tt.out || !f.OK)) {
			t.Errorf("splitReplyOK(%s) = %+v, %v", tt.in, f, ok)
		}
	}
}
