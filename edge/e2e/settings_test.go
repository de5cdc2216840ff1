package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/functions/settings"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/op"
)

// TestSettingsReachEdges: a config change reaches every edge without a restart
// (an edge started before it and one started after), and the edge applies it:
// while registration is closed, POST /api/v1/users/register is refused at the
// edge. The propagation time is logged.
func TestSettingsReachEdges(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{HTTPPublicLimit: -1}, fntest.Options{})
	super := endpoint.Caller{UserID: 9003, Role: op.RoleSuperadmin}
	a := st.AddEdge(t, gateway.Config{HTTPPublicLimit: -1})
	setOpen := func(open bool) time.Time {
		b, _ := json.Marshal(open)
		at := time.Now()
		fntest.Must[settings.ConfigItem](t, st.Env, "admin.config.set", super, settings.ConfigSetReq{Name: dynconf.RegistrationOpen, Value: b})
		return at
	}
	at := setOpen(false)
	b := st.AddEdge(t, gateway.Config{HTTPPublicLimit: -1}) // loads the closed state at start
	for i, e := range []*stacktest.Edge{a, b} {
		for e.GW.Settings().Bool(dynconf.RegistrationOpen, true) {
			if time.Since(at) > 10*time.Second {
				t.Fatalf("edge %d: registration still open after 10 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("edge %d: registration closed %v after the change", i, time.Since(at))
	}
	register := func(base, name string) (int, string) {
		resp, err := http.Post(base+"/api/v1/users/register", "application/json",
			strings.NewReader(fmt.Sprintf(`{"username":%q,"password":"password-123"}`, name)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error.Code
	}
	for i, e := range []*stacktest.Edge{a, b} {
		if code, ec := register(e.Base, fmt.Sprintf("closed%d", i)); code != http.StatusForbidden || ec != "forbidden" {
			t.Errorf("edge %d while closed: %d %s", i, code, ec)
		}
	}
	at = setOpen(true)
	for i, e := range []*stacktest.Edge{a, b} {
		for !e.GW.Settings().Bool(dynconf.RegistrationOpen, false) {
			if time.Since(at) > 10*time.Second {
				t.Fatalf("edge %d: registration still closed after 10 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Logf("edge %d: registration open %v after the change", i, time.Since(at))
		if code, ec := register(e.Base, fmt.Sprintf("open%d", i)); code != http.StatusOK {
			t.Errorf("edge %d when open: %d %s", i, code, ec)
		}
	}
}
