// Package webtest runs the JavaScript clients against a real natter stack
// (edge/stacktest): the TypeScript SDK's tests (clients/ts, node's test runner)
// and the web chat app in chromium through Playwright (web/chat/e2e). It has only
// tests; scripts/browser.sh installs chromium and the npm packages they need.
package webtest
