package webtest

import (
	"os"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/shared/testenv"
)

// stack starts a stack for the JavaScript tests: every register and login comes
// from one address, so the per-address limit of public calls is off.
func stack(t *testing.T) *stacktest.Stack {
	t.Helper()
	return stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{S3: true})
}

// TestSDK compiles the TypeScript SDK and runs its tests (clients/ts/test) against
// a real stack: a reconnect in the middle of a burst, catch-up after being offline,
// token expiry and refresh, a kicked device, a group of three, refusals.
func TestSDK(t *testing.T) {
	testenv.Chromium(t) // node, and the npm packages scripts/browser.sh installs
	s := stack(t)
	testenv.RunNode(t, "clients/ts", 2*time.Minute, nil, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json")
	args := []string{"--test", "--test-concurrency=1", "--test-reporter=spec"}
	if p := os.Getenv("SDK_TEST_PATTERN"); p != "" { // run some of them: a regular expression of test names
		args = append(args, "--test-name-pattern="+p)
	}
	testenv.RunNode(t, "clients/ts", 3*time.Minute, []string{"NATTER_URL=" + s.Base, "NATTER_TEST_SECRET=" + fntest.Secret},
		"--experimental-websocket", append(args, "build/test/sdk.test.js", "build/test/openapi.test.js")...)
}
