package message

import (
	"encoding/json"
	"testing"
)

func TestSafeLink(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://example.com/a?b=c#d", true},
		{"http://例え.jp/", true},
		{"HTTPS://EXAMPLE.COM", true},
		{"mailto:bob@example.com", true},
		{"javascript:alert(1)", false},
		{"JavaScript:alert(1)", false},
		{"java\tscript:alert(1)", false},
		{" javascript:alert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"vbscript:msgbox", false},
		{"//evil.example/x", false},
		{"/relative", false},
		{"https://user:pass@example.com/", false},
		{"https:///nohost", false},
		{"mailto:", false},
		{"ftp://example.com/", false},
	}
	for _, tt := range tests {
		if got := safeLink(tt.url); got != tt.ok {
			t.Errorf("safeLink(%q) = %v, want %v", tt.url, got, tt.ok)
		}
	}
}

// FuzzNormalize: whatever a client sends as content, normalize never panics and
// what it accepts is valid JSON within the size bound, with only safe links.
func FuzzNormalize(f *testing.F) {
	f.Add("rich", `{"text":"hi","spans":[{"start":0,"end":2,"style":"link","url":"https://x.io"}]}`)
	f.Add("rich", `{"text":"hi","spans":[{"start":0,"end":2,"style":"link","url":"javascript:alert(1)"}]}`)
	f.Add("text", `{"text":"hello"}`)
	f.Add("rich", `{"text":"@a","mentions":[1,2],"reply_to":3}`)
	f.Fuzz(func(t *testing.T, typ, raw string) {
		out, rich, err := normalize(typ, json.RawMessage(raw), 5000)
		if err != nil {
			return
		}
		if !json.Valid(out) || len(out) > 64<<10 {
			t.Fatalf("accepted %q as %q", raw, out)
		}
		if rich != nil {
			for _, s := range rich.Spans {
				if s.URL != "" && !safeLink(s.URL) {
					t.Fatalf("accepted link %q", s.URL)
				}
			}
		}
	})
}
