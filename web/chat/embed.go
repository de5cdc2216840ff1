// Package chat is the web chat app (web/chat, Preact + the TypeScript SDK), built by
// vite into dist/ and embedded in the edge, which serves it at /. The built files
// are committed so that `go build` needs no Node; TestDistIsCurrent fails when they
// were built from other sources than those in the tree (see README "Web chat").
package chat

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Files is the built app: index.html and assets/.
var Files = func() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}()

// Handler serves the app: / is index.html, the files of dist/ as they are, and
// anything else goes to notFound (the edge's JSON 404). Assets carry a content
// hash in their names, so they are cached for good; index.html is revalidated.
func Handler(notFound http.Handler) http.Handler {
	files := http.FileServerFS(Files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			notFound.ServeHTTP(w, r)
			return
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name == "" || name == "index.html" {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, Files, "index.html")
			return
		}
		if st, err := fs.Stat(Files, name); err != nil || st.IsDir() {
			notFound.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		files.ServeHTTP(w, r)
	})
}
