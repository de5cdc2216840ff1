package webtest

import (
	"testing"
	"time"

	"natter/shared/testenv"
)

// TestChatBrowser drives the web chat app, as the edge serves it at /, in chromium
// (Playwright, web/chat/e2e/chat.mjs): register, befriend and chat; a device that
// leaves and comes back finds its messages; a recall reaches the other side; a
// group of three. Screenshots of each step land in the artifact directory.
func TestChatBrowser(t *testing.T) {
	chromium := testenv.Chromium(t)
	s := stack(t)
	testenv.RunNode(t, "web/chat", 3*time.Minute,
		[]string{"NATTER_URL=" + s.Base, "CHROMIUM_PATH=" + chromium, "ARTIFACT_DIR=" + testenv.ArtifactDir(t)},
		"e2e/chat.mjs")
}
