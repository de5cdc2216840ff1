package admin

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Monitoring: every SampleEvery the back office scrapes the Prometheus
// endpoints of ScrapeTargets (workers' METRICS_ADDR, edges' /metrics), reads the
// online set from Redis, and keeps the last hour of samples in memory. Rates and
// p95 come from the difference between two samples a minute apart (the adapter's
// natter_endpoint_duration_seconds histogram and errors counter); alert rules are
// evaluated on each sample (alerts.go).

// sample is one scrape of every target.
type sample struct {
	at     time.Time
	online int64
	conns  map[string]float64             // per edge target: natter_edge_connections
	count  map[string]float64             // per op: requests answered (histogram count, all workers)
	bucket map[string]map[float64]float64 // per op: cumulative bucket counts
	errs   float64                        // natter_endpoint_errors_total, all ops
	up     map[string]bool                // per target: answered
}

type sampler struct {
	mu      sync.Mutex
	samples []sample // oldest first, at most keep
	keep    int
}

func (m *sampler) add(s sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, s)
	if len(m.samples) > m.keep {
		m.samples = slices.Delete(m.samples, 0, len(m.samples)-m.keep)
	}
}

// window returns the latest sample and the newest one at least span older
// (or the oldest there is); ok false before two samples exist.
func (m *sampler) window(span time.Duration) (old, cur sample, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return sample{}, sample{}, false
	}
	cur = m.samples[len(m.samples)-1]
	old = m.samples[0]
	for i := len(m.samples) - 2; i >= 0; i-- {
		if cur.at.Sub(m.samples[i].at) >= span {
			old = m.samples[i]
			break
		}
	}
	return old, cur, true
}

func (m *sampler) all() []sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.samples)
}

// scrape takes one sample.
func (s *Service) scrape(ctx context.Context) sample {
	sm := sample{at: s.now(), conns: map[string]float64{}, count: map[string]float64{}, bucket: map[string]map[float64]float64{}, up: map[string]bool{}}
	if s.presence != nil {
		if n, err := s.presence.OnlineCount(ctx); err == nil {
			sm.online = n
		}
	}
	for _, target := range s.cfg.ScrapeTargets {
		fams, err := s.fetch(ctx, target)
		sm.up[target] = err == nil
		if err != nil {
			s.log.Debug().Err(err).Str("target", target).Msg("scrape")
			continue
		}
		if f := fams["natter_edge_connections"]; f != nil && len(f.Metric) > 0 {
			sm.conns[target] = value(f.Metric[0])
		}
		if f := fams["natter_endpoint_duration_seconds"]; f != nil {
			for _, m := range f.Metric {
				op := label(m, "op")
				h := m.GetHistogram()
				sm.count[op] += float64(h.GetSampleCount())
				if sm.bucket[op] == nil {
					sm.bucket[op] = map[float64]float64{}
				}
				for _, b := range h.Bucket {
					if !math.IsInf(b.GetUpperBound(), 1) { // the count is +Inf's, added below
						sm.bucket[op][b.GetUpperBound()] += float64(b.GetCumulativeCount())
					}
				}
				sm.bucket[op][math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		if f := fams["natter_endpoint_errors_total"]; f != nil {
			for _, m := range f.Metric {
				sm.errs += value(m)
			}
		}
	}
	return sm
}

// value is a gauge's, counter's or untyped sample's value.
func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return m.GetUntyped().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (s *Service) fetch(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
}

// OpStat is one op's traffic over the last minute.
type OpStat struct {
	Op       string  `json:"op"`
	PerSec   float64 `json:"per_sec"`
	P95Ms    float64 `json:"p95_ms"`
	Requests float64 `json:"requests"`
}

// Point is one sample of the dashboard's charts.
type Point struct {
	At         int64   `json:"at"`
	Online     int64   `json:"online"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P95Ms      float64 `json:"p95_ms"`
}

// Metrics is admin.monitoring.metrics's answer.
type Metrics struct {
	At           int64              `json:"at"`
	OnlineUsers  int64              `json:"online_users"`
	Connections  map[string]float64 `json:"connections"` // per edge (scrape target)
	MsgsPerSec   float64            `json:"msgs_per_sec"`
	ErrorsPerSec float64            `json:"errors_per_sec"`
	P95Ms        float64            `json:"p95_ms"` // the slowest op's
	Ops          []OpStat           `json:"ops"`
	History      []Point            `json:"history"` // the last hour, oldest first
	Targets      map[string]bool    `json:"targets"` // scrape target -> answered
}

// rateWindow is the span rates and p95 are measured over.
const rateWindow = time.Minute

// current computes the metrics of the latest sample.
func (s *Service) current() Metrics {
	out := Metrics{Connections: map[string]float64{}, Ops: []OpStat{}, History: []Point{}, Targets: map[string]bool{}}
	old, cur, ok := s.samples.window(rateWindow)
	if !ok {
		if all := s.samples.all(); len(all) == 1 {
			cur = all[0]
			out.At, out.OnlineUsers, out.Connections, out.Targets = ms(cur.at), cur.online, cur.conns, cur.up
		}
		return out
	}
	out.At, out.OnlineUsers, out.Connections, out.Targets = ms(cur.at), cur.online, cur.conns, cur.up
	out.Ops, out.MsgsPerSec, out.ErrorsPerSec, out.P95Ms = stats(old, cur)
	all := s.samples.all()
	for i := 1; i < len(all); i++ {
		// Each point: the rate since the sample a window before it (or the first).
		j := i - 1
		for j > 0 && all[i].at.Sub(all[j].at) < rateWindow {
			j--
		}
		_, msgs, _, p95 := stats(all[j], all[i])
		out.History = append(out.History, Point{At: ms(all[i].at), Online: all[i].online, MsgsPerSec: msgs, P95Ms: p95})
	}
	return out
}

// stats compares two samples: per-op rates and p95s, msgs/s (msg.send), errors/s
// and the highest p95.
func stats(old, cur sample) (ops []OpStat, msgs, errs, maxP95 float64) {
	secs := cur.at.Sub(old.at).Seconds()
	ops = []OpStat{}
	if secs <= 0 {
		return ops, 0, 0, 0
	}
	for op, n := range cur.count {
		d := n - old.count[op]
		if d <= 0 {
			continue
		}
		st := OpStat{Op: op, Requests: d, PerSec: d / secs, P95Ms: quantile(0.95, old.bucket[op], cur.bucket[op]) * 1000}
		ops = append(ops, st)
		maxP95 = math.Max(maxP95, st.P95Ms)
		if op == "msg.send" {
			msgs = st.PerSec
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Requests > ops[j].Requests })
	return ops, msgs, math.Max(cur.errs-old.errs, 0) / secs, maxP95
}

// quantile estimates the q-quantile (seconds) of the observations between two
// cumulative bucket sets, interpolating linearly inside the bucket it falls in
// (as Prometheus's histogram_quantile does).
func quantile(q float64, old, cur map[float64]float64) float64 {
	bounds := make([]float64, 0, len(cur))
	for b := range cur {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := cur[math.Inf(1)] - old[math.Inf(1)]
	if total <= 0 {
		return 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := cur[b] - old[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound // past the last finite bucket: its bound is all one can say
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}

// metricValue is the value an alert rule's metric names in m: online_users,
// connections (all edges), msgs_per_sec, errors_per_sec, p95_ms (the slowest
// op) or p95_ms:<op>, targets_down.
func metricValue(m Metrics, name string) (float64, bool) {
	switch name {
	case "online_users":
		return float64(m.OnlineUsers), true
	case "connections":
		var n float64
		for _, v := range m.Connections {
			n += v
		}
		return n, true
	case "msgs_per_sec":
		return m.MsgsPerSec, true
	case "errors_per_sec":
		return m.ErrorsPerSec, true
	case "p95_ms":
		return m.P95Ms, true
	case "targets_down":
		var n float64
		for _, up := range m.Targets {
			if !up {
				n++
			}
		}
		return n, true
	}
	if op, ok := strings.CutPrefix(name, "p95_ms:"); ok {
		for _, st := range m.Ops {
			if st.Op == op {
				return st.P95Ms, true
			}
		}
		return 0, true // no traffic: no latency
	}
	return 0, false
}

// validMetric tells whether an alert rule may name metric.
func validMetric(name string) bool {
	if strings.HasPrefix(name, "p95_ms:") {
		return len(name) > len("p95_ms:") && len(name) <= 64
	}
	_, ok := metricValue(Metrics{}, name)
	return ok
}
