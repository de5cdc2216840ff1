package webtest

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/shared/testenv"
)

// stack starts a stack for the JavaScript tests, with S3 for files. Every
// register and login comes from one address, so the per-address limit of public
// calls is off.
func stack(t *testing.T) *stacktest.Stack {
	t.Helper()
	return stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{S3: true})
}

// TestSDK compiles the TypeScript SDK and runs its tests (clients/ts/test) against
// a real stack: a reconnect in the middle of a burst, catch-up after being offline,
// token expiry and refresh, a kicked device, a group of three, files, history
// paging, refusals; and validates docs/openapi.yaml. SDK_TEST_PATTERN (a regular
// expression of test names) runs some of them.
func TestSDK(t *testing.T) {
	testenv.Chromium(t) // node, and the npm packages scripts/browser.sh installs
	s := stack(t)
	testenv.RunNode(t, "clients/ts", 2*time.Minute, nil, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json")
	args := []string{"--test", "--test-concurrency=1", "--test-reporter=spec"}
	if p := os.Getenv("SDK_TEST_PATTERN"); p != "" {
		args = append(args, "--test-name-pattern="+p)
	}
	args = append(args, "build/test/sdk.test.js", "build/test/idb.test.js", "build/test/openapi.test.js")
	if nodeMajor(t) < 22 { // Node 22 has a WebSocket without the flag
		args = append([]string{"--experimental-websocket"}, args...)
	}
	testenv.RunNode(t, "clients/ts", 3*time.Minute, []string{"NATTER_URL=" + s.Base, "NATTER_TEST_SECRET=" + fntest.Secret},
		args[0], args[1:]...)
}

func nodeMajor(t *testing.T) int {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		t.Fatalf("node --version: %q", out)
	}
	return n
}
