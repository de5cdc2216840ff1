package e2e

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/admin"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/shared/op"
	"natter/shared/testenv"
)

// TestConsoleInBrowser drives the back-office console in Chromium
// (web/admin/test/console.mjs): log in, every page, a ban that closes the user's
// WebSocket, the unban, the audit entries; a mask word added in the console
// stars bob's group message (stored and pushed), a review word's message is
// deleted from the review queue (recalled), the flag msgtype.rich turned off
// refuses his rich messages and on again allows them, closed registration and a
// per-user rate override set there are enforced; an auditor is offered no
// changes. Screenshots of each page go to testenv.ArtifactDir.
func TestConsoleInBrowser(t *testing.T) {
	testenv.Chromium(t)
	reg := prometheus.NewRegistry()
	metricsSrv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metricsSrv.Close)
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{Metrics: reg,
		Admin: admin.Config{ScrapeTargets: []string{metricsSrv.URL}, SampleEvery: 500 * time.Millisecond}})
	s := &stack{env: st.Env, ws: st.WS, base: st.Base}
	if _, err := admin.New(admin.Deps{DB: s.env.DB}).CreateOperator(ctx(t), "root", "operator-pass-1", op.RoleSuperadmin); err != nil {
		t.Fatal(err)
	}
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	tok := s.login(t, alice, "browser")
	bc := s.device(t, bob, "phone")
	ac := s.device(t, alice, "phone")
	befriend(t, ac, bc, bob.id)
	var g group.Info
	if err := ac.Call(ctx(t), "group.create", map[string]any{"name": "Console club", "members": []int64{bob.id}}, &g); err != nil {
		t.Fatal(err)
	}
	bobTok, bobTok2 := s.login(t, bob, "browser"), s.login(t, bob, "tablet")
	testenv.RunNode(t, "web/admin", 3*time.Minute, []string{
		"BASE_URL=" + s.base, "ADMIN_USER=root", "ADMIN_PASSWORD=operator-pass-1",
		"TARGET_USER=" + alice.name, "TARGET_TOKEN=" + tok.AccessToken, "SHOTS=" + testenv.ArtifactDir(t),
		"BOB_ID=" + strconv.FormatInt(bob.id, 10), "BOB_TOKEN=" + bobTok.AccessToken, "BOB_TOKEN2=" + bobTok2.AccessToken, "GROUP_CONV=" + g.ConvID,
	}, "test/console.mjs")
}
