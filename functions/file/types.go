package file

import (
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"

	"natter/shared/validate"
	"natter/shared/wire"
)

// Purposes of an upload.
const (
	PurposeAttachment  = "attachment"
	PurposeAvatar      = "avatar"
	PurposeGroupAvatar = "group_avatar"
)

// maxName bounds a file's name in characters.
const maxName = 255

// BeginReq is file.upload.begin: what the client is about to upload.
type BeginReq struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	MIME       string `json:"mime"`
	SHA256     string `json:"sha256,omitempty"` // hex, optional
	Purpose    string `json:"purpose,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"` // video and voice, as the client measured it
}

func (r *BeginReq) Validate() error {
	if r.Name == "" {
		return errors.New("name required")
	}
	if err := validate.Name("name", r.Name, maxName); err != nil {
		return err
	}
	if strings.ContainsAny(r.Name, `/\`) {
		return errors.New("name: no path separators")
	}
	if r.Size <= 0 {
		return errors.New("size must be positive")
	}
	mt, err := normalMIME(r.MIME)
	if err != nil {
		return err
	}
	r.MIME = mt
	if r.SHA256 != "" {
		if b, err := hex.DecodeString(r.SHA256); err != nil || len(b) != 32 {
			return errors.New("sha256: 64 hex digits")
		}
		r.SHA256 = strings.ToLower(r.SHA256)
	}
	switch r.Purpose {
	case "":
		r.Purpose = PurposeAttachment
	case PurposeAttachment, PurposeAvatar, PurposeGroupAvatar:
	default:
		return fmt.Errorf("purpose: one of %s, %s, %s", PurposeAttachment, PurposeAvatar, PurposeGroupAvatar)
	}
	if r.DurationMS < 0 || r.DurationMS > 24*3600*1000 {
		return errors.New("duration_ms: 0 to 24 hours")
	}
	return nil
}

// normalMIME checks a declared media type and returns it lower-cased, without
// parameters ("image/JPEG; q=1" is "image/jpeg"); image/jpg is image/jpeg.
func normalMIME(s string) (string, error) {
	if s == "" || len(s) > 127 {
		return "", errors.New("mime: a media type such as image/png, at most 127 bytes")
	}
	mt, _, err := mime.ParseMediaType(s)
	if err != nil || !strings.Contains(mt, "/") {
		return "", errors.New("mime: a media type such as image/png")
	}
	if mt == "image/jpg" || mt == "image/pjpeg" {
		mt = "image/jpeg"
	}
	return mt, nil
}

// BeginResp says where to upload: one presigned PUT (URL), or, for a big file,
// one per part (Parts), each of exactly its size. Headers must go with every PUT
// (the content type is part of the signature; so is the length).
type BeginResp struct {
	FileID    int64             `json:"file_id,string"`
	Method    string            `json:"method"`
	URL       string            `json:"url,omitempty"`
	Parts     []Part            `json:"parts,omitempty"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt int64             `json:"expires_at"`
}

// Part is one part of a multipart upload.
type Part struct {
	Number int    `json:"number"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

// CompleteReq is file.upload.complete.
type CompleteReq struct {
	FileID int64 `json:"file_id,string"`
}

func (r *CompleteReq) Validate() error {
	if r.FileID <= 0 {
		return errors.New("file_id required")
	}
	return nil
}

// GetReq is file.get.
type GetReq struct {
	FileID int64 `json:"file_id,string"`
}

func (r *GetReq) Validate() error {
	if r.FileID <= 0 {
		return errors.New("file_id required")
	}
	return nil
}

// GetResp is a file's metadata and presigned download URLs, valid until ExpiresAt.
type GetResp struct {
	wire.File
	URL       string `json:"url"`
	ThumbURL  string `json:"thumb_url,omitempty"`
	ExpiresAt int64  `json:"expires_at"`
}

// ListReq is file.list: a conversation's files (ConvID set, paged by seq) or the
// caller's own uploads (paged by file id), newest first, of one kind or all.
type ListReq struct {
	ConvID   string `json:"conv_id,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Before   int64  `json:"before,omitempty"`           // a conversation's: a seq, exclusive
	BeforeID int64  `json:"before_id,omitempty,string"` // own uploads: a file id, exclusive
	Limit    int    `json:"limit,omitempty"`
}

func (r *ListReq) Validate() error {
	switch r.Kind {
	case "", wire.KindImage, wire.KindVideo, wire.KindAudio, wire.KindFile, kindMedia:
	default:
		return fmt.Errorf("kind: one of image, video, audio, file, media")
	}
	if r.Before < 0 || r.BeforeID < 0 || r.Limit < 0 {
		return errors.New("before, before_id and limit must not be negative")
	}
	if len(r.ConvID) > 64 {
		return errors.New("conv_id: at most 64 bytes")
	}
	return nil
}

// kindMedia lists images and videos together (a gallery).
const kindMedia = "media"

// Listed is one file of a list; a conversation's carry the message that sent it.
type Listed struct {
	wire.File
	ConvID string `json:"conv_id,omitempty"`
	Seq    int64  `json:"seq,omitempty"`
	Sender int64  `json:"sender,omitempty"`
	SentAt int64  `json:"sent_at,omitempty"`
}

// ListResp is one page; the next starts before the last row's seq (a
// conversation) or file id (own uploads).
type ListResp struct {
	Files   []Listed `json:"files"`
	HasMore bool     `json:"has_more"`
}
