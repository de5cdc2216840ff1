package scenario

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"natter/loadtest/report"
)

// MetricsTarget is a process whose Prometheus /metrics a soak run samples.
type MetricsTarget struct {
	Name, URL string
}

// Limit bounds one metric's growth in a soak run. After the warm-up, the samples
// are split in thirds; growth is the last third's statistic minus the first
// third's (Stat "min" for memory, which rises and falls with every garbage
// collection: the lowest samples are nearest the live heap; "median" for
// goroutines), and its slope is growth over the time between the thirds'
// middles. A metric fails when its growth exceeds Floor and its slope exceeds
// PerHour: short runs are judged on the floor, hour-long ones on the slope.
type Limit struct {
	Metric  string
	Unit    float64 // for display: 1<<20 for MiB
	PerHour float64
	Floor   float64
	Stat    string
}

// SoakLimits are the default limits (docs/reliability.md).
var SoakLimits = []Limit{
	{Metric: "process_resident_memory_bytes", Unit: 1 << 20, PerHour: 32 << 20, Floor: 16 << 20, Stat: "min"},
	{Metric: "go_memstats_heap_inuse_bytes", Unit: 1 << 20, PerHour: 32 << 20, Floor: 16 << 20, Stat: "min"},
	{Metric: "go_goroutines", Unit: 1, PerHour: 60, Floor: 50, Stat: "median"},
}

// SoakConfig is a mixed load held for a long time while the stack's processes
// are watched through their /metrics.
type SoakConfig struct {
	MixConfig
	Targets []MetricsTarget
	// Every is the sampling interval (0: 30 s); samples before Warmup (0: a tenth
	// of the duration, at least a minute, at most half of it) are not judged.
	Every, Warmup time.Duration
	Limits        []Limit // nil: SoakLimits
}

// Soak holds a moderate mixed load for the duration, samples every target's
// resident memory, heap in use and goroutines every interval, and checks that
// none grows beyond its Limit after the warm-up, and that nothing was lost,
// shown twice or out of order.
func Soak(ctx context.Context, t Target, cfg SoakConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	if err := cfg.check("soak"); err != nil {
		return nil, err
	}
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("soak: no /metrics to watch")
	}
	if cfg.Every <= 0 {
		cfg.Every = 30 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = min(max(cfg.Duration/10, time.Minute), cfg.Duration/2)
	}
	if cfg.Limits == nil {
		cfg.Limits = SoakLimits
	}
	metrics := make([]string, len(cfg.Limits))
	for i, l := range cfg.Limits {
		metrics[i] = l.Metric
	}
	var (
		mu           sync.Mutex
		samples      []report.MetricSample
		scrapeErrors []string
		wg           sync.WaitGroup
	)
	sctx, stop := context.WithCancel(ctx)
	defer stop() // the sampler ends by itself once sending has ended
	onSending := func(start time.Time) {
		wg.Go(func() {
			tk := time.NewTicker(cfg.Every)
			defer tk.Stop()
			for {
				s := report.MetricSample{T: round(time.Since(start).Seconds(), 1), Values: map[string]float64{}}
				for _, tg := range cfg.Targets {
					vals, err := scrape(sctx, tg.URL, metrics)
					if err != nil {
						mu.Lock()
						scrapeErrors = append(scrapeErrors, fmt.Sprintf("%s at %.0fs: %v", tg.Name, s.T, err))
						mu.Unlock()
						continue
					}
					for k, v := range vals {
						s.Values[tg.Name+" "+k] = v
					}
				}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
				select {
				case <-tk.C:
					if time.Since(start) > cfg.Duration {
						return // sending has ended
					}
				case <-sctx.Done():
					return
				}
			}
		})
	}
	res, err := mix(ctx, t, cfg.MixConfig, "soak", map[string]any{"every": cfg.Every.String(), "warmup": cfg.Warmup.String()}, onSending)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	res.Metrics = samples
	for _, e := range scrapeErrors {
		res.Notes = append(res.Notes, "scrape of /metrics failed: "+e)
	}
	warm := cfg.Warmup.Seconds()
	for _, tg := range cfg.Targets {
		for _, l := range cfg.Limits {
			key := tg.Name + " " + l.Metric
			var ts, vs []float64
			for _, s := range samples {
				if v, ok := s.Values[key]; ok && s.T >= warm {
					ts, vs = append(ts, s.T), append(vs, v)
				}
			}
			res.Checks = append(res.Checks, judge(key, ts, vs, l))
		}
	}
	bad := Clean(res)
	res.Checks = append(res.Checks, check("lost / duplicated / out of order / seq reused", "0 / 0 / 0 / 0",
		fmt.Sprintf("%d / %d / %d / %d", res.Counts["lost"], res.Counts["duplicated"], res.Counts["out_of_order"], res.Counts["seq_reused"]),
		bad == ""))
	return res, nil
}

// judge applies l to one metric's samples after the warm-up (times ts in
// seconds, values vs).
func judge(name string, ts, vs []float64, l Limit) report.Check {
	want := fmt.Sprintf("growth ≤ %s or ≤ %s/h", unit(l.Floor, l), unit(l.PerHour, l))
	n := len(vs) / 3
	if n < 1 {
		return check(name, want, fmt.Sprintf("%d samples after the warm-up: too few to judge", len(vs)), len(vs) > 0)
	}
	stat := func(v []float64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		if l.Stat == "min" {
			return v[0]
		}
		return v[len(v)/2]
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	a, b := stat(vs[:n]), stat(vs[len(vs)-n:])
	growth := b - a
	hours := (mean(ts[len(ts)-n:]) - mean(ts[:n])) / 3600
	slope := growth / hours
	sign := func(v float64) string {
		if v >= 0 {
			return "+" + unit(v, l)
		}
		return unit(v, l)
	}
	got := fmt.Sprintf("%s → %s (%s, %s/h over %.1f min, %d samples)", unit(a, l), unit(b, l), sign(growth), sign(slope), hours*60, len(vs))
	return check(name, want, got, growth <= l.Floor || slope <= l.PerHour)
}

func unit(v float64, l Limit) string {
	if l.Unit == 1<<20 {
		return strconv.FormatFloat(v/l.Unit, 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(v/max(l.Unit, 1), 'f', 0, 64)
}

// scrape reads the given metrics (without labels) from a Prometheus text page.
func scrape(ctx context.Context, url string, names []string) (map[string]float64, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: none of %v", url, names)
	}
	return out, sc.Err()
}
