package file_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"

	"github.com/minio/minio-go/v7"

	"natter/functions/file"
	"natter/functions/fntest"
	"natter/shared/imerr"
	"natter/shared/wire"
)

var minioStat = minio.StatObjectOptions{}

// TestPresignedRoundTrip: begin answers a presigned PUT with the size and type
// bound into its signature; a plain HTTP client uploads; complete checks it and
// makes the file ready; file.get answers a presigned GET that returns the bytes.
func TestPresignedRoundTrip(t *testing.T) {
	e, _ := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	body := []byte("%PDF-1.4\n% a small document\n" + string(bytes.Repeat([]byte("x"), 1000)))
	b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "doc.pdf", Size: int64(len(body)), MIME: "application/pdf"})
	if b.URL == "" || b.Method != http.MethodPut || b.Headers["Content-Type"] != "application/pdf" || b.FileID == 0 {
		t.Fatalf("begin %+v", b)
	}
	// The signature binds the length and the type: another of either is refused.
	if code := putURL(t, b.URL, b.Headers, body[:len(body)-1]); code == http.StatusOK {
		t.Fatal("a PUT of another length was accepted")
	}
	if code := putURL(t, b.URL, map[string]string{"Content-Type": "image/png"}, body); code == http.StatusOK {
		t.Fatal("a PUT of another content type was accepted")
	}
	// Complete before anything arrived is a conflict, and the upload stays.
	_, err := fntest.Call[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	fntest.WantCode(t, err, imerr.Conflict)
	put(t, b, body)
	f := fntest.Must[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	if f.ID != b.FileID || f.Size != int64(len(body)) || f.MIME != "application/pdf" || f.Kind != wire.KindFile || f.Name != "doc.pdf" || f.Owner != alice.UserID {
		t.Fatalf("complete %+v", f)
	}
	again := fntest.Must[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	if again.ID != f.ID || again.Size != f.Size {
		t.Fatalf("a retried complete answered %+v", again)
	}
	g := waitProcessed(t, e, alice, f.ID)
	sum := sha256.Sum256(body)
	if g.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("sha256 %s", g.SHA256)
	}
	code, got, hdr := fetch(t, g.URL)
	if code != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET %d, %d bytes", code, len(got))
	}
	if ct := hdr.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("served as %q", ct)
	}
	// The staging object is gone; only the server's copy is served.
	if objectExists(t, e, key("up", f.ID)) || !objectExists(t, e, key("f", f.ID)) {
		t.Fatal("objects after complete: want f/<id> only")
	}
	// Someone else's complete or get is not_found, as for an id nobody has.
	bob, _ := fntest.User(t, e, "bob", "b1")
	_, err = fntest.Call[wire.File](t, e, "file.upload.complete", bob, file.CompleteReq{FileID: b.FileID})
	fntest.WantCode(t, err, imerr.NotFound)
	_, err = fntest.Call[file.GetResp](t, e, "file.get", bob, file.GetReq{FileID: b.FileID})
	fntest.WantCode(t, err, imerr.NotFound)
	_, err = fntest.Call[file.GetResp](t, e, "file.get", alice, file.GetReq{FileID: b.FileID + 1})
	fntest.WantCode(t, err, imerr.NotFound)
}

// TestMultipart: a file over MultipartAbove is uploaded in parts, each a
// presigned PUT of its own size; complete assembles them.
func TestMultipart(t *testing.T) {
	e, _ := start(t, file.Config{MultipartAbove: 6 << 20, PartSize: 5 << 20})
	alice, _ := fntest.User(t, e, "alice", "a1")
	body := bytes.Repeat([]byte("0123456789abcdef"), (12<<20)/16)
	b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "big.bin", Size: int64(len(body)), MIME: "application/octet-stream"})
	if b.URL != "" || len(b.Parts) != 3 || b.Parts[2].Size != int64(len(body))-10<<20 {
		t.Fatalf("begin: url %q, %d parts", b.URL, len(b.Parts))
	}
	// Complete with a part missing is a conflict.
	if code := putURL(t, b.Parts[0].URL, b.Headers, body[:5<<20]); code != http.StatusOK {
		t.Fatalf("part 1: %d", code)
	}
	_, err := fntest.Call[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	fntest.WantCode(t, err, imerr.Conflict)
	put(t, b, body)
	f := fntest.Must[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
	g := fntest.Must[file.GetResp](t, e, "file.get", alice, file.GetReq{FileID: f.ID})
	code, got, _ := fetch(t, g.URL)
	if code != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET %d, %d bytes of %d", code, len(got), len(body))
	}
}

// TestTypeSniffing: what the bytes are decides, whatever was declared; a
// refused upload is deleted, object and row.
func TestTypeSniffing(t *testing.T) {
	e, _ := start(t, file.Config{})
	alice, _ := fntest.User(t, e, "alice", "a1")
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0}, 200)...)
	pe := append([]byte("MZ\x90\x00"), bytes.Repeat([]byte{0}, 200)...)
	tests := []struct {
		name, mime string
		body       []byte
		code       imerr.Code
		kind       string
	}{
		{"png declared as pdf", "application/pdf", pngOf(t, 8, 8), imerr.BadRequest, ""},
		{"png declared as jpeg", "image/jpeg", pngOf(t, 8, 8), imerr.BadRequest, ""},
		{"elf declared as image", "image/png", elf, imerr.BadRequest, ""},
		{"exe declared as bytes", "application/octet-stream", pe, imerr.BadRequest, ""},
		{"script declared as text", "text/plain", []byte("#!/bin/sh\nrm -rf /\n"), imerr.BadRequest, ""},
		{"pdf declared as text", "text/plain", []byte("%PDF-1.4\n..."), imerr.BadRequest, ""},
		{"text as text", "text/plain", []byte("just words\n"), "", wire.KindFile},
		{"png as png", "image/png", pngOf(t, 8, 8), "", wire.KindImage},
		{"jpeg as image/jpg", "image/jpg", jpegOf(t, 8, 8), "", wire.KindImage},
		{"zip as docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []byte("PK\x03\x04rest of a zip"), "", wire.KindFile},
		{"png header, broken body", "image/png", pngOf(t, 8, 8)[:20], imerr.BadRequest, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "f" + strconv.Itoa(i), Size: int64(len(tt.body)), MIME: tt.mime})
			put(t, b, tt.body)
			f, err := fntest.Call[wire.File](t, e, "file.upload.complete", alice, file.CompleteReq{FileID: b.FileID})
			fntest.WantCode(t, err, tt.code)
			if tt.code != "" {
				if fileRowCount(t, e, b.FileID) != 0 || objectExists(t, e, key("up", b.FileID)) {
					t.Fatal("a refused upload was kept")
				}
				return
			}
			if f.Kind != tt.kind {
				t.Fatalf("kind %s, want %s", f.Kind, tt.kind)
			}
		})
	}
	// Types the configuration refuses are refused at begin.
	_, err := fntest.Call[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "x.svg", Size: 10, MIME: "image/svg+xml"})
	fntest.WantCode(t, err, imerr.BadRequest)
	_, err = fntest.Call[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: "x.html", Size: 10, MIME: "text/html"})
	fntest.WantCode(t, err, imerr.BadRequest)
}

// TestLimits: sizes per kind, the per-user quota and the daily volume.
func TestLimits(t *testing.T) {
	e, _ := start(t, file.Config{MaxSize: 4000, MaxImageSize: 2000, MaxAvatarSize: 1000, Quota: 6000, DailyVolume: 5000})
	alice, _ := fntest.User(t, e, "alice", "a1")
	begin := func(name, mime string, size int64, purpose string) error {
		_, err := fntest.Call[file.BeginResp](t, e, "file.upload.begin", alice, file.BeginReq{Name: name, Size: size, MIME: mime, Purpose: purpose})
		return err
	}
	fntest.WantCode(t, begin("a.bin", "application/octet-stream", 4001, ""), imerr.TooLarge)
	fntest.WantCode(t, begin("a.png", "image/png", 2001, ""), imerr.TooLarge)
	fntest.WantCode(t, begin("a.png", "image/png", 1001, file.PurposeAvatar), imerr.TooLarge)
	fntest.WantCode(t, begin("a.pdf", "application/pdf", 100, file.PurposeAvatar), imerr.BadRequest) // avatars are images
	fntest.WantCode(t, begin("a.bin", "application/octet-stream", 0, ""), imerr.BadRequest)
	fntest.WantCode(t, begin("a.bin", "application/octet-stream", 4000, ""), "")
	// 4,000 of the day's 5,000 begun (pending uploads count too).
	fntest.WantCode(t, begin("b.bin", "application/octet-stream", 1001, ""), imerr.Conflict)
	fntest.WantCode(t, begin("b.bin", "application/octet-stream", 1000, ""), "")
	// The day's volume is spent; an older upload frees nothing today but counts
	// for the quota: age the first two a day.
	if _, err := e.DB.Exec("UPDATE files SET created_at = created_at - INTERVAL 2 DAY WHERE owner_id = ?", alice.UserID); err != nil {
		t.Fatal(err)
	}
	fntest.WantCode(t, begin("c.bin", "application/octet-stream", 1001, ""), imerr.Conflict) // quota: 5,000 + 1,001 > 6,000
	fntest.WantCode(t, begin("c.bin", "application/octet-stream", 1000, ""), "")
}
