package chat

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"natter/shared/testenv"
)

// sourceFiles are what the build reads, as scripts/stamp.mjs lists them: keep the
// two in step.
var sourceFiles = []string{"web/chat/index.html", "web/chat/package.json", "web/chat/package-lock.json",
	"web/chat/vite.config.ts", "web/chat/tsconfig.json", "web/chat/src", "clients/ts/src"}

// stamp is scripts/stamp.mjs's hash: SHA-256 over "path\0content\0" of every
// source file, by path.
func stamp(t *testing.T) string {
	t.Helper()
	root := filepath.Dir(testenv.RepoFile(t, "go.mod"))
	var files []string
	for _, s := range sourceFiles {
		err := filepath.WalkDir(filepath.Join(root, s), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(f + "\x00"))
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestDistIsCurrent fails when dist/ (embedded in the edge) was not built from the
// sources in the tree: run `npm run build` in web/chat and commit dist/ and
// build.stamp.
func TestDistIsCurrent(t *testing.T) {
	b, err := os.ReadFile(testenv.RepoFile(t, "web/chat/build.stamp"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), stamp(t); got != want {
		t.Fatalf("web/chat/dist is stale (build.stamp %s, sources %s): run `npm run build` in web/chat and commit dist/ and build.stamp", got, want)
	}
}

func TestHandler(t *testing.T) {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", http.StatusNotFound) })
	srv := httptest.NewServer(Handler(notFound))
	defer srv.Close()
	get := func(p string) (int, string, http.Header) {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), res.Header
	}
	code, body, h := get("/")
	if code != 200 || !strings.Contains(body, `<div id="app">`) || h.Get("Cache-Control") != "no-cache" {
		t.Fatalf("/: %d %q %v", code, body, h)
	}
	asset := ""
	_ = fs.WalkDir(Files, "assets", func(p string, d fs.DirEntry, _ error) error {
		if strings.HasSuffix(p, ".js") {
			asset = p
		}
		return nil
	})
	if asset == "" {
		t.Fatal("no js asset in dist/assets")
	}
	if code, _, h := get("/" + asset); code != 200 || !strings.Contains(h.Get("Cache-Control"), "immutable") || !strings.Contains(h.Get("Content-Type"), "javascript") {
		t.Fatalf("/%s: %d %v", asset, code, h)
	}
	for _, p := range []string{"/nothing", "/assets/", "/assets", "/../go.mod"} {
		if code, _, _ := get(p); code != 404 {
			t.Errorf("%s: %d, want the fallback's 404", p, code)
		}
	}
}
