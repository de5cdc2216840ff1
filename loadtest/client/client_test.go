package client

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
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

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{4, 500 * time.Millisecond, time.Second},
		{62, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 100 {
			if d := b.Delay(tt.attempt); d < tt.min || d > tt.max {
				t.Fatalf("Delay(%d) = %v, want [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
		}
	}
	if d := (Backoff{}).Delay(0); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("default Delay(0) = %v", d)
	}
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&DialError{Status: http.StatusUnauthorized}, true},
		{&DialError{Status: http.StatusConflict}, true},
		{&DialError{Status: http.StatusTooManyRequests}, false},
		{&DialError{Status: http.StatusServiceUnavailable}, false},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
	}
	for _, tt := range tests {
		if got := permanent(tt.err); got != tt.want {
			t.Errorf("permanent(%v) = %v", tt.err, got)
		}
	}
}
