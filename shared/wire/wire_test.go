package wire

import (
	"bytes"
	"encoding/json"
	"strings"
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
		// strconv.Quote wrote these as \x01, \x7f and \xff: not JSON.
		{"control characters", AppendReplyOK(nil, "a\x01b\x1f\x00", nil), Reply{ID: "a\x01b\x1f\x00", OK: true}},
		{"DEL", AppendReplyOK(nil, "x\x7fy", []byte(`1`)), Reply{ID: "x\x7fy", OK: true, Data: json.RawMessage(`1`)}},
		{"invalid UTF-8", AppendReplyOK(nil, "a\xffb", nil), Reply{ID: "a\ufffdb", OK: true}},
		{"separators", AppendReplyOK(nil, "\u2028\u2029<&>", nil), Reply{ID: "\u2028\u2029<&>", OK: true}},
		{"error with odd id", AppendReplyError(nil, "\x01\x7f\"\\", imerr.New(imerr.BadRequest, "bad\n\x02")), Reply{ID: "\x01\x7f\"\\", Error: &imerr.Error{Code: imerr.BadRequest, Message: "bad\n\x02"}}},
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

// TestAppendStringAsEncodingJSON: ids are escaped byte for byte as encoding/json
// escapes them, so both reply kinds spell an id the same way.
func TestAppendStringAsEncodingJSON(t *testing.T) {
	var all strings.Builder
	for b := range 256 {
		all.WriteByte(byte(b))
	}
	for _, s := range []string{"", "plain-id:1", all.String(), "é\u2028ü\u2029€\U0001F600", "\xed\xa0\x80", "\xf4\x90\x80\x80"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendReplyOKAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	data := []byte(`{"seq":3,"conv_id":"d:1:2"}`)
	if n := testing.AllocsPerRun(100, func() { dst = AppendReplyOK(dst[:0], "c\x01<1>", data) }); n != 0 {
		t.Fatalf("%v allocations per reply, want 0", n)
	}
	e := imerr.New(imerr.RateLimited, "too many frames: slow down")
	if n := testing.AllocsPerRun(100, func() { dst = AppendReplyError(dst[:0], "c1", e) }); n != 0 {
		t.Fatalf("%v allocations per error reply, want 0", n)
	}
}

// FuzzAppendReply: whatever the id, code and message, a reply is JSON that
// decodes to them (invalid UTF-8 reads back as U+FFFD, byte by byte), and valid
// JSON data comes back as sent. Error replies are what encoding/json writes.
func FuzzAppendReply(f *testing.F) {
	f.Add("c1", []byte(`{"seq":3}`), "forbidden", "not yours")
	f.Add("\x01\x7f\"\\", []byte(``), "bad_request", "\n")
	f.Add("\xff\xfe<&>\u2028", []byte(` [1, "\u0001"] `), "", "\xc3")
	f.Fuzz(func(t *testing.T, id string, data []byte, code, message string) {
		valid := func(s string) string { return string([]rune(s)) } // what JSON keeps of s

		b := AppendReplyOK(nil, id, data)
		if json.Valid(data) {
			var r Reply
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("ok reply %q is not JSON: %v", b, err)
			}
			want := bytes.Trim(data, " \t\r\n")
			if r.ID != valid(id) || !r.OK || !bytes.Equal(r.Data, want) || r.Error != nil {
				t.Fatalf("ok reply %q decodes to %+v, want id %q data %q", b, r, valid(id), want)
			}
		}

		e := &imerr.Error{Code: imerr.Code(code), Message: message}
		b = AppendReplyError(nil, id, e)
		want, _ := json.Marshal(Reply{ID: id, Error: e})
		if !bytes.Equal(b, want) {
			t.Fatalf("error reply %q, encoding/json writes %q", b, want)
		}
		var r Reply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("error reply %q is not JSON: %v", b, err)
		}
		if r.ID != valid(id) || r.OK || r.Error == nil || string(r.Error.Code) != valid(code) || r.Error.Message != valid(message) {
			t.Fatalf("error reply %q decodes to %+v", b, r)
		}
	})
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 150)
	tests := []struct {
		m    Message
		want string
	}{
		{Message{Type: TypeText, Content: []byte(`{"text":"hi"}`)}, "hi"},
		{Message{Type: TypeRich, Content: []byte(`{"text":"` + long + `"}`)}, strings.Repeat("é", 100) + "…"},
		{Message{Type: TypeImage, Content: []byte(`{"file_id":"1","name":"a.png"}`)}, "[Image]"},
		{Message{Type: TypeFile, Content: []byte(`{"file_id":"1","name":"report.pdf"}`)}, "[File] report.pdf"},
		{Message{Type: TypeVoice}, "[Voice]"},
		{Message{Type: TypeVideo}, "[Video]"},
		{Message{Type: TypeSticker}, "[Sticker]"},
		{Message{Type: TypeSystem, Content: []byte(`{"event":"member.joined"}`)}, ""},
		{Message{Type: TypeImage, Recalled: true}, "[Recalled]"},
	}
	for _, tt := range tests {
		if got := Preview(&tt.m); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.m.Type, tt.m.Content, got, tt.want)
		}
	}
}

// TestDecodeSent reads both forms of im.evt.message.sent.
func TestDecodeSent(t *testing.T) {
	one, _ := json.Marshal(MessageSent{Message: Message{ConvID: "d:1:2", Seq: 4}, Mentions: []int64{2}})
	many, _ := json.Marshal(MessagesSent{Messages: []MessageSent{{Message: Message{ConvID: "d:1:2", Seq: 5}}, {Message: Message{ConvID: "g:3", Seq: 1}, MentionAll: true}}})
	got, err := DecodeSent(one)
	if err != nil || len(got) != 1 || got[0].Seq != 4 || len(got[0].Mentions) != 1 {
		t.Fatalf("one: %+v %v", got, err)
	}
	got, err = DecodeSent(many)
	if err != nil || len(got) != 2 || got[0].Seq != 5 || got[1].ConvID != "g:3" || !got[1].MentionAll {
		t.Fatalf("many: %+v %v", got, err)
	}
	if _, err := DecodeSent([]byte(`{"messages":`)); err == nil {
		t.Fatal("truncated event decoded")
	}
}
