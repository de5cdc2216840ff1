// Package console holds the back office's web console, built from the
// TypeScript sources beside this file (Preact, through vite: npm run build) into
// dist/, which is committed and embedded here, so that building the edge needs
// no Node. console_test.go rebuilds the sources and fails when dist/ is stale.
package console

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Files is the built console: index.html and assets/.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: cannot fail
	}
	return sub
}
