package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/presence"
	"natter/functions/push"
	"natter/loadtest/procfs"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/testenv"
)

// recorder is a provider that takes every push at once and records the lag
// from the send of the message a push shows to the call, apart for pushes
// sent at once and those ending a collapse window.
type recorder struct {
	mu            sync.Mutex
	first, window []sample
}

type sample struct {
	sent time.Time
	lag  time.Duration
}

// lags are the lags of the samples of messages sent before until.
func lags(ss []sample, until time.Time) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		if s.sent.Before(until) {
			out = append(out, s.lag)
		}
	}
	return out
}

func (r *recorder) Name() string { return "recorder" }

func (r *recorder) Send(_ context.Context, n push.Notification) error {
	sent := time.UnixMilli(n.SentAt)
	s := sample{sent: sent, lag: time.Since(sent)}
	r.mu.Lock()
	if !n.Trailing {
		r.first = append(r.first, s)
	} else {
		r.window = append(r.window, s)
	}
	r.mu.Unlock()
	return nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestPushLoad measures offline push in a 5,000-member group with 3,000 members
// offline and 2,000 online, every member holding a token, at 10 messages/s from
// online members (NATTER_PUSH_LOAD_RATE) for NATTER_PUSH_LOAD (e.g. 30s; skipped when unset). It reports
// decisions per second, the lag from send to provider call, and CPU time of this
// process (worker, NATS server, senders), of its Redis and of MariaDB.
// NATTER_PUSH_LOAD_WEBHOOK=1 sends through the webhook provider to a local
// HTTP server instead of an in-process recorder; NATTER_PUSH_LOAD_COLLAPSE sets
// PUSH_COLLAPSE (-1s: every message pushes).
//
//	NATTER_PUSH_LOAD=30s go test -count=1 -run TestPushLoad -v ./functions/push/
func TestPushLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("NATTER_PUSH_LOAD"))
	if err != nil || d <= 0 {
		t.Skip("set NATTER_PUSH_LOAD=30s to measure")
	}
	const members, online = 5000, 2000
	rate := 10
	if r, err := strconv.Atoi(os.Getenv("NATTER_PUSH_LOAD_RATE")); err == nil && r > 0 {
		rate = r
	}
	e := testenv.Start(t)
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	cfg := push.Config{Platforms: map[string]string{"ios": "recorder", "android": "recorder"}}
	opts := fntest.Options{Push: cfg, PushProviders: map[string]push.Provider{"recorder": rec}, Metrics: reg}
	var h *hook
	if os.Getenv("NATTER_PUSH_LOAD_WEBHOOK") != "" {
		h = newHook(t)
		opts.Push = h.config()
		opts.Push.Collapse, opts.Push.Attempts, opts.Push.Backoff = 0, 0, 0 // defaults
		opts.PushProviders = nil
	}
	if c, err := time.ParseDuration(os.Getenv("NATTER_PUSH_LOAD_COLLAPSE")); err == nil {
		opts.Push.Collapse = c
	}
	fntest.Start(t, e, opts)
	ids := fntest.SeedUsers(t, e, "g-", members)
	g := fntest.Must[group.Info](t, e, "group.create", endpoint.Caller{UserID: ids[0]}, group.CreateReq{Name: "everyone", Members: ids[1:]})
	for start := 0; start < members; start += 1000 {
		var q strings.Builder
		q.WriteString("INSERT INTO push_tokens (user_id, device_id, session_id, platform, token) VALUES ")
		for i := start; i < min(start+1000, members); i++ {
			if i > start {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "(%d, 'phone', 's%d', 'ios', 'tok-%d')", ids[i], ids[i], ids[i])
		}
		if _, err := e.DB.Exec(q.String()); err != nil {
			t.Fatal(err)
		}
	}
	pres := presence.NewRegistry(e.RDB, time.Hour)
	for _, id := range ids[:online] {
		if _, err := pres.Connect(t.Context(), id, fmt.Sprint("c", id), "laptop", "edge-1", 5, "kick_oldest"); err != nil {
			t.Fatal(err)
		}
	}
	settled(t, e, 1)

	redisPID, _ := procfs.ListenerPID(portOf(e.Redis.Addr))
	mysqlPID, _ := procfs.ListenerPID(3306)
	cpu := func(pid int) time.Duration {
		if pid <= 0 {
			return 0
		}
		c, _ := procfs.CPU(pid)
		return c
	}
	self := os.Getpid()
	c0, r0, m0 := cpu(self), cpu(redisPID), cpu(mysqlPID)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	sent := 0
	for time.Since(start) < d {
		<-tick.C
		from := endpoint.Caller{UserID: ids[sent%online]}
		content, _ := json.Marshal(message.TextContent{Text: fmt.Sprint("message ", sent)})
		go func(i int) {
			if _, err := fntest.Call[message.SendResp](t, e, "msg.send", from, message.SendReq{ConvID: g.ConvID,
				ClientMsgID: fmt.Sprint("l", i), Type: "text", Content: content}); err != nil {
				t.Error(err)
			}
		}(sent)
		sent++
	}
	tick.Stop()
	sending := time.Since(start)
	settledWithin(t, e, uint64(sent+1), 5*time.Minute)
	busy := time.Since(start) - 300*time.Millisecond // settled looks 3 times, 100 ms apart
	time.Sleep(4 * time.Second)                      // the last windows end
	c1, r1, m1 := cpu(self), cpu(redisPID), cpu(mysqlPID)

	decisions := map[string]float64{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "natter_push_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			decisions[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	var total float64
	for v, n := range decisions {
		if v != "system" {
			total += n
		}
	}
	if h != nil { // the webhook's requests, as the recorder would have seen them
		h.mu.Lock()
		for i, n := range h.got {
			sent := time.UnixMilli(n.SentAt)
			if n.Trailing {
				rec.window = append(rec.window, sample{sent: sent, lag: h.at[i].Sub(sent)})
			} else {
				rec.first = append(rec.first, sample{sent: sent, lag: h.at[i].Sub(sent)})
			}
		}
		h.mu.Unlock()
	}
	rec.mu.Lock()
	all := lags(rec.first, time.Now())
	// The last window of the run holds the last messages until it ends, up to
	// PUSH_COLLAPSE after them: by design, but not the steady state.
	window := lags(rec.window, start.Add(sending).Add(-config.WithDefaults(opts.Push).Collapse))
	windowAll := len(rec.window)
	rec.mu.Unlock()
	first := all
	if h != nil {
		t.Logf("through the webhook provider: %d HTTP requests to a local server", len(h.pushes()))
	}
	t.Logf("%d messages in %v (%.1f/s) to %d members (%d online); consumer caught up %v after the first send",
		sent, sending.Round(time.Millisecond), float64(sent)/sending.Seconds(), members, online, busy.Round(time.Millisecond))
	t.Logf("decisions: %.0f in all, %.0f/s from the first send until the consumer caught up; %v", total, total/busy.Seconds(), decisions)
	t.Logf("pushes: %d first of a window, lag p50 %v p95 %v p99 %v max %v", len(first), pct(first, .5), pct(first, .95), pct(first, .99), pct(first, 1))
	t.Logf("pushes: %d end of a window (%d of messages sent before the run's last window), lag p50 %v p95 %v p99 %v",
		windowAll, len(window), pct(window, .5), pct(window, .95), pct(window, .99))
	t.Logf("pushes: %.0f/s while sending", float64(len(first)+windowAll)/sending.Seconds())
	wall := time.Since(start).Seconds()
	t.Logf("CPU over %.1fs: test process (worker, NATS, senders) %v (%.0f%% of a core), redis %v (%.0f%%), mariadb %v (%.0f%%, shared with other users of the server)",
		wall, (c1 - c0).Round(time.Millisecond), 100*(c1-c0).Seconds()/wall, (r1 - r0).Round(time.Millisecond), 100*(r1-r0).Seconds()/wall,
		(m1 - m0).Round(time.Millisecond), 100*(m1-m0).Seconds()/wall)
}

func portOf(addr string) int {
	var p int
	_, _ = fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &p)
	return p
}
