// Command loadtest is natter's load generator. It speaks the real client protocol
// through the edges of a running stack (by default the one `go tool task up`
// starts) and seeds its users straight into MySQL:
//
//	go run ./loadtest <direct|group|connect|catchup|api> [flags]
//	go tool task load -- direct -users 2000 -rate 5000 -duration 30s
//
// Every run is bounded in time (-duration, and -timeout over everything) and in
// requests (-max-requests), targets loopback addresses only, prints a live
// progress line on stderr, and ends with a table on stdout plus a JSON file and an
// HTML page under -out. See loadtest/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"natter/loadtest/report"
	"natter/loadtest/scenario"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: go run ./loadtest <scenario> [flags]   (go run ./loadtest <scenario> -h for its flags)

scenarios:
  direct    U online users in pairs sending 1:1 messages at an open-loop rate (-step: find the highest rate that holds)
  group     one group of G members, O online on D devices each, S senders at rate r: deliveries/s and delivery latency
            (-step too; -direct-users/-direct-rate: 1:1 messages meanwhile, reported apart)
  connect   C connections opened at a bounded ramp and held with heartbeats: time to open, edge memory per connection
  catchup   a device misses N messages across K conversations, reconnects and syncs: time until it has them all
  api       an HTTP mix of login, conv.list and msg.history at a rate or a concurrency: p50/p95/p99 per op
  file      N workers uploading S-byte files (presigned PUT, or -edge: streamed through the edge) and downloading them: throughput and p95
`

// outcome is what a run produced (for the smoke tests).
type outcome struct {
	Result         *report.Result
	JSON, HTML     string
	ResultsWritten bool
}

// common are the flags every scenario has.
type common struct {
	edges, dsn, secret, out, prefix string
	duration, timeout               time.Duration
	maxRequests                     int64
	dialConc                        int
	cleanup, quiet                  bool
	cpuProfile                      string
}

func (c *common) register(fs *flag.FlagSet, duration time.Duration) {
	env, _ := config.Parse[struct {
		MySQL config.MySQL `envPrefix:"MYSQL_"`
		Auth  config.Auth  `envPrefix:"AUTH_"`
	}]()
	fs.StringVar(&c.edges, "edges", envOr("LOAD_EDGES", "http://127.0.0.1:8080"), "edges to load, comma-separated base URLs (loopback only); clients are spread over them (env LOAD_EDGES)")
	fs.StringVar(&c.dsn, "mysql-dsn", env.MySQL.DSN, "natter's database, for seeding (env MYSQL_DSN)")
	fs.StringVar(&c.secret, "auth-secret", env.Auth.Secret, "the edges' token secret, to mint access tokens (env AUTH_SECRET)")
	fs.DurationVar(&c.duration, "duration", duration, "measured phase: sending, or holding connections")
	fs.DurationVar(&c.timeout, "timeout", 0, "hard limit on the whole run, seeding included (0: the duration plus a margin)")
	fs.Int64Var(&c.maxRequests, "max-requests", 5_000_000, "stop after this many requests (0: no cap)")
	fs.StringVar(&c.out, "out", defaultOut(), "directory for the JSON and HTML results")
	fs.StringVar(&c.prefix, "prefix", "", "username prefix of the seeded users (default: lt + random)")
	fs.IntVar(&c.dialConc, "dial-concurrency", 32, "WebSocket dials in flight while connecting users")
	fs.BoolVar(&c.cleanup, "cleanup", false, "delete the seeded users, conversations and messages at the end")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress line")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile to this file")
}

func defaultOut() string {
	if st, err := os.Stat("loadtest"); err == nil && st.IsDir() {
		return "loadtest/results"
	}
	return "results"
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func stepFlags(fs *flag.FlagSet, s *scenario.Step, bound time.Duration) {
	fs.BoolVar(&s.Enabled, "step", false, "step mode: raise the rate from -rate by -step-factor until the e2e -step-on quantile passes -bound; report the highest rate that held")
	fs.DurationVar(&s.Duration, "step-duration", 10*time.Second, "length of each step")
	fs.Float64Var(&s.Factor, "step-factor", 1.5, "rate multiplier between steps")
	fs.Float64Var(&s.MaxRate, "max-rate", 0, "highest rate a step may try (0: no limit)")
	fs.DurationVar(&s.Bound, "bound", bound, "end-to-end latency bound a step must keep")
	fs.StringVar(&s.Quantile, "step-on", "p99", "the quantile held to -bound: "+strings.Join(scenario.StepQuantiles, ", "))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (*outcome, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, usage)
		return nil, flag.ErrHelp
	}
	name, args := args[0], args[1:]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	duration := 10 * time.Second
	switch name {
	case "chaos":
		duration = 30 * time.Second
	case "soak":
		duration = time.Hour
	}
	c.register(fs, duration)

	var (
		direct  scenario.DirectConfig
		group   scenario.GroupConfig
		conn    scenario.ConnectConfig
		catchup scenario.CatchupConfig
		api     scenario.APIConfig
		files   scenario.FileConfig
		shard   = "0/1"
		sources = "auto"
		pids    string
		mix     string
		chaos   scenario.ChaosConfig
		soak    scenario.SoakConfig
		fault   string
		row     string
		metrics string
		retry   scenario.Retry
	)
	switch name {
	case "direct":
		fs.IntVar(&direct.Users, "users", 200, "online users, in pairs of friends (even)")
		fs.Float64Var(&direct.Rate, "rate", 500, "messages per second in total (open loop); the first step's rate with -step")
		fs.IntVar(&direct.Size, "size", 32, "text length in bytes")
		fs.DurationVar(&direct.Drain, "drain", 5*time.Second, "longest wait for late replies and pushes after sending")
		stepFlags(fs, &direct.Step, 50*time.Millisecond)
		retryFlags(fs, &retry)
	case "group":
		fs.IntVar(&group.Members, "members", 500, "group members")
		fs.IntVar(&group.Online, "online", 200, "members connected (the first ones)")
		fs.IntVar(&group.Senders, "senders", 5, "online members that send")
		fs.IntVar(&group.Devices, "devices", 1, "WebSocket devices each online member connects (own device id and session); deliveries are rate × (online × devices - 1)")
		fs.Float64Var(&group.Rate, "rate", 20, "group messages per second in total; deliveries are rate × (online × devices - 1)")
		fs.IntVar(&group.Size, "size", 32, "text length in bytes")
		fs.DurationVar(&group.Drain, "drain", 5*time.Second, "longest wait for late replies and pushes after sending")
		fs.IntVar(&group.DirectUsers, "direct-users", 0, "more online users (even), in pairs of friends sending 1:1 messages meanwhile, reported apart as direct_* (0: none)")
		fs.Float64Var(&group.DirectRate, "direct-rate", 0, "1:1 messages per second in total of -direct-users, the same in every step")
		stepFlags(fs, &group.Step, 100*time.Millisecond)
		retryFlags(fs, &retry)
	case "connect":
		fs.IntVar(&conn.Conns, "conns", 1000, "connections in total, over all shards")
		fs.StringVar(&shard, "shard", shard, "i/n: this process opens connection k when k mod n = i (one process holds < ~19,000)")
		fs.Float64Var(&conn.Ramp, "ramp", 500, "connections this process opens per second")
		fs.DurationVar(&conn.Heartbeat, "heartbeat", 30*time.Second, "application ping per connection this often while holding (0: none; the edge's own pings are answered anyway)")
		fs.StringVar(&sources, "src", sources, "local addresses to dial from, comma-separated (127.0.0.2,...); auto: 127.0.0.<2+i> for shard i of several, else the kernel's choice")
		fs.StringVar(&pids, "edge-pid", "", "the edges' pids, comma-separated in -edges order (default: the owner of each edge's port)")
	case "catchup":
		fs.IntVar(&catchup.Messages, "messages", 10000, "messages the device missed")
		fs.IntVar(&catchup.Convs, "convs", 100, "conversations they are spread over")
		fs.IntVar(&catchup.Held, "held", 10, "messages per conversation the device already holds")
		fs.IntVar(&catchup.Repeat, "repeat", 5, "reconnect-and-catch-up rounds")
		fs.IntVar(&catchup.Limit, "limit", 0, "msg.sync page size (0: the server's maximum)")
	case "api":
		fs.IntVar(&api.Users, "users", 1000, "seeded users")
		fs.IntVar(&api.ConvsPerUser, "convs", 10, "1:1 conversations per user")
		fs.IntVar(&api.Messages, "messages", 30, "messages per conversation")
		fs.Float64Var(&api.Rate, "rate", 500, "requests per second, open loop (0: closed loop at -concurrency)")
		fs.IntVar(&api.Concurrency, "concurrency", 64, "workers (HTTP connections)")
		fs.StringVar(&mix, "mix", "login=2,conv.list=49,msg.history=49", "op weights")
	case "file":
		fs.IntVar(&files.Users, "users", 20, "seeded users the workers upload as")
		fs.IntVar(&files.Concurrency, "concurrency", 8, "workers, each uploading then downloading one file at a time")
		fs.IntVar(&files.Size, "size", 1<<20, "file size in bytes")
		fs.BoolVar(&files.Edge, "edge", false, "upload through the edge's streamed upload (POST /api/v1/files) instead of presigned PUTs")
	case "chaos":
		mixFlags(fs, &chaos.MixConfig, 200, 200, 500, 500, 5, 5, 40*time.Second)
		retryFlags(fs, &retry)
		fs.StringVar(&fault, "fault", "", "shell command (sh -c) that injects the fault, run -fault-at after sending starts; empty: none")
		fs.StringVar(&chaos.FaultName, "fault-name", "", "the fault's name in the results (default: the command)")
		fs.DurationVar(&chaos.At, "fault-at", 10*time.Second, "when the fault is injected, after sending starts")
		fs.StringVar(&row, "row", "", "append the run's row of the chaos matrix to this TSV file (with a header line when it is new)")
	case "soak":
		mixFlags(fs, &soak.MixConfig, 100, 100, 500, 200, 2, 4, 30*time.Second)
		retryFlags(fs, &retry)
		fs.StringVar(&metrics, "metrics", "", "the processes to watch: name=http://127.0.0.1:port/metrics, comma-separated")
		fs.DurationVar(&soak.Every, "every", 30*time.Second, "sampling interval of /metrics")
		fs.DurationVar(&soak.Warmup, "warmup", 0, "samples before this are not judged (0: a tenth of -duration, at least 1m, at most half)")
	default:
		fmt.Fprint(stderr, usage)
		return nil, fmt.Errorf("unknown scenario %q", name)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, q := range []string{direct.Step.Quantile, group.Step.Quantile} {
		if q != "" && !slices.Contains(scenario.StepQuantiles, q) {
			return nil, fmt.Errorf("-step-on %q: want one of %s", q, strings.Join(scenario.StepQuantiles, ", "))
		}
	}

	// Every argument is checked before anything connects: a bad flag must not
	// depend on what the database holds.
	switch name {
	case "group":
		if group.Devices < 1 {
			return nil, fmt.Errorf("-devices %d: want at least 1", group.Devices)
		}
		if err := group.Check(); err != nil {
			return nil, err
		}
	case "connect":
		var err error
		if conn.Shard, conn.Shards, err = parseShard(shard); err != nil {
			return nil, err
		}
		if conn.Sources, err = parseSources(sources, conn.Shard, conn.Shards); err != nil {
			return nil, err
		}
		if conn.EdgePIDs, err = parseInts(pids); err != nil {
			return nil, fmt.Errorf("-edge-pid: %w", err)
		}
	case "api":
		var err error
		if api.Mix, err = scenario.ParseMix(mix); err != nil {
			return nil, err
		}
	case "soak":
		var err error
		if soak.Targets, err = parseTargets(metrics); err != nil {
			return nil, err
		}
	}
	tgt, err := checkTarget(c)
	if err != nil {
		return nil, err
	}

	timeout := c.timeout
	if timeout <= 0 {
		timeout = c.duration + 5*time.Minute
		switch {
		case name == "connect":
			timeout += time.Duration(float64(conn.Conns)/max(conn.Ramp, 1)*float64(time.Second)) + 5*time.Minute
		case direct.Step.Enabled || group.Step.Enabled:
			timeout = 30 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}

	t, closeDB, err := openTarget(ctx, c, tgt, timeout)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	cm := scenario.Common{Duration: c.duration, MaxRequests: c.maxRequests, Prefix: c.prefix, Cleanup: c.cleanup,
		DialConcurrency: c.dialConc, Command: "go run ./loadtest " + name + " " + strings.Join(args, " ")}
	if !c.quiet {
		cm.Progress = stderr
	}
	if cm.Prefix == "" {
		cm.Prefix = scenario.NewPrefix("")
	}

	var res *report.Result
	switch name {
	case "direct":
		direct.Common, direct.Retry = cm, retry
		res, err = scenario.Direct(ctx, t, direct)
	case "group":
		group.Common, group.Retry = cm, retry
		res, err = scenario.Group(ctx, t, group)
	case "connect":
		conn.Common = cm
		if c.prefix == "" {
			conn.Prefix = scenario.NewPrefix("s" + strconv.Itoa(conn.Shard))
		}
		res, err = scenario.Connect(ctx, t, conn)
	case "catchup":
		catchup.Common = cm
		res, err = scenario.Catchup(ctx, t, catchup)
	case "api":
		api.Common = cm
		res, err = scenario.API(ctx, t, api)
	case "file":
		files.Common = cm
		res, err = scenario.File(ctx, t, files)
	case "chaos":
		chaos.Common, chaos.Retry = cm, retry
		if fault != "" {
			if chaos.FaultName == "" {
				chaos.FaultName = fault
			}
			chaos.Fault = shellFault(fault, stderr)
		}
		res, err = scenario.Chaos(ctx, t, chaos)
	case "soak":
		soak.Common, soak.Retry = cm, retry
		res, err = scenario.Soak(ctx, t, soak)
	}
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("the run hit its -timeout (%v): numbers cover what ran", timeout))
	}
	report.WriteTable(stdout, res)
	out := &outcome{Result: res}
	tag, _ := res.Params["prefix"].(string)
	if out.JSON, out.HTML, err = report.WriteFiles(c.out, res, tag); err != nil {
		return out, fmt.Errorf("write results: %w", err)
	}
	out.ResultsWritten = true
	fmt.Fprintf(stdout, "\nresults: %s\n         %s\n", out.JSON, out.HTML)
	switch name {
	case "chaos", "soak":
		if row != "" {
			if err := appendRow(row, scenario.ChaosRowHeader, scenario.ChaosRow(res)); err != nil {
				return out, fmt.Errorf("-row: %w", err)
			}
		}
		var failed []string
		for _, ch := range res.Checks {
			if !ch.OK {
				failed = append(failed, ch.Name+": "+ch.Got)
			}
		}
		if len(failed) > 0 {
			return out, fmt.Errorf("%s failed: %s", name, strings.Join(failed, "; "))
		}
	}
	return out, nil
}

func retryFlags(fs *flag.FlagSet, r *scenario.Retry) {
	fs.IntVar(&r.Attempts, "retries", 8, "resends of a failed msg.send, with the same client_msg_id (negative: none)")
	fs.DurationVar(&r.Window, "retry-window", 30*time.Second, "no resend (and no waiting for the connection) after this long since the first attempt")
}

func mixFlags(fs *flag.FlagSet, m *scenario.MixConfig, users int, rate float64, members, online, senders int, groupRate float64, drain time.Duration) {
	fs.IntVar(&m.Users, "users", users, "online users in pairs of friends, sending 1:1 messages (even; 0: none)")
	fs.Float64Var(&m.Rate, "rate", rate, "1:1 messages per second in total")
	fs.IntVar(&m.Members, "members", members, "members of the group (0: no group)")
	fs.IntVar(&m.Online, "online", online, "group members connected (the first ones)")
	fs.IntVar(&m.Senders, "senders", senders, "online members that send to the group")
	fs.Float64Var(&m.GroupRate, "group-rate", groupRate, "group messages per second in total")
	fs.IntVar(&m.Size, "size", 32, "text length in bytes")
	fs.DurationVar(&m.Drain, "drain", drain, "longest wait after sending for late replies, resends and syncs")
}

// shellFault runs cmd with sh -c, its output on w.
func shellFault(cmd string, w io.Writer) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		c.Stdout, c.Stderr = w, w
		return c.Run()
	}
}

// appendRow appends a tab-separated row to path, after header when the file is
// new or empty.
func appendRow(path string, header, row []string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	var b strings.Builder
	if st.Size() == 0 {
		b.WriteString(strings.Join(header, "\t") + "\n")
	}
	b.WriteString(strings.Join(row, "\t") + "\n")
	_, err = f.WriteString(b.String())
	return err
}

// parseTargets reads name=url pairs, comma-separated.
func parseTargets(s string) ([]scenario.MetricsTarget, error) {
	var out []scenario.MetricsTarget
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, u, ok := strings.Cut(part, "=")
		if !ok {
			name, u = part, part
		}
		if err := scenario.CheckLoopback(u); err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
		out = append(out, scenario.MetricsTarget{Name: name, URL: u})
	}
	if len(out) == 0 {
		return nil, errors.New("-metrics: name at least one process to watch (name=http://127.0.0.1:port/metrics)")
	}
	return out, nil
}

// checkTarget checks that every address the run would reach is local, and
// returns the edges' base URLs.
func checkTarget(c common) (scenario.Target, error) {
	var t scenario.Target
	for e := range strings.SplitSeq(c.edges, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		if err := scenario.CheckLoopback(e); err != nil {
			return t, err
		}
		t.Edges = append(t.Edges, e)
	}
	mc, err := mysql.ParseDSN(c.dsn)
	if err != nil {
		return t, fmt.Errorf("-mysql-dsn: %w", err)
	}
	if mc.Net == "tcp" {
		host, _, err := net.SplitHostPort(mc.Addr)
		if err != nil {
			host = mc.Addr
		}
		if err := scenario.CheckLoopbackHost(host); err != nil {
			return t, fmt.Errorf("-mysql-dsn: %w", err)
		}
	}
	return t, nil
}

// openTarget opens the database and the signer of a checked target.
func openTarget(ctx context.Context, c common, t scenario.Target, timeout time.Duration) (scenario.Target, func(), error) {
	d, err := db.Open(ctx, config.MySQL{DSN: c.dsn, MaxOpenConns: 8, MaxIdleConns: 8})
	if err != nil {
		return t, nil, err
	}
	// Tokens outlive the run: the edge checks them only when a connection opens.
	// A development tool: it accepts the development secret (AUTH_DEV).
	signer, err := auth.NewSigner(config.Auth{Secret: c.secret, AccessTTL: timeout + time.Hour, Dev: true})
	if err != nil {
		_ = d.Close()
		return t, nil, err
	}
	t.DB, t.Signer = d, signer
	return t, func() { _ = d.Close() }, nil
}

func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("-shard %q: want i/n with 0 ≤ i < n", s)
	}
	return i, n, nil
}

func parseSources(s string, shard, shards int) ([]net.IP, error) {
	switch s {
	case "", "none":
		return nil, nil
	case "auto":
		if shards > 1 {
			return []net.IP{net.IPv4(127, 0, 0, byte(2+shard))}, nil
		}
		return nil, nil
	}
	var out []net.IP
	for part := range strings.SplitSeq(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(part))
		if ip == nil {
			return nil, fmt.Errorf("-src: %q is not an IP address", part)
		}
		if err := scenario.CheckLoopbackHost(ip.String()); err != nil {
			return nil, fmt.Errorf("-src: %w", err)
		}
		out = append(out, ip)
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
