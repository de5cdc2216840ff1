package message

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"natter/shared/imerr"
	"natter/shared/wire"
)

// Files is what media messages need of the file domain, which implements it
// (wired in functions/worker): Attach checks that user may send the ready file
// id (their own upload, or one they can see, as when forwarding), links it to
// the message about to be stored in conv under clientMsgID, and returns the
// file's metadata as stored.
type Files interface {
	Attach(ctx context.Context, user, fileID int64, conv, clientMsgID string) (wire.File, error)
}

// MediaContent is the content of an image, file, voice, video or sticker
// message. The client gives FileID (and a Caption, optionally); the server fills
// in the rest from the file's stored metadata and ignores what the client says
// about it.
type MediaContent struct {
	FileID     int64       `json:"file_id,string"`
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	MIME       string      `json:"mime"`
	Width      int         `json:"width,omitempty"`
	Height     int         `json:"height,omitempty"`
	DurationMS int64       `json:"duration_ms,omitempty"`
	Thumb      *wire.Thumb `json:"thumb,omitempty"`
	Caption    string      `json:"caption,omitempty"`
}

// maxCaption bounds a media message's caption in characters.
const maxCaption = 1000

// mediaKinds says which file kinds each media type takes ("" any).
var mediaKinds = map[string]string{
	wire.TypeImage:   wire.KindImage,
	wire.TypeSticker: wire.KindImage,
	wire.TypeVideo:   wire.KindVideo,
	wire.TypeVoice:   wire.KindAudio,
	wire.TypeFile:    "",
}

// IsMedia reports whether typ is a media message type.
func IsMedia(typ string) bool {
	_, ok := mediaKinds[typ]
	return ok
}

// mediaRequest decodes what the client sent for a media message: the file id
// and caption (other fields are dropped).
func mediaRequest(raw json.RawMessage) (MediaContent, error) {
	var c struct {
		FileID  int64  `json:"file_id,string"`
		Caption string `json:"caption"`
	}
	if err := strictDecode(raw, &c); err != nil {
		return MediaContent{}, err
	}
	if c.FileID <= 0 {
		return MediaContent{}, errors.New("content.file_id: required")
	}
	if c.Caption != "" {
		if err := validContentText(c.Caption, maxCaption); err != nil {
			return MediaContent{}, fmt.Errorf("content.caption: %w", err)
		}
	}
	return MediaContent{FileID: c.FileID, Caption: c.Caption}, nil
}

// mediaContent fills a media message's content from the file the sender may
// use, and returns it encoded as it will be stored.
func (s *Service) mediaContent(ctx context.Context, user int64, typ string, req MediaContent, conv, clientMsgID string) (json.RawMessage, error) {
	if s.files == nil {
		return nil, imerr.New(imerr.Unavailable, "files are not served here")
	}
	f, err := s.files.Attach(ctx, user, req.FileID, conv, clientMsgID)
	if err != nil {
		return nil, err
	}
	if want := mediaKinds[typ]; want != "" && f.Kind != want {
		return nil, imerr.New(imerr.BadRequest, "a %s message takes %s files; this one is %s", typ, want, f.Kind)
	}
	c := MediaContent{FileID: f.ID, Name: f.Name, Size: f.Size, MIME: f.MIME, Width: f.Width, Height: f.Height,
		DurationMS: f.DurationMS, Thumb: f.Thumb, Caption: req.Caption}
	b, _, err := encodeContent(c, nil)
	if err != nil {
		return nil, imerr.Wrap(imerr.BadRequest, err, err.Error())
	}
	return b, nil
}
