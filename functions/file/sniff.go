package file

import (
	"bytes"
	"fmt"
	"net/http"
	"path"
	"strings"

	"natter/shared/imerr"
	"natter/shared/wire"
)

// sniffLen is how many leading bytes complete reads: enough for
// http.DetectContentType (512) and for an image's header with its dimensions
// (a JPEG's size comes after its EXIF block, up to 64 KiB).
const sniffLen = 128 << 10

// sniff returns the media type the first bytes of a file show, and whether they
// are a program (refused whatever the client declared).
func sniff(head []byte) (string, bool) {
	if executable(head) {
		return "application/x-executable", true
	}
	mt, _, _ := strings.Cut(http.DetectContentType(head), ";")
	return mt, false
}

// executable recognises programs by their magic numbers: Windows PE (MZ), ELF,
// Mach-O (both byte orders, 32 and 64 bits, and fat binaries), and scripts with
// a #! line.
func executable(b []byte) bool {
	switch {
	case bytes.HasPrefix(b, []byte("MZ")),
		bytes.HasPrefix(b, []byte("\x7fELF")),
		bytes.HasPrefix(b, []byte("#!")),
		bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xce}), bytes.HasPrefix(b, []byte{0xce, 0xfa, 0xed, 0xfe}),
		bytes.HasPrefix(b, []byte{0xfe, 0xed, 0xfa, 0xcf}), bytes.HasPrefix(b, []byte{0xcf, 0xfa, 0xed, 0xfe}),
		bytes.HasPrefix(b, []byte{0xca, 0xfe, 0xba, 0xbe}):
		return true
	}
	return false
}

// kindOf is the kind of a declared media type.
func kindOf(mt string) string {
	top, _, _ := strings.Cut(mt, "/")
	switch top {
	case "image":
		return wire.KindImage
	case "video":
		return wire.KindVideo
	case "audio":
		return wire.KindAudio
	}
	return wire.KindFile
}

// thumbable lists the image types the worker decodes (the standard library and
// golang.org/x/image): they get a thumbnail, and their dimensions are read at
// complete.
var thumbable = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true, "image/bmp": true}

// distinctive are sniffed types specific enough that a file showing one of them
// is that and nothing else: declaring another type is a mismatch.
func distinctive(sniffed string) bool {
	top, _, _ := strings.Cut(sniffed, "/")
	switch top {
	case "image", "audio", "video", "font":
		return true
	}
	switch sniffed {
	case "application/pdf", "application/ogg", "text/html", "application/postscript":
		return true
	}
	return false
}

// checkType compares what the client declared with what the bytes show. Images
// must be exactly what they claim when the type is one the server can read (a
// PNG declared as a JPEG is refused too: the thumbnail and dimensions depend on
// it); audio and video may sniff as any audio or video container, or as nothing
// known; a distinctive sniffed type (an image, a PDF, HTML, ...) under another
// declared type is refused; anything else sniffs as generic bytes or text and is
// taken as declared.
func checkType(declared, sniffed string) error {
	mismatch := imerr.New(imerr.BadRequest, "the file is %s, not the declared %s", sniffed, declared)
	switch kindOf(declared) {
	case wire.KindImage:
		if thumbable[declared] || strings.HasPrefix(sniffed, "image/") {
			if sniffed != declared {
				return mismatch
			}
			return nil
		}
		// An image type the server cannot read (HEIC, AVIF, ...) sniffs as bytes.
		if sniffed != "application/octet-stream" {
			return mismatch
		}
		return nil
	case wire.KindAudio, wire.KindVideo:
		top, _, _ := strings.Cut(sniffed, "/")
		if top == "audio" || top == "video" || sniffed == "application/ogg" || sniffed == "application/octet-stream" {
			return nil
		}
		return mismatch
	}
	if distinctive(sniffed) && sniffed != declared {
		return mismatch
	}
	return nil
}

// allowed reports whether mt matches one of patterns ("image/*", "text/plain").
func allowed(mt string, patterns []string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(strings.TrimSpace(p), mt); ok {
			return true
		}
	}
	return false
}

// typeAllowed applies the configured allow and deny lists.
func (s *Service) typeAllowed(mt string) error {
	if allowed(mt, s.cfg.DeniedTypes) || !allowed(mt, s.cfg.AllowedTypes) {
		return imerr.New(imerr.BadRequest, "files of type %s are not accepted", mt)
	}
	return nil
}

// maxSize is the largest file of a kind and purpose.
func (s *Service) maxSize(kind, purpose string) int64 {
	switch {
	case purpose != PurposeAttachment:
		return s.cfg.MaxAvatarSize
	case kind == wire.KindImage:
		return s.cfg.MaxImageSize
	}
	return s.cfg.MaxSize
}

func tooLarge(size, limit int64) error {
	return imerr.New(imerr.TooLarge, "%s is over the %s allowed for this file", human(size), human(limit))
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
