package message

import (
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"
)

// MsgRef names one message: by its id, or by conversation and seq.
type MsgRef struct {
	ID     int64  `json:"id,string,omitempty"`
	ConvID string `json:"conv_id,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
}

func (r *MsgRef) validRef() error {
	if r.ID < 0 || r.Seq < 0 {
		return errors.New("id and seq must not be negative")
	}
	if r.ID == 0 && (r.ConvID == "" || r.Seq == 0) {
		return errors.New("give id, or conv_id and seq")
	}
	return nil
}

type RecallReq struct {
	MsgRef
}

func (r *RecallReq) Validate() error { return r.validRef() }

// RecallResp answers msg.recall; a recall of a recalled message answers the same.
type RecallResp struct {
	ConvID string `json:"conv_id"`
	Seq    int64  `json:"seq"`
	Mod    int64  `json:"mod"`
}

type EditReq struct {
	MsgRef
	Type    string          `json:"type,omitempty"` // default: the message's type
	Content json.RawMessage `json:"content"`
}

func (r *EditReq) Validate() error {
	if err := r.validRef(); err != nil {
		return err
	}
	if len(r.Content) == 0 {
		return errors.New("content required")
	}
	return nil
}

type ReactReq struct {
	MsgRef
	Emoji  string `json:"emoji"`
	Remove bool   `json:"remove,omitempty"`
}

func (r *ReactReq) Validate() error {
	if err := r.validRef(); err != nil {
		return err
	}
	if r.Emoji == "" || len(r.Emoji) > 32 || !utf8.ValidString(r.Emoji) {
		return errors.New("emoji: 1-32 bytes of UTF-8")
	}
	for _, c := range r.Emoji {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return errors.New("emoji: no spaces or control characters")
		}
	}
	return nil
}

type ReceiptsReq struct {
	MsgRef
	After int64 `json:"after,omitempty"` // reader user id cursor
	Limit int   `json:"limit,omitempty"` // readers per page; 0 = counts only
}

func (r *ReceiptsReq) Validate() error {
	if err := r.validRef(); err != nil {
		return err
	}
	if r.After < 0 || r.Limit < 0 {
		return errors.New("after and limit must not be negative")
	}
	return nil
}

// ReceiptsResp says how many of the members who could read a message have read it
// (their read cursor reached its seq), computed from cursors alone.
type ReceiptsResp struct {
	ConvID  string  `json:"conv_id"`
	Seq     int64   `json:"seq"`
	Read    int     `json:"read"`
	Members int     `json:"members"` // members other than the sender who could see it
	Readers []int64 `json:"readers,omitempty"`
	HasMore bool    `json:"has_more,omitempty"`
}

type TypingReq struct {
	ConvID string `json:"conv_id"`
}

func (r *TypingReq) Validate() error {
	if r.ConvID == "" {
		return errors.New("conv_id required")
	}
	return nil
}

// TypingResp says whether the indicator went out (throttled or too large a group: not).
type TypingResp struct {
	Sent bool `json:"sent"`
}
