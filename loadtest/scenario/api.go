package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// API ops the mix may hold.
const (
	OpLogin   = "login"
	OpConvs   = "conv.list"
	OpHistory = "msg.history"
)

// APIConfig sizes the api scenario.
type APIConfig struct {
	Common
	// Users are seeded with a session each; every user has ConvsPerUser 1:1
	// conversations of Messages messages.
	Users, ConvsPerUser, Messages int
	// Rate is requests per second (open loop, latency from the scheduled time);
	// 0 runs closed loop, each worker sending as soon as its last reply came.
	Rate float64
	// Concurrency is the number of workers, hence of HTTP connections.
	Concurrency int
	// Mix weighs the ops: login, conv.list, msg.history.
	Mix map[string]int
}

// API drives an HTTP mix of login, conv.list and msg.history through the edges and
// reports p50/p95/p99 per op and overall.
func API(ctx context.Context, t Target, cfg APIConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.ConvsPerUser = max(cfg.ConvsPerUser, 2) / 2 * 2
	if cfg.Users < cfg.ConvsPerUser+1 {
		return nil, fmt.Errorf("api: want more users than conversations per user (%d)", cfg.ConvsPerUser)
	}
	if len(cfg.Mix) == 0 {
		cfg.Mix = map[string]int{OpLogin: 2, OpConvs: 49, OpHistory: 49}
	}
	var wheel []string // ops by weight
	for _, op := range []string{OpLogin, OpConvs, OpHistory} {
		for range cfg.Mix[op] {
			wheel = append(wheel, op)
		}
	}
	for op := range cfg.Mix {
		if !slices.Contains([]string{OpLogin, OpConvs, OpHistory}, op) {
			return nil, fmt.Errorf("api: unknown op %q in the mix (login, conv.list, msg.history)", op)
		}
	}
	if len(wheel) == 0 {
		return nil, errors.New("api: empty mix")
	}
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	users, err := sd.Users(ctx, cfg.Users, "load")
	if err != nil {
		return nil, err
	}
	// Each user talks with its ConvsPerUser nearest neighbours on a ring.
	var pairs [][2]int64
	for i := range users {
		for j := 1; j <= cfg.ConvsPerUser/2; j++ {
			pairs = append(pairs, [2]int64{users[i].ID, users[(i+j)%len(users)].ID})
		}
	}
	convs, err := sd.Direct(ctx, pairs)
	if err != nil {
		return nil, err
	}
	byUser := map[int64][]string{}
	var bls []seed.Backlog
	for i, p := range pairs {
		byUser[p[0]] = append(byUser[p[0]], convs[i])
		byUser[p[1]] = append(byUser[p[1]], convs[i])
		if cfg.Messages > 0 {
			bls = append(bls, seed.Backlog{Conv: convs[i], Senders: []int64{p[0], p[1]}, N: cfg.Messages})
		}
	}
	if err := sd.Backlogs(ctx, bls); err != nil {
		return nil, err
	}
	seeded := time.Since(started)

	names := []string{"all", OpLogin, OpConvs, OpHistory}
	rec := report.NewRecorder([]string{"requests"}, names)
	requests := rec.Counter("requests")
	hc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		MaxIdleConns: cfg.Concurrency * 2, MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: time.Minute, DisableCompression: true,
	}}
	defer hc.CloseIdleConnections()
	do := func(ctx context.Context, op string, rnd *rand.Rand) error {
		i := rnd.IntN(len(users))
		u := users[i]
		base := t.base(i)
		var req *http.Request
		switch op {
		case OpLogin:
			body, _ := json.Marshal(map[string]string{"username": u.Name, "password": seed.Password, "device_id": "load-login"})
			req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/users/login", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		case OpConvs:
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/social/conversations?limit=20", nil)
		default:
			cs := byUser[u.ID]
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/messages/conversations/"+cs[rnd.IntN(len(cs))]+"/history?limit=20", nil)
		}
		if op != OpLogin {
			req.Header.Set("Authorization", "Bearer "+u.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			_, err := io.Copy(io.Discard, resp.Body)
			return err
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return apiError(e.Error.Code)
		}
		return apiError("http_" + strconv.Itoa(resp.StatusCode))
	}
	run := func(ctx context.Context, op string, sched time.Time, rnd *rand.Rand) {
		err := do(ctx, op, rnd)
		if err != nil {
			var ae apiError
			if errors.As(err, &ae) {
				rec.Error(op + ":" + string(ae))
			} else if ctx.Err() == nil {
				rec.Error(op + ":" + errCode(err))
			}
			return
		}
		d := time.Since(sched)
		rec.Hist("all").Record(d)
		rec.Hist(op).Record(d)
		requests.Add(1)
	}

	res := newResult("api", cfg.Common, started, map[string]any{
		"users": cfg.Users, "convs_per_user": cfg.ConvsPerUser, "messages_per_conv": cfg.Messages,
		"rate_per_s": cfg.Rate, "concurrency": cfg.Concurrency, "mix": mixString(cfg.Mix), "duration": cfg.Duration.String(),
		"edges": fmt.Sprint(t.Edges), "prefix": cfg.Prefix,
	})
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		rec.Run(pctx, time.Second, cfg.Progress, func() string { return "api" })
	}()
	watch := watchStack()
	a := rec.Mark()
	sctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	type job struct {
		op    string
		sched time.Time
	}
	var sent int64
	var sendSecs float64
	if cfg.Rate > 0 {
		jobs := make(chan job, max(int(cfg.Rate)*5, 100))
		for w := range cfg.Concurrency {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for j := range jobs {
					run(ctx, j.op, j.sched, rnd)
				}
			})
		}
		rnd := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
		start := time.Now()
		interval := float64(time.Second) / cfg.Rate
		tick := time.NewTicker(time.Millisecond)
	loop:
		for i := int64(0); ; {
			now := time.Now()
			for {
				due := start.Add(time.Duration(float64(i) * interval))
				if due.After(now) {
					break
				}
				if cfg.MaxRequests > 0 && sent >= cfg.MaxRequests {
					break loop
				}
				select {
				case jobs <- job{op: wheel[rnd.IntN(len(wheel))], sched: due}:
					sent++
				default:
					rec.Error("generator_backlog")
				}
				i++
			}
			select {
			case <-sctx.Done():
				break loop
			case <-tick.C:
			}
		}
		tick.Stop()
		sendSecs = time.Since(a.At).Seconds()
		close(jobs)
		wg.Wait()
	} else {
		var mu sync.Mutex
		for w := range cfg.Concurrency {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for sctx.Err() == nil {
					mu.Lock()
					if cfg.MaxRequests > 0 && sent >= cfg.MaxRequests {
						mu.Unlock()
						return
					}
					sent++
					mu.Unlock()
					run(ctx, wheel[rnd.IntN(len(wheel))], time.Now(), rnd)
				}
			})
		}
	}
	if cfg.Rate <= 0 {
		wg.Wait()
		sendSecs = time.Since(a.At).Seconds()
	}
	b := rec.Mark()
	procs := watch.Stop()
	stopProgress()
	<-progressDone
	rec.Sample()
	finish(res, rec, rec.Window(a, b), procs)
	res.Rates["requests"] = round(float64(res.Counts["requests"])/sendSecs, 1)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	all := res.Latency["all"]
	got := res.Rates["requests"]
	res.Checks = []report.Check{
		check("API p95 at 500 requests/s", "< 20 ms", fmt.Sprintf("%.1f ms at %.0f/s", all.P95, got), all.P95 < 20 && got >= 475 && all.Count > 0),
	}
	res.Notes = append(res.Notes, "login is argon2id by design (~20 ms of CPU each): its share of the mix sets how much of the p95 it owns; see the per-op rows")
	return res, nil
}

type apiError string

func (e apiError) Error() string { return string(e) }

func mixString(m map[string]int) string {
	var parts []string
	for _, op := range []string{OpLogin, OpConvs, OpHistory} {
		if m[op] > 0 {
			parts = append(parts, op+"="+strconv.Itoa(m[op]))
		}
	}
	return strings.Join(parts, ",")
}

// ParseMix reads "login=2,conv.list=49,msg.history=49".
func ParseMix(s string) (map[string]int, error) {
	m := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("mix %q: want op=weight,...", s)
		}
		m[k] = n
	}
	return m, nil
}
