package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"natter/loadtest/client"
	"natter/loadtest/procfs"
	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// ConnectConfig sizes the connect scenario.
type ConnectConfig struct {
	Common
	// Conns is the total over all shards; this process opens those whose index i
	// has i mod Shards == Shard. One process holds at most ~19,000 (the machine's
	// limit is 20,000 open files a process), so 50,000 take three processes.
	Conns         int
	Shard, Shards int
	// Ramp is how many connections this process opens per second.
	Ramp float64
	// Heartbeat is how often each connection sends an application ping (the
	// edge's own WebSocket pings are answered regardless); 0 sends none.
	Heartbeat time.Duration
	// Sources are local addresses to dial from, in turn (127.0.0.2, ...): each
	// gives another ~28,000 ports. Empty lets the kernel choose.
	Sources []net.IP
	// EdgePIDs are the edges' process ids, in the order of Target.Edges; a zero or
	// missing one is found as the owner of the edge's listening port.
	EdgePIDs []int
	// Settle is the pause after the ramp before memory is measured.
	Settle time.Duration
}

// edgeProbe is what one edge reports about itself at one moment.
type edgeProbe struct {
	conns, rss, heap, stack, goroutines float64
	hasMetrics                          bool
}

// Connect opens C connections at a bounded ramp, holds them with heartbeats for
// the duration and reports time to open, failures, and each edge's memory per
// connection.
func Connect(ctx context.Context, t Target, cfg ConnectConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	if cfg.Shards <= 0 {
		cfg.Shards = 1
	}
	if cfg.Shard < 0 || cfg.Shard >= cfg.Shards {
		return nil, fmt.Errorf("connect: shard %d/%d", cfg.Shard, cfg.Shards)
	}
	if cfg.Ramp <= 0 {
		cfg.Ramp = 500
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 3 * time.Second
	}
	n := 0
	for i := cfg.Shard; i < cfg.Conns; i += cfg.Shards {
		n++
	}
	if n == 0 {
		return nil, errors.New("connect: no connections for this shard")
	}
	if limit := procfs.Machine().FDLimit; limit > 0 && uint64(n)+500 > limit {
		return nil, fmt.Errorf("connect: %d connections need more than this process's %d open files: spread them over processes with -shard i/n", n, limit)
	}
	for _, ip := range cfg.Sources {
		if err := CheckLoopbackHost(ip.String()); err != nil {
			return nil, err
		}
	}
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	users, err := sd.Users(ctx, n, "load")
	if err != nil {
		return nil, err
	}
	seeded := time.Since(started)

	pids := make([]int, len(t.Edges))
	for i, e := range t.Edges {
		if i < len(cfg.EdgePIDs) && cfg.EdgePIDs[i] > 0 {
			pids[i] = cfg.EdgePIDs[i]
			continue
		}
		pids[i], _ = edgePID(e) // zero: RSS from /metrics only, if at all
	}
	probe := func() []edgeProbe {
		out := make([]edgeProbe, len(t.Edges))
		for i, e := range t.Edges {
			out[i] = probeEdge(ctx, e, pids[i])
		}
		return out
	}
	before := probe()

	rec := report.NewRecorder([]string{"opened", "pings"}, []string{"open", "ping"})
	opened, pings := rec.Counter("opened"), rec.Counter("pings")
	openH, pingH := rec.Hist("open"), rec.Hist("ping")
	res := newResult("connect", cfg.Common, started, map[string]any{
		"conns_total": cfg.Conns, "conns_this_process": n, "shard": fmt.Sprintf("%d/%d", cfg.Shard, cfg.Shards),
		"ramp_per_s": cfg.Ramp, "heartbeat": cfg.Heartbeat.String(), "hold": cfg.Duration.String(),
		"edges": fmt.Sprint(t.Edges), "sources": fmt.Sprint(cfg.Sources), "prefix": cfg.Prefix,
	})
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		rec.Run(pctx, time.Second, cfg.Progress, func() string { return "connect" })
	}()
	watch := watchStack()
	a := rec.Mark()

	// Ramp: connection k (global index k*Shards+Shard) is due at k/Ramp seconds.
	clients := make([]*client.Client, n)
	jobs := make(chan int, cfg.DialConcurrency)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range cfg.DialConcurrency {
		wg.Go(func() {
			for k := range jobs {
				global := k*cfg.Shards + cfg.Shard
				o := client.Options{URL: t.ws(global), Token: users[k].Token, Pushes: 1,
					OnPush: func([]byte, []byte, time.Time) bool { return true }}
				if len(cfg.Sources) > 0 {
					o.Dialer = &client.SourceDialer{Ctx: ctx, Local: cfg.Sources[global%len(cfg.Sources)]}
				}
				t0 := time.Now()
				dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				cl, err := client.Dial(dctx, o)
				cancel()
				if err != nil {
					failed.Add(1)
					rec.Error(dialCode(err))
					continue
				}
				openH.Record(time.Since(t0))
				opened.Add(1)
				clients[k] = cl
			}
		})
	}
	rampStart := time.Now()
ramp:
	for k := range n {
		due := rampStart.Add(time.Duration(float64(k) / cfg.Ramp * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				break ramp
			}
		}
		select {
		case jobs <- k:
		case <-ctx.Done():
			break ramp
		}
	}
	close(jobs)
	wg.Wait()
	defer func() {
		var cwg sync.WaitGroup
		for i := range clients {
			if clients[i] != nil {
				cwg.Go(func() { _ = clients[i].Close() })
			}
			if i%1000 == 999 {
				cwg.Wait()
			}
		}
		cwg.Wait()
	}()
	rampSecs := time.Since(rampStart).Seconds()
	sleep(ctx, cfg.Settle)
	afterOpen := probe()

	// Hold, with an application ping per connection every Heartbeat, spread evenly.
	// The edges are read in the middle of the hold: when several load processes
	// share them, every process is then holding (their ramps end at different
	// times, and the first to finish starts closing its connections).
	holdStart := time.Now()
	midc := make(chan []edgeProbe, 1)
	go func() {
		sleep(ctx, cfg.Duration/2)
		midc <- probe()
	}()
	var live []*client.Client
	for _, c := range clients {
		if c != nil {
			live = append(live, c)
		}
	}
	var pingErrs atomic.Int64
	if cfg.Heartbeat > 0 && len(live) > 0 {
		every := cfg.Heartbeat / time.Duration(len(live))
		next := holdStart
		for i := 0; time.Since(holdStart) < cfg.Duration && ctx.Err() == nil; i++ {
			c := live[i%len(live)]
			t0 := time.Now()
			err := c.Go("ping", nil, func(_ json.RawMessage, err error) {
				if err != nil {
					pingErrs.Add(1)
					return
				}
				pingH.Record(time.Since(t0))
				pings.Add(1)
			})
			if err != nil {
				pingErrs.Add(1)
			}
			next = next.Add(every)
			if d := time.Until(next); d > 0 {
				sleep(ctx, min(d, cfg.Duration-time.Since(holdStart)))
			}
		}
	} else {
		sleep(ctx, cfg.Duration)
	}
	held := 0
	for _, c := range live {
		select {
		case <-c.Done():
		default:
			held++
		}
	}
	mid := <-midc
	end := probe()
	b := rec.Mark()
	procs := watch.Stop()
	stopProgress()
	<-progressDone
	rec.Sample()
	finish(res, rec, rec.Window(a, b), procs)
	if pe := pingErrs.Load(); pe > 0 {
		res.Errors["ping"] = pe
	}
	res.Counts["failed"] = failed.Load()
	res.Counts["held_at_end"] = int64(held)
	res.Counts["closed_during_hold"] = int64(len(live) - held)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["ramp_seconds"] = round(rampSecs, 2)
	res.Values["open_per_s"] = round(float64(len(live))/rampSecs, 1)

	var edgeConns float64
	worst := 0.0
	for i := range t.Edges {
		p := fmt.Sprintf("edge%d", i)
		if len(t.Edges) == 1 {
			p = "edge"
		}
		b0, b1, bm, b2 := before[i], afterOpen[i], mid[i], end[i]
		res.Values[p+"_pid"] = float64(pids[i])
		mine := 0.0 // this process's connections to edge i
		for k := range n {
			if clients[k] != nil && (k*cfg.Shards+cfg.Shard)%len(t.Edges) == i {
				mine++
			}
		}
		dConns := bm.conns - b0.conns
		if !bm.hasMetrics {
			dConns = mine
		}
		edgeConns += bm.conns
		res.Values[p+"_connections_mid_hold"] = bm.conns
		res.Values[p+"_rss_before_mb"] = mb(b0.rss)
		res.Values[p+"_rss_after_open_mb"] = mb(b1.rss)
		res.Values[p+"_rss_mid_hold_mb"] = mb(bm.rss)
		res.Values[p+"_rss_end_mb"] = mb(b2.rss)
		if dConns > 0 {
			per := (bm.rss - b0.rss) / dConns
			res.Values[p+"_rss_bytes_per_conn"] = round(per, 0)
			worst = max(worst, per)
			if bm.heap > 0 && b0.heap > 0 { // the edge binary registers Go's collector; tests' edges do not
				res.Values[p+"_heap_bytes_per_conn"] = round((bm.heap-b0.heap)/dConns, 0)
				res.Values[p+"_stack_bytes_per_conn"] = round((bm.stack-b0.stack)/dConns, 0)
				res.Values[p+"_goroutines_per_conn"] = round((bm.goroutines-b0.goroutines)/dConns, 2)
			}
		}
		if bm.conns > 0 {
			res.Values[p+"_rss_bytes_per_conn_total"] = round(bm.rss/bm.conns, 0)
		}
		if b0.conns > 0 && cfg.Shards == 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s already held %.0f connections before this run: its per-connection growth is mixed with theirs", p, b0.conns))
		}
		if b0.rss > 64<<20 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s's RSS was %.0f MB before the ramp (memory of earlier connections not returned to the OS): its growth understates; restart it for a clean number", p, mb(b0.rss)))
		}
	}
	if !mid[0].hasMetrics {
		edgeConns = float64(held)
		res.Notes = append(res.Notes, "the edge's /metrics was not readable: connection counts are this process's")
	}
	res.Values["edges_connections_total"] = edgeConns
	res.Notes = append(res.Notes,
		"bytes per connection = growth of the edge's RSS from before the ramp to the middle of the hold, over the growth of its connection count (both read from the edge, so other load processes' connections count too); _total = RSS over connections")
	if cfg.Shards > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("shard %d of %d: the other load processes report their own connections; the edges' count is the total", cfg.Shard, cfg.Shards))
	}
	res.Checks = []report.Check{
		check("connections held (all edges, mid-hold)", "≥ 50000", fmt.Sprintf("%.0f", edgeConns), edgeConns >= 50000),
		check("edge memory per connection", "≤ 20 KB", fmt.Sprintf("%.1f KB", worst/1024), worst > 0 && worst <= 20*1024),
	}
	return res, nil
}

func mb(b float64) float64 { return round(b/(1<<20), 1) }

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func dialCode(err error) string {
	var de *client.DialError
	if errors.As(err, &de) {
		if de.Err != nil {
			return "dial_" + string(de.Err.Code)
		}
		return "dial_http_" + strconv.Itoa(de.Status)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "dial_timeout"
	case strings.Contains(err.Error(), "address not available"), strings.Contains(err.Error(), "assign requested address"):
		return "dial_no_ports"
	case strings.Contains(err.Error(), "too many open files"):
		return "dial_fd_limit"
	case strings.Contains(err.Error(), "connection refused"):
		return "dial_refused"
	}
	return "dial_other"
}

// edgePID finds the process listening on the edge URL's port.
func edgePID(edge string) (int, error) {
	u, err := url.Parse(edge)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return 0, fmt.Errorf("edge %s: no port", edge)
	}
	return procfs.ListenerPID(port)
}

// probeEdge reads an edge's connections and memory from its /metrics, and its RSS
// from /proc when its pid is known.
func probeEdge(ctx context.Context, edge string, pid int) edgeProbe {
	var p edgeProbe
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, strings.TrimSuffix(edge, "/")+"/metrics", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			name, val, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				continue
			}
			switch name {
			case "natter_edge_connections":
				p.conns, p.hasMetrics = v, true
			case "process_resident_memory_bytes":
				p.rss = v
			case "go_memstats_heap_inuse_bytes":
				p.heap = v
			case "go_memstats_stack_inuse_bytes":
				p.stack = v
			case "go_goroutines":
				p.goroutines = v
			}
		}
		resp.Body.Close()
	}
	if pid > 0 {
		if rss, err := procfs.RSS(pid); err == nil {
			p.rss = float64(rss)
		}
	}
	return p
}
