package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"natter/functions/admin"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/testenv"
)

// TestMonitoringAndAlerts: the back office scrapes the workers' metrics (here the
// test worker's registry over HTTP) and reports msgs/s and p95 of msg.send; an
// alert rule on a scrape target going down fires to a local webhook and resolves
// when it is back, each change audited; a rule with a duration waits pending.
func TestMonitoringAndAlerts(t *testing.T) {
	e := testenv.Start(t)
	reg := prometheus.NewRegistry()
	workerMetrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(workerMetrics.Close)
	var down atomic.Bool // the second target answers 503 while set
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("natter_edge_connections 3\n"))
	}))
	t.Cleanup(flaky.Close)
	var mu sync.Mutex
	var hooks []admin.AlertEvent
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev admin.AlertEvent
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		hooks = append(hooks, ev)
		mu.Unlock()
	}))
	t.Cleanup(webhook.Close)
	fntest.Start(t, e, fntest.Options{Metrics: reg, Admin: admin.Config{
		ScrapeTargets: []string{workerMetrics.URL, flaky.URL}, SampleEvery: 100 * time.Millisecond}})
	root, _ := fntest.Operator(t, e, "root", op.RoleSuperadmin)
	reader, _ := fntest.Operator(t, e, "reader", op.RoleAuditor)
	alice, _ := fntest.User(t, e, "alice", "d1")
	g := fntest.Must[group.Info](t, e, "group.create", alice, group.CreateReq{Name: "g"})
	for i := range 20 {
		fntest.Must[message.SendResp](t, e, "msg.send", alice, message.SendReq{ConvID: g.ConvID, ClientMsgID: "m" + string(rune('a'+i)), Type: "text", Content: []byte(`{"text":"hi"}`)})
	}
	waitFor(t, "msg.send traffic in the metrics", func() bool {
		m := fntest.Must[admin.Metrics](t, e, "admin.monitoring.metrics", reader, admin.Empty{})
		for _, st := range m.Ops {
			if st.Op == "msg.send" && st.Requests >= 20 && st.P95Ms > 0 && m.MsgsPerSec > 0 && m.Connections[flaky.URL] == 3 && len(m.History) > 0 {
				return true
			}
		}
		return false
	})
	h := fntest.Must[admin.Health](t, e, "admin.monitoring.health", reader, admin.Empty{})
	if !h.Database.OK || !h.Redis.OK || !h.NATS.OK || !h.Targets[workerMetrics.URL] {
		t.Fatalf("health %+v", h)
	}

	// Rules: an auditor may not set one; bad ones are refused.
	_, err := fntest.Call[admin.Rule](t, e, "admin.alerts.set", reader, admin.RuleReq{Name: "x", Metric: "targets_down", Op: ">"})
	fntest.WantCode(t, err, imerr.Forbidden)
	_, err = fntest.Call[admin.Rule](t, e, "admin.alerts.set", root, admin.RuleReq{Name: "x", Metric: "cpu", Op: ">"})
	fntest.WantCode(t, err, imerr.BadRequest)
	rule := fntest.Must[admin.Rule](t, e, "admin.alerts.set", root, admin.RuleReq{Name: "target down", Metric: "targets_down", Op: ">", Threshold: 0, Webhook: webhook.URL})
	slow := fntest.Must[admin.Rule](t, e, "admin.alerts.set", root, admin.RuleReq{Name: "down for an hour", Metric: "targets_down", Op: ">", Threshold: 0, DurationS: 3600})
	state := func(id int64) string {
		for _, r := range fntest.Must[admin.RulesResp](t, e, "admin.alerts.list", reader, admin.Empty{}).Rules {
			if r.ID == id {
				return r.State
			}
		}
		return ""
	}
	down.Store(true)
	waitFor(t, "the rule firing", func() bool { return state(rule.ID) == admin.StateFiring && state(slow.ID) == admin.StatePending })
	down.Store(false)
	waitFor(t, "the rule resolved", func() bool { return state(rule.ID) == admin.StateOK })
	waitFor(t, "two webhook calls", func() bool { mu.Lock(); defer mu.Unlock(); return len(hooks) >= 2 })
	mu.Lock()
	if hooks[0].State != admin.StateFiring || hooks[0].Value != 1 || hooks[1].State != admin.StateOK || hooks[0].Rule != "target down" {
		t.Fatalf("webhook calls %+v", hooks)
	}
	mu.Unlock()
	for _, action := range []string{"alert.firing", "alert.ok", "alert.pending", "alert.rule_set"} {
		lastAudit(t, e, reader, action)
	}
	fntest.Must[admin.Empty](t, e, "admin.alerts.delete", root, admin.RuleIDReq{ID: slow.ID})
	lastAudit(t, e, reader, "alert.rule_delete")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
