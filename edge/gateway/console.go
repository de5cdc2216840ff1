package gateway

import (
	"io/fs"
	"net/http"
	"strings"

	console "natter/web/admin"
)

// consoleRoutes serves the back office's web console (web/admin, embedded) at
// /admin/: index.html for /admin/ and the hashed assets under /admin/assets/,
// which never change under a name and are cached for a year.
func (g *Gateway) consoleRoutes(mux *http.ServeMux) {
	files := console.Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		g.log.Error().Err(err).Msg("console: no index.html: /admin not served")
		return
	}
	assets := http.StripPrefix("/admin/", http.FileServerFS(files))
	secure := func(w http.ResponseWriter) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
	}
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /admin/{path...}", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		if p := r.PathValue("path"); strings.HasPrefix(p, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			assets.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})
}
