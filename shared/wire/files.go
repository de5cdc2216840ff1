package wire

import "encoding/json"

// File kinds: what a file is, from its sniffed type.
const (
	KindImage = "image"
	KindVideo = "video"
	KindAudio = "audio"
	KindFile  = "file"
)

// Media message types: each refers to a ready file (content.file_id) whose
// metadata the server fills in.
const (
	TypeImage   = "image"
	TypeFile    = "file"
	TypeVoice   = "voice"
	TypeVideo   = "video"
	TypeSticker = "sticker"
)

// File is a ready file's metadata as the server stored it: in file.get,
// file.list and favorites. Media message content carries the same fields.
type File struct {
	ID         int64  `json:"file_id,string"`
	Owner      int64  `json:"owner"`
	Purpose    string `json:"purpose"`
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	MIME       string `json:"mime"`
	Kind       string `json:"kind"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	// Thumb is the size of an image's thumbnail; it may still be in the making
	// (file.get answers thumb_url once it is stored).
	Thumb *Thumb `json:"thumb,omitempty"`
	// SHA256 (hex) is computed by the server from the bytes, once it has read them.
	SHA256    string `json:"sha256,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// Thumb is a thumbnail's size in pixels.
type Thumb struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// EncodedSize estimates f's encoded size, erring high.
func (f *File) EncodedSize() int { return 384 + len(f.Name) + len(f.MIME) + len(f.Purpose) }

// previewRunes bounds a text preview.
const previewRunes = 100

// Preview is a one-line summary of m for conversation lists and notifications:
// the start of a text, "[Image]", "[File] report.pdf", ...; "" for system
// messages, "[Recalled]" once recalled.
func Preview(m *Message) string {
	if m.Recalled {
		return "[Recalled]"
	}
	var c struct {
		Text string `json:"text"`
		Name string `json:"name"`
	}
	_ = json.Unmarshal(m.Content, &c)
	switch m.Type {
	case TypeText, TypeRich:
		if r := []rune(c.Text); len(r) > previewRunes {
			return string(r[:previewRunes]) + "…"
		}
		return c.Text
	case TypeImage:
		return "[Image]"
	case TypeSticker:
		return "[Sticker]"
	case TypeVoice:
		return "[Voice]"
	case TypeVideo:
		return "[Video]"
	case TypeFile:
		return "[File] " + c.Name
	}
	return ""
}
