package file_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"testing"
	"time"

	"natter/functions/file"
	"natter/functions/fntest"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// start runs every domain with a fresh bucket, and returns a file service of
// its own on the same stores for what tests call directly (Sweep, Process).
func start(t *testing.T, cfg file.Config) (*testenv.Env, *file.Service) {
	t.Helper()
	e := testenv.Start(t)
	fntest.Start(t, e, fntest.Options{S3: true, File: cfg})
	s3, conf := e.S3(t)
	return e, file.New(file.Deps{DB: e.DB, IDs: ids.NewGenerator(ids.RandomNode()), S3: s3, Bucket: conf.Bucket, Config: cfg})
}

// put uploads body as a plain HTTP client would, to every URL begin gave.
func put(t *testing.T, b file.BeginResp, body []byte) {
	t.Helper()
	if b.URL != "" {
		if code := putURL(t, b.URL, b.Headers, body); code != http.StatusOK {
			t.Fatalf("PUT: %d", code)
		}
		return
	}
	off := int64(0)
	for _, p := range b.Parts {
		if code := putURL(t, p.URL, b.Headers, body[off:off+p.Size]); code != http.StatusOK {
			t.Fatalf("PUT part %d: %d", p.Number, code)
		}
		off += p.Size
	}
}

func putURL(t *testing.T, url string, hdr map[string]string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func fetch(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// upload begins, puts and completes a file.
func upload(t *testing.T, e *testenv.Env, c endpoint.Caller, name, mime string, body []byte) wire.File {
	t.Helper()
	return uploadAs(t, e, c, name, mime, "", body)
}

// uploadAs is upload with a purpose.
func uploadAs(t *testing.T, e *testenv.Env, c endpoint.Caller, name, mime, purpose string, body []byte) wire.File {
	t.Helper()
	b := fntest.Must[file.BeginResp](t, e, "file.upload.begin", c, file.BeginReq{Name: name, Size: int64(len(body)), MIME: mime, Purpose: purpose})
	put(t, b, body)
	return fntest.Must[wire.File](t, e, "file.upload.complete", c, file.CompleteReq{FileID: b.FileID})
}

// waitProcessed polls file.get until the worker has hashed the file.
func waitProcessed(t *testing.T, e *testenv.Env, c endpoint.Caller, id int64) file.GetResp {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		g := fntest.Must[file.GetResp](t, e, "file.get", c, file.GetReq{FileID: id})
		if g.SHA256 != "" {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("file %d not processed: %+v", id, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pngOf and jpegOf encode a w×h gradient.
func gradient(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, gradient(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, gradient(w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func objectExists(t *testing.T, e *testenv.Env, key string) bool {
	t.Helper()
	s3, conf := e.S3(t)
	_, err := s3.StatObject(context.Background(), conf.Bucket, key, minioStat)
	return err == nil
}

func fileRowCount(t *testing.T, e *testenv.Env, id int64) int {
	t.Helper()
	var n int
	if err := e.DB.QueryRow("SELECT COUNT(*) FROM files WHERE id = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func key(prefix string, id int64) string { return fmt.Sprintf("%s/%d", prefix, id) }
