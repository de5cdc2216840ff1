package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/shared/config"
	"natter/shared/wire"
)

// pattern is an endless, cheap, non-repeating-looking byte stream: a test file
// that never sits in memory.
type pattern struct{ n uint64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		p.n++
		b[i] = byte(p.n*2654435761>>13) ^ byte(p.n>>8)
	}
	return len(b), nil
}

// multipartUpload streams a form (size first, then the file part of size
// bytes from src) as the body of POST /api/v1/files.
func multipartUpload(t *testing.T, base, token, name, mime string, size int64, src io.Reader) (int, []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("size", strconv.FormatInt(size, 10))
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
		h.Set("Content-Type", mime)
		part, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(part, src)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/files", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// rss is this process's resident set size in bytes.
func rss(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestStreamedUpload: a 50 MB file streams through the edge to S3 (four
// presigned parts) without the process's memory growing with it, downloads
// byte for byte through GET /api/v1/files/{id}'s redirect, and is refused to a
// stranger; a file shorter than its declared size is refused.
func TestStreamedUpload(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{S3: true})
	s := &stack{env: st.Env, ws: st.WS, base: st.Base}
	alice := s.login(t, s.user(t, "alice"), "a1")
	bob := s.login(t, s.user(t, "bob"), "b1")

	const size = 50 << 20
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(&pattern{}, size))

	// Sample the RSS while the upload runs.
	before := rss(t)
	var peak atomic.Int64
	peak.Store(before)
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if r := rss(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	start := time.Now()
	code, body := multipartUpload(t, s.base, alice.AccessToken, "big.bin", "application/octet-stream", size, io.LimitReader(&pattern{}, size))
	took := time.Since(start)
	close(done)
	if code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, body)
	}
	var f wire.File
	if err := json.Unmarshal(body, &f); err != nil || f.Size != size || f.Name != "big.bin" {
		t.Fatalf("upload answered %s", body)
	}
	growth := peak.Load() - before
	t.Logf("50 MiB streamed in %v (%.0f MiB/s); RSS %d MiB before, peak growth %.1f MiB",
		took, float64(size)/(1<<20)/took.Seconds(), before>>20, float64(growth)/(1<<20))
	if growth > 24<<20 {
		t.Errorf("RSS grew %.1f MiB during a 50 MiB upload: the edge holds the file", float64(growth)/(1<<20))
	}

	// Download through the redirect, with the token in the query as <img src> would.
	resp, err := http.Get(s.base + "/api/v1/files/" + strconv.FormatInt(f.ID, 10) + "?token=" + alice.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, _ := io.Copy(got, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("download: %d, %d bytes, same bytes %v", resp.StatusCode, n, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	// A stranger: not_found, no redirect.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(s.base + "/api/v1/files/" + strconv.FormatInt(f.ID, 10) + "?token=" + bob.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a stranger's download: %d", resp.StatusCode)
	}
	resp, err = noRedirect.Get(s.base + "/api/v1/files/" + strconv.FormatInt(f.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a download without a token: %d", resp.StatusCode)
	}

	// Shorter than declared: refused.
	code, body = multipartUpload(t, s.base, alice.AccessToken, "short.bin", "application/octet-stream", 1000, io.LimitReader(&pattern{}, 999))
	if code != http.StatusBadRequest {
		t.Fatalf("a short file: %d %s", code, body)
	}
	// An image, then its thumbnail through ?thumb=1 once the worker made it.
	var img bytes.Buffer
	_ = png.Encode(&img, image.NewRGBA(image.Rect(0, 0, 800, 400)))
	code, body = multipartUpload(t, s.base, alice.AccessToken, "pic.png", "image/png", int64(img.Len()), bytes.NewReader(img.Bytes()))
	if code != http.StatusOK {
		t.Fatalf("image upload: %d %s", code, body)
	}
	_ = json.Unmarshal(body, &f)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.base + "/api/v1/files/" + strconv.FormatInt(f.ID, 10) + "?thumb=1&token=" + alice.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, derr := image.DecodeConfig(resp.Body)
		resp.Body.Close()
		if derr == nil && cfg.Width == 320 && cfg.Height == 160 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no thumbnail through ?thumb=1: %d %dx%d %v", resp.StatusCode, cfg.Width, cfg.Height, derr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUploadThroughS3Addr: presigned URLs name an address the edge cannot
// resolve (S3_PUBLIC_ENDPOINT, as a public name seen from inside a network);
// with EDGE_S3_ADDR the edge connects to S3 directly under that name, and the
// signature, which covers the Host, still holds.
func TestUploadThroughS3Addr(t *testing.T) {
	conf, err := config.Parse[struct {
		S3 config.S3 `envPrefix:"S3_"`
	}]()
	if err != nil {
		t.Fatal(err)
	}
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1, S3Addr: conf.S3.Endpoint},
		fntest.Options{S3: true, S3PublicEndpoint: "files.natter.invalid:7070"})
	s := &stack{env: st.Env, ws: st.WS, base: st.Base}
	alice := s.login(t, s.user(t, "alice"), "a1")
	body := []byte("through the public name\n")
	code, out := multipartUpload(t, s.base, alice.AccessToken, "a.txt", "text/plain", int64(len(body)), bytes.NewReader(body))
	if code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, out)
	}
	var f wire.File
	_ = json.Unmarshal(out, &f)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.base + "/api/v1/files/" + strconv.FormatInt(f.ID, 10) + "?token=" + alice.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://files.natter.invalid:7070/") {
		t.Fatalf("download: %d %q", resp.StatusCode, loc)
	}
}
