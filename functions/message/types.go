package message

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"natter/shared/validate"
	"natter/shared/wire"
)

// SendReq is msg.send. Exactly one of To (a user, for 1:1) and ConvID is set.
type SendReq struct {
	To          int64           `json:"to,omitempty"`
	ConvID      string          `json:"conv_id,omitempty"`
	ClientMsgID string          `json:"client_msg_id"`
	Type        string          `json:"type"`
	Content     json.RawMessage `json:"content"`
}

func (r *SendReq) Validate() error {
	if (r.To == 0) == (r.ConvID == "") {
		return errors.New("give exactly one of to and conv_id")
	}
	if r.To < 0 {
		return errors.New("to: invalid user id")
	}
	if err := validate.Token("client_msg_id", r.ClientMsgID); err != nil {
		return err
	}
	if len(r.Content) == 0 {
		return errors.New("content required")
	}
	return nil
}

// SendResp answers msg.send. A retry with the same client_msg_id gets the first
// send's answer with Duplicate set.
type SendResp struct {
	ConvID    string `json:"conv_id"`
	Seq       int64  `json:"seq"`
	ID        int64  `json:"id,string"`
	SentAt    int64  `json:"sent_at"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// TextContent is a text message's content.
type TextContent struct {
	Text string `json:"text"`
}

// RichContent is formatted text with optional mentions and a quoted message.
type RichContent struct {
	Text     string  `json:"text"`
	Spans    []Span  `json:"spans,omitempty"`
	Mentions []int64 `json:"mentions,omitempty"`
	// MentionAll is @all: owner and admins of a group only.
	MentionAll bool  `json:"mention_all,omitempty"`
	ReplyTo    int64 `json:"reply_to,omitempty"` // seq of the quoted message in this conversation
}

// Span formats Text[Start:End) (in Unicode code points).
type Span struct {
	Start int    `json:"start"`
	End   int    `json:"end"`
	Style string `json:"style"`
	URL   string `json:"url,omitempty"`
}

var spanStyles = map[string]bool{"bold": true, "italic": true, "underline": true, "strike": true, "code": true, "link": true}

const (
	maxSpans    = 256
	maxMentions = 100
	maxURL      = 2048
)

// normalize checks content for its type and returns it re-encoded from the typed
// struct, so what is stored is exactly what the server validated. Rich content is
// also returned decoded: the caller checks its mentions and reply against the
// conversation.
func normalize(typ string, raw json.RawMessage, maxRunes int) (json.RawMessage, *RichContent, error) {
	switch typ {
	case wire.TypeText:
		var c TextContent
		if err := strictDecode(raw, &c); err != nil {
			return nil, nil, err
		}
		if err := validContentText(c.Text, maxRunes); err != nil {
			return nil, nil, err
		}
		return encodeContent(c, nil)
	case wire.TypeRich:
		var c RichContent
		if err := strictDecode(raw, &c); err != nil {
			return nil, nil, err
		}
		if err := validContentText(c.Text, maxRunes); err != nil {
			return nil, nil, err
		}
		n := utf8.RuneCountInString(c.Text)
		if len(c.Spans) > maxSpans || len(c.Mentions) > maxMentions {
			return nil, nil, fmt.Errorf("content: at most %d spans and %d mentions", maxSpans, maxMentions)
		}
		for i, s := range c.Spans {
			if s.Start < 0 || s.End <= s.Start || s.End > n {
				return nil, nil, fmt.Errorf("content.spans[%d]: range outside the text", i)
			}
			if !spanStyles[s.Style] {
				return nil, nil, fmt.Errorf("content.spans[%d]: unknown style %q", i, s.Style)
			}
			if (s.Style == "link") != (s.URL != "") || len(s.URL) > maxURL {
				return nil, nil, fmt.Errorf("content.spans[%d]: url goes with style link only", i)
			}
			if s.URL != "" && !safeLink(s.URL) {
				return nil, nil, fmt.Errorf("content.spans[%d]: a link must be an absolute http, https or mailto URL", i)
			}
		}
		seen := make(map[int64]bool, len(c.Mentions))
		for i, m := range c.Mentions {
			if m <= 0 || seen[m] {
				return nil, nil, fmt.Errorf("content.mentions[%d]: invalid or repeated user id", i)
			}
			seen[m] = true
		}
		if c.ReplyTo < 0 {
			return nil, nil, errors.New("content.reply_to: invalid seq")
		}
		return encodeContent(c, &c)
	default:
		return nil, nil, fmt.Errorf("type: %q is not one of text, rich, image, file, voice, video, sticker", typ)
	}
}

// encodeContent re-encodes validated content, refusing content over
// wire.MaxContent bytes (long links in many spans can get there).
func encodeContent(c any, rich *RichContent) (json.RawMessage, *RichContent, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, nil, err
	}
	if len(b) > wire.MaxContent {
		return nil, nil, fmt.Errorf("content: %d bytes, over the %d a message may hold", len(b), wire.MaxContent)
	}
	return b, rich, nil
}

func strictDecode(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errors.New("content: malformed for its type")
	}
	return nil
}

func validContentText(s string, maxRunes int) error {
	if s == "" {
		return errors.New("content.text: empty")
	}
	return validate.Text("content.text", s, maxRunes)
}

// HistoryReq pages one conversation by seq. Without After it walks back: from
// the newest, or from Before (exclusive). With After it walks forward from there
// (exclusive): "after": 0 starts at the first message.
type HistoryReq struct {
	ConvID string `json:"conv_id"`
	Before int64  `json:"before,omitempty"`
	After  *int64 `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

func (r *HistoryReq) Validate() error {
	if r.ConvID == "" {
		return errors.New("conv_id required")
	}
	if r.Before < 0 || (r.After != nil && *r.After < 0) || r.Limit < 0 {
		return errors.New("before, after and limit must not be negative")
	}
	if r.Before > 0 && r.After != nil {
		return errors.New("give before or after, not both")
	}
	return nil
}

// HistoryResp holds messages in ascending seq order.
type HistoryResp struct {
	Messages []wire.Message `json:"messages"`
	HasMore  bool           `json:"has_more"`
}

// SyncReq asks for what a device missed: Cursors maps conversation id to the last
// seq the device holds (absent = 0: everything).
type SyncReq struct {
	Cursors map[string]int64 `json:"cursors"`
	// Mods maps conversation id to the last change number (SyncConv.LastMod) the
	// device holds, so edits, recalls and reactions of older messages reach it.
	Mods  map[string]int64 `json:"mods,omitempty"`
	Limit int              `json:"limit,omitempty"`
}

const maxCursors = 10000

func (r *SyncReq) Validate() error {
	if len(r.Cursors) > maxCursors || len(r.Mods) > maxCursors {
		return fmt.Errorf("cursors, mods: at most %d each", maxCursors)
	}
	for k, v := range r.Cursors {
		if v < 0 || len(k) > 64 {
			return fmt.Errorf("cursors[%q]: invalid", k)
		}
	}
	for k, v := range r.Mods {
		if v < 0 || len(k) > 64 {
			return fmt.Errorf("mods[%q]: invalid", k)
		}
	}
	if r.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	return nil
}

// SyncConv is what one conversation has past the device's cursor.
type SyncConv struct {
	ConvID   string         `json:"conv_id"`
	LastSeq  int64          `json:"last_seq"`
	LastMod  int64          `json:"last_mod"`
	Messages []wire.Message `json:"messages"`          // after the seq cursor, ascending seq
	Changed  []wire.Message `json:"changed,omitempty"` // at or below it, changed since the mod cursor
	HasMore  bool           `json:"has_more"`
}

// SyncResp answers msg.sync; when HasMore is set the device stores the new cursors
// and calls again.
type SyncResp struct {
	Conversations []SyncConv `json:"conversations"`
	HasMore       bool       `json:"has_more"`
}

// safeLink accepts absolute http and https URLs with a host, and mailto: URLs:
// nothing a client would run (javascript:, data:, vbscript:) or resolve against
// its own origin. Control characters and spaces, which browsers strip before
// reading the scheme, are refused outright.
func safeLink(raw string) bool {
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != "" && u.User == nil
	case "mailto":
		return u.Opaque != ""
	}
	return false
}
