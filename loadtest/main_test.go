package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/edge/stacktest"
	"natter/functions/fntest"
	"natter/loadtest/report"
	"natter/loadtest/scenario"
	"natter/shared/auth"
	"natter/shared/config"
)

// TestSmoke runs every scenario tiny against the whole stack in-process (real
// NATS, Redis and MariaDB, the functions and an edge), through the command's own
// flag parsing, and checks that the numbers add up and the files are written. It
// measures nothing: benchmarks are run by hand (loadtest/README.md).
func TestSmoke(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{RateLimit: -1, HTTPPublicLimit: -1, HTTPUserLimit: -1}, fntest.Options{S3: true})
	e := st.Env
	out := t.TempDir()
	// A process to watch for the soak run: this one's Go and process metrics.
	prom := httptest.NewServer(promhttp.Handler())
	t.Cleanup(prom.Close)
	base := []string{"-edges", st.Base, "-mysql-dsn", e.MySQL.DSN, "-auth-secret", fntest.Secret, "-out", out, "-quiet", "-timeout", "60s"}
	// A second edge, for the run whose users' devices are spread over two.
	_, second := secondEdge(t, st)

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *report.Result)
	}{
		{"direct", []string{"direct", "-users", "4", "-rate", "40", "-duration", "1s"}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			if c["sent"] == 0 || c["acked"] != c["sent"] || c["delivered"] != c["acked"] || len(r.Errors) > 0 {
				t.Errorf("sent %d, acked %d, delivered %d, errors %v", c["sent"], c["acked"], c["delivered"], r.Errors)
			}
			noLoss(t, r)
			if r.Latency["e2e"].Count != c["delivered"] || r.Latency["ack"].Count != c["acked"] {
				t.Errorf("latency samples %+v for counts %v", r.Latency, c)
			}
		}},
		{"direct step", []string{"direct", "-users", "4", "-rate", "20", "-step", "-step-duration", "400ms", "-step-factor", "2", "-max-rate", "40", "-bound", "5s", "-step-on", "p95"}, func(t *testing.T, r *report.Result) {
			if len(r.Steps) != 2 || !r.Steps[0].Held || !r.Steps[1].Held || r.Values["highest_rate_held_per_s"] != 40 {
				t.Errorf("steps %+v, highest %v", r.Steps, r.Values["highest_rate_held_per_s"])
			}
			noLoss(t, r)
		}},
		{"group", []string{"group", "-members", "12", "-online", "6", "-senders", "2", "-rate", "10", "-duration", "1s"}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			if c["acked"] == 0 || c["acked"] != c["sent"] || c["delivered"] != 5*c["acked"] || c["expected_deliveries"] != c["delivered"] {
				t.Errorf("sent %d, acked %d, delivered %d (want 5 per message)", c["sent"], c["acked"], c["delivered"])
			}
			noLoss(t, r)
		}},
		{"group devices mixed", []string{"group", "-members", "12", "-online", "6", "-senders", "2", "-devices", "2", "-rate", "10",
			"-direct-users", "4", "-direct-rate", "20", "-duration", "1s", "-edges", st.Base + "," + second}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			// 6 members on 2 devices each, a user's devices on both edges: every
			// message reaches the 11 devices but the sending one, the sender's other
			// device included, once each.
			if c["acked"] == 0 || c["acked"] != c["sent"] || c["delivered"] != 11*c["acked"] || c["expected_deliveries"] != c["delivered"] ||
				c["deduped"] != 0 || r.Latency["e2e"].Count != c["delivered"] || r.Values["group_connections"] != 12 {
				t.Errorf("sent %d, acked %d, delivered %d (want 11 per message), expected %d, deduped %d, e2e samples %d, connections %v",
					c["sent"], c["acked"], c["delivered"], c["expected_deliveries"], c["deduped"], r.Latency["e2e"].Count, r.Values["group_connections"])
			}
			noLoss(t, r)
			// The 1:1 messages beside it, reported apart.
			if c["direct_sent"] == 0 || c["direct_acked"] != c["direct_sent"] || c["direct_delivered"] != c["direct_acked"] ||
				c["direct_expected_deliveries"] != c["direct_delivered"] || r.Latency["direct_e2e"].Count != c["direct_delivered"] ||
				r.Latency["direct_ack"].Count != c["direct_acked"] {
				t.Errorf("direct: sent %d, acked %d, delivered %d, expected %d, latency %+v",
					c["direct_sent"], c["direct_acked"], c["direct_delivered"], c["direct_expected_deliveries"], r.Latency)
			}
			if c["direct_lost"] != 0 || c["direct_duplicated"] != 0 || c["direct_push_missing"] != 0 || c["direct_deduped"] != 0 || len(r.Errors) > 0 {
				t.Errorf("direct: lost %d, duplicated %d, push missing %d, deduped %d, errors %v",
					c["direct_lost"], c["direct_duplicated"], c["direct_push_missing"], c["direct_deduped"], r.Errors)
			}
			if len(r.Checks) != 5 || r.Checks[4].Name != "1:1 lost / duplicated" || !r.Checks[4].OK {
				t.Errorf("checks %+v", r.Checks)
			}
		}},
		{"connect", []string{"connect", "-conns", "6", "-ramp", "100", "-heartbeat", "300ms", "-duration", "1s"}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			if c["opened"] != 6 || c["held_at_end"] != 6 || c["failed"] != 0 || c["pings"] == 0 || len(r.Errors) > 0 {
				t.Errorf("counts %v, errors %v", c, r.Errors)
			}
			if r.Values["edge_pid"] != float64(os.Getpid()) || r.Values["edges_connections_total"] < 6 {
				t.Errorf("edge values %v", r.Values)
			}
		}},
		{"catchup", []string{"catchup", "-messages", "300", "-convs", "5", "-held", "3", "-repeat", "2", "-limit", "100", "-cleanup"}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			if c["messages"] != 600 || c["incomplete_runs"] != 0 || c["duplicated"] != 0 || c["sync_calls"] < 6 || r.Latency["catchup"].Count != 2 {
				t.Errorf("counts %v, notes %v", c, r.Notes)
			}
			// -cleanup took the run's rows away again.
			prefix := r.Params["prefix"].(string)
			var users, msgs int
			if err := e.DB.QueryRow("SELECT COUNT(*) FROM users WHERE username LIKE ?", prefix+"%").Scan(&users); err != nil {
				t.Fatal(err)
			}
			dev := r.Params["device_user_id"].(int64)
			if err := e.DB.QueryRow("SELECT COUNT(*) FROM messages WHERE conv_id LIKE ?", fmt.Sprintf("d:%d:%%", dev)).Scan(&msgs); err != nil {
				t.Fatal(err)
			}
			if users != 0 || msgs != 0 {
				t.Errorf("after -cleanup: %d users and %d seeded messages left", users, msgs)
			}
		}},
		{"chaos", []string{"chaos", "-users", "4", "-rate", "40", "-members", "8", "-online", "6", "-senders", "2", "-group-rate", "10",
			"-duration", "1s", "-fault", "echo injected", "-fault-name", "nothing", "-fault-at", "300ms", "-row", out + "/matrix.tsv"}, func(t *testing.T, r *report.Result) {
			c := r.Counts
			if c["acked"] == 0 || c["acked"] != c["sent"] || c["expected_deliveries"] != c["delivered"] || len(r.Errors) > 0 {
				t.Errorf("counts %v, errors %v", c, r.Errors)
			}
			noLoss(t, r)
			if r.Values["fault_at_s"] == 0 || r.Params["fault"] != "nothing" || len(r.Checks) != 1 || !r.Checks[0].OK {
				t.Errorf("fault at %v, params %v, checks %+v", r.Values["fault_at_s"], r.Params, r.Checks)
			}
			rows, err := os.ReadFile(out + "/matrix.tsv")
			lines := strings.Split(strings.TrimSpace(string(rows)), "\n")
			if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "fault\terrors by code\t") || !strings.HasPrefix(lines[1], "nothing\tnone\t0.0\t") {
				t.Errorf("matrix %q: %v", rows, err)
			}
		}},
		{"soak", []string{"soak", "-users", "4", "-rate", "20", "-members", "6", "-online", "4", "-senders", "1", "-group-rate", "5",
			"-duration", "1500ms", "-every", "200ms", "-warmup", "200ms", "-metrics", "self=" + prom.URL + "/metrics"}, func(t *testing.T, r *report.Result) {
			noLoss(t, r)
			if len(r.Metrics) < 5 || r.Metrics[0].Values["self go_goroutines"] == 0 {
				t.Errorf("%d samples: %+v", len(r.Metrics), r.Metrics)
			}
			if len(r.Checks) != 4 {
				t.Errorf("checks %+v", r.Checks)
			}
			for _, ch := range r.Checks {
				// The watched process is this test binary, whose memory holds what
				// the other smoke runs left: only the loss and goroutine checks must
				// pass here (the memory ones are judged by the plumbing's presence,
				// above).
				if !ch.OK && !strings.Contains(ch.Name, "memory") && !strings.Contains(ch.Name, "heap") {
					t.Errorf("check %s: %s", ch.Name, ch.Got)
				}
			}
		}},
		{"file", []string{"file", "-users", "4", "-concurrency", "2", "-size", "65536", "-duration", "1s"}, fileRun},
		{"file edge", []string{"file", "-users", "4", "-concurrency", "2", "-size", "65536", "-duration", "1s", "-edge"}, fileRun},
		{"api", []string{"api", "-users", "20", "-convs", "4", "-messages", "5", "-rate", "40", "-concurrency", "4", "-duration", "1s", "-mix", "login=1,conv.list=5,msg.history=5"}, func(t *testing.T, r *report.Result) {
			all := r.Latency["all"]
			if all.Count == 0 || all.Count != r.Counts["requests"] || len(r.Errors) > 0 {
				t.Errorf("requests %d, latency samples %d, errors %v", r.Counts["requests"], all.Count, r.Errors)
			}
			if r.Latency["conv.list"].Count+r.Latency["msg.history"].Count+r.Latency["login"].Count != all.Count {
				t.Errorf("per-op samples do not add up: %+v", r.Latency)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The soak watches this process's goroutines: it runs alone (the
			// parallel runs wait until it is done), or theirs would count too.
			if tt.args[0] != "soak" {
				t.Parallel()
			}
			var stdout, stderr bytes.Buffer
			o, err := run(t.Context(), append(append([]string{tt.args[0]}, base...), tt.args[1:]...), &stdout, &stderr)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), "== "+tt.args[0]) || !strings.Contains(stdout.String(), "latency (ms)") {
				t.Errorf("table:\n%s", stdout.String())
			}
			var back report.Result
			b, err := os.ReadFile(o.JSON)
			if err != nil || json.Unmarshal(b, &back) != nil || back.Scenario != tt.args[0] {
				t.Fatalf("JSON file %s: %v", o.JSON, err)
			}
			page, err := os.ReadFile(o.HTML)
			if err != nil || !bytes.Contains(page, []byte("<svg")) || bytes.Contains(page, []byte("<script")) {
				t.Fatalf("HTML file %s: %v", o.HTML, err)
			}
			tt.check(t, o.Result)
			if t.Failed() || testing.Verbose() {
				t.Logf("table:\n%s", stdout.String())
			}
		})
	}
}

func noLoss(t *testing.T, r *report.Result) {
	t.Helper()
	c := r.Counts
	if c["lost"] != 0 || c["duplicated"] != 0 || c["push_missing"] != 0 || c["foreign_pushes"] != 0 || c["ack_duplicate"] != 0 {
		t.Errorf("lost %d, duplicated %d, push missing %d, foreign %d, ack duplicates %d",
			c["lost"], c["duplicated"], c["push_missing"], c["foreign_pushes"], c["ack_duplicate"])
	}
	if bad := scenario.Clean(r); bad != "" {
		t.Errorf("not clean: %s", bad)
	}
}

// TestChaosEdgeRestart shuts one of two edges down while 1:1 and group messages
// flow: its clients are closed with 3001, redial to the other edge, resume with
// msg.sync, and resend what failed; nothing is lost, shown twice or out of order.
func TestChaosEdgeRestart(t *testing.T) {
	st := stacktest.Start(t, gateway.Config{RateLimit: -1, HTTPPublicLimit: -1, HTTPUserLimit: -1}, fntest.Options{})
	e := st.Env
	gw, second := secondEdge(t, st)
	signer, err := auth.NewSigner(config.Auth{Secret: fntest.Secret, AccessTTL: time.Hour, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	tgt := scenario.Target{Edges: []string{st.Base, second}, DB: e.DB, Signer: signer}
	r, err := scenario.Chaos(t.Context(), tgt, scenario.ChaosConfig{
		MixConfig: scenario.MixConfig{Common: scenario.Common{Duration: 2 * time.Second},
			Users: 8, Rate: 80, Members: 10, Online: 8, Senders: 2, GroupRate: 20, Drain: 20 * time.Second},
		FaultName: "edge shutdown", At: 700 * time.Millisecond,
		Fault: func(ctx context.Context) error {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return gw.Shutdown(sctx)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	report.WriteTable(&table, r)
	c := r.Counts
	if bad := scenario.Clean(r); bad != "" || c["reconnects"] < 8 || c["acked"] != c["sent"] || c["sends_gave_up"] != 0 {
		t.Errorf("clean %q, reconnects %d, sent %d, acked %d, gave up %d\n%s", bad, c["reconnects"], c["sent"], c["acked"], c["sends_gave_up"], table.String())
	} else if testing.Verbose() {
		t.Logf("%s", table.String())
	}
}

// secondEdge starts another edge on st's NATS and returns it with its base URL.
func secondEdge(t *testing.T, st *stacktest.Stack) (*gateway.Gateway, string) {
	t.Helper()
	gw, err := gateway.New(gateway.Config{RateLimit: -1, HTTPPublicLimit: -1, HTTPUserLimit: -1},
		gateway.Deps{NC: st.Env.Connect(t), Signer: mustSigner(t), Log: zerolog.Nop(), AccessTTL: fntest.AuthConfig.AccessTTL})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	return gw, srv.URL
}

func mustSigner(t *testing.T) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(fntest.AuthConfig)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefusesOtherHosts checks arguments before anything connects: the database
// named here does not exist and nothing listens on its port, so a check made
// after connecting would fail with another error.
func TestRefusesOtherHosts(t *testing.T) {
	const nowhere = "root@tcp(127.0.0.1:1)/natter_absent"
	for _, args := range [][]string{
		{"direct", "-mysql-dsn", nowhere, "-edges", "http://10.0.0.1:8080"},
		{"direct", "-mysql-dsn", nowhere, "-edges", "http://example.com"},
		{"api", "-mysql-dsn", "root@tcp(192.168.1.5:3306)/natter"},
		{"connect", "-mysql-dsn", nowhere, "-src", "10.1.1.1"},
	} {
		var out bytes.Buffer
		_, err := run(t.Context(), append(args, "-timeout", "5s"), &out, &out)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestGroupFlags checks the group scenario's arguments before anything
// connects (as TestRefusesOtherHosts: nothing listens at the database address).
func TestGroupFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-devices", "0"}, "-devices 0: want at least 1"},
		{[]string{"-devices", "-1"}, "-devices -1: want at least 1"},
		{[]string{"-direct-users", "3", "-direct-rate", "10"}, "direct users must be even"},
		{[]string{"-direct-users", "-2", "-direct-rate", "10"}, "direct users must be even"},
		{[]string{"-direct-users", "4"}, "direct users need a positive direct rate"},
		{[]string{"-direct-rate", "10"}, "a direct rate needs direct users"},
		{[]string{"-online", "1"}, "want 2 ≤ online ≤ members"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		args := append([]string{"group", "-mysql-dsn", "root@tcp(127.0.0.1:1)/natter_absent", "-timeout", "5s"}, tt.args...)
		_, err := run(t.Context(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.args, err, tt.want)
		}
	}
}

// fileRun checks a file run: uploads and downloads, each timed, and nothing failed.
func fileRun(t *testing.T, r *report.Result) {
	c := r.Counts
	if c["uploads"] == 0 || c["downloads"] != c["uploads"] || len(r.Errors) > 0 {
		t.Errorf("uploads %d, downloads %d, errors %v", c["uploads"], c["downloads"], r.Errors)
	}
	if r.Latency["upload"].Count != c["uploads"] || r.Values["download_mib_per_s"] <= 0 {
		t.Errorf("latency %+v, values %v", r.Latency, r.Values)
	}
}
