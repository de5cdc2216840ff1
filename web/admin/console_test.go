package console

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBuiltFromSources rebuilds the console (npm run build into a temporary
// directory) and compares it with the committed dist/ that the edge embeds:
// a source changed without `npm run build` (in web/admin) fails here.
func TestBuiltFromSources(t *testing.T) {
	if _, err := os.Stat("node_modules"); err != nil {
		if os.Getenv("NATTER_BROWSER_REQUIRED") != "" { // go tool task test: scripts/browser.sh ran npm ci
			t.Fatal("web/admin/node_modules missing: scripts/browser.sh (go tool task test) runs npm ci")
		}
		t.Skip("web/admin/node_modules missing: run npm ci in web/admin (go tool task test does)")
	}
	out := t.TempDir()
	cmd := exec.Command("npm", "run", "build")
	cmd.Env = append(os.Environ(), "CONSOLE_OUT_DIR="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm run build: %v\n%s", err, b)
	}
	built := map[string][]byte{}
	if err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		built[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	embedded := map[string][]byte{}
	if err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		embedded[p], err = fs.ReadFile(Files(), p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for name, b := range built {
		if e, ok := embedded[name]; !ok || !bytes.Equal(e, b) {
			t.Errorf("dist/%s is stale or missing: run npm run build in web/admin and commit dist/", name)
		}
	}
	for name := range embedded {
		if _, ok := built[name]; !ok {
			t.Errorf("dist/%s is not built from the sources any more: run npm run build in web/admin", name)
		}
	}
}
