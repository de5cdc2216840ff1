package testenv

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ChromiumPath is where Debian's chromium package puts the browser the Playwright
// tests drive (scripts/browser.sh installs it).
const ChromiumPath = "/usr/bin/chromium"

// Chromium returns the browser's path. Without it (or without node) the test is
// skipped, except under `go tool task test`, which sets NATTER_BROWSER_REQUIRED so a
// machine that could not install it fails instead of passing silently.
func Chromium(tb testing.TB) string {
	tb.Helper()
	missing := ""
	if _, err := os.Stat(ChromiumPath); err != nil {
		missing = ChromiumPath
	} else if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	}
	if missing != "" {
		if os.Getenv("NATTER_BROWSER_REQUIRED") != "" {
			tb.Fatalf("browser test needs %s (scripts/browser.sh installs chromium)", missing)
		}
		tb.Skipf("no %s: run scripts/browser.sh (go tool task test does)", missing)
	}
	return ChromiumPath
}

// ArtifactDir is a fresh directory for what a test leaves for people to look at
// (screenshots): .data/artifacts/<test name> in the repository, kept after the run
// and named in the test log.
func ArtifactDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(filepath.Dir(RepoFile(tb, "go.mod")), ".data", "artifacts",
		strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()))
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("artifacts (screenshots): %s", dir)
	return dir
}

// RunNode runs `node script args...` in dir (a repo-relative npm package whose
// node_modules scripts/browser.sh installed) with env added to the test's
// environment, logs its output line by line and fails the test if it exits non-zero
// or outlives timeout. CHROMIUM_PATH is always set.
func RunNode(tb testing.TB, dir string, timeout time.Duration, env []string, script string, args ...string) {
	tb.Helper()
	abs := filepath.Join(filepath.Dir(RepoFile(tb, "go.mod")), dir)
	if _, err := os.Stat(filepath.Join(abs, "node_modules")); err != nil {
		tb.Fatalf("%s has no node_modules: run scripts/browser.sh", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), append([]string{"CHROMIUM_PATH=" + Chromium(tb)}, env...)...)
	cmd.WaitDelay = 5 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			tb.Log("node: " + sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	_ = pw.Close()
	wg.Wait()
	if ctx.Err() != nil {
		tb.Fatalf("node %s: no result within %s", script, timeout)
	}
	if err != nil {
		tb.Fatalf("node %s: %v", script, err)
	}
}
