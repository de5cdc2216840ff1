package fav

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"natter/shared/validate"
	"natter/shared/wire"
)

// Kinds of favorite.
const (
	KindMessage = "message"
	KindFile    = "file"
	KindNote    = "note"
)

const (
	maxTags    = 10
	maxTag     = 32
	maxNote    = 5000
	defLimit   = 20
	maxLimit   = 100
	maxKeySize = 64
)

// MsgRef names a message: by id, or by conversation and seq.
type MsgRef struct {
	ID     int64  `json:"id,string,omitempty"`
	ConvID string `json:"conv_id,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
}

// AddReq is fav.add: exactly one of Message, FileID and Note.
type AddReq struct {
	Message *MsgRef `json:"message,omitempty"`
	FileID  int64   `json:"file_id,omitempty,string"`
	Note    string  `json:"note,omitempty"`
	// Key makes adding a note idempotent (a retry finds the first); messages and
	// files are saved once per user anyway.
	Key  string   `json:"key,omitempty"`
	Tags []string `json:"tags,omitempty"`
}

func (r *AddReq) Validate() error {
	n := 0
	if r.Message != nil {
		n++
		if r.Message.ID < 0 || r.Message.Seq < 0 || (r.Message.ID == 0 && (r.Message.ConvID == "" || r.Message.Seq == 0)) {
			return errors.New("message: give id, or conv_id and seq")
		}
	}
	if r.FileID < 0 {
		return errors.New("file_id: invalid")
	}
	if r.FileID > 0 {
		n++
	}
	if r.Note != "" {
		n++
		if err := validate.Text("note", r.Note, maxNote); err != nil {
			return err
		}
	}
	if n != 1 {
		return errors.New("give exactly one of message, file_id and note")
	}
	if r.Key != "" {
		if err := validate.Token("key", r.Key); err != nil {
			return err
		}
	}
	tags, err := cleanTags(r.Tags)
	if err != nil {
		return err
	}
	r.Tags = tags
	return nil
}

// cleanTags checks tags and drops repeats, keeping their order.
func cleanTags(in []string) ([]string, error) {
	if len(in) > maxTags {
		return nil, fmt.Errorf("tags: at most %d", maxTags)
	}
	out := make([]string, 0, len(in))
	for i, t := range in {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, fmt.Errorf("tags[%d]: empty", i)
		}
		if err := validate.Name(fmt.Sprintf("tags[%d]", i), t, maxTag); err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Favorite is one saved item. A message is a snapshot taken when it was saved
// (its conversation, seq, id, sender, type, content and time): later edits and
// a recall do not change it, and leaving the conversation does not remove it.
type Favorite struct {
	ID        int64         `json:"fav_id"`
	Kind      string        `json:"kind"`
	Message   *wire.Message `json:"message,omitempty"`
	File      *wire.File    `json:"file,omitempty"`
	Note      string        `json:"note,omitempty"`
	Tags      []string      `json:"tags"`
	CreatedAt int64         `json:"created_at"`
}

func (f *Favorite) size() int {
	n := 256 + len(f.Note) + 40*len(f.Tags)
	if f.Message != nil {
		n += f.Message.Size()
	}
	if f.File != nil {
		n += f.File.EncodedSize()
	}
	return n
}

// ListReq is fav.list: newest first, of one kind and/or with one tag.
type ListReq struct {
	Kind   string `json:"kind,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Before int64  `json:"before,omitempty"` // a fav_id, exclusive
	Limit  int    `json:"limit,omitempty"`
}

func (r *ListReq) Validate() error {
	switch r.Kind {
	case "", KindMessage, KindFile, KindNote:
	default:
		return errors.New("kind: one of message, file, note")
	}
	if len(r.Tag) > 4*maxTag {
		return errors.New("tag: too long")
	}
	if r.Before < 0 || r.Limit < 0 {
		return errors.New("before and limit must not be negative")
	}
	return nil
}

type ListResp struct {
	Favorites []Favorite `json:"favorites"`
	HasMore   bool       `json:"has_more"`
}

// RemoveReq is fav.remove.
type RemoveReq struct {
	ID int64 `json:"fav_id"`
}

func (r *RemoveReq) Validate() error {
	if r.ID <= 0 {
		return errors.New("fav_id required")
	}
	return nil
}

// RemoveResp says whether something was removed (a retry removes nothing).
type RemoveResp struct {
	Removed bool `json:"removed"`
}
