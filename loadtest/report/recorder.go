// Package report collects a load run's measurements and writes them out: a
// Recorder holds named counters and latency histograms that the generator updates
// lock-free, samples them into a per-second time series and a live progress line;
// a Result is the run's summary, written as a table, a JSON file and a
// self-contained HTML page with inline SVG charts.
package report

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"natter/loadtest/hist"
)

// Recorder holds a run's counters and histograms. Names are fixed when it is made,
// so the hot path holds plain pointers; only error codes are added on the fly.
type Recorder struct {
	start    time.Time
	cnames   []string
	counters []*atomic.Int64
	hnames   []string
	hists    []*hist.Hist

	emu    sync.Mutex
	errors map[string]int64 // error code -> count

	mu     sync.Mutex
	series []Point
	last   Mark
}

// NewRecorder returns a Recorder with the given counters and latency histograms.
func NewRecorder(counters, latencies []string) *Recorder {
	r := &Recorder{start: time.Now(), cnames: counters, hnames: latencies, errors: map[string]int64{}}
	for range counters {
		r.counters = append(r.counters, new(atomic.Int64))
	}
	for range latencies {
		r.hists = append(r.hists, new(hist.Hist))
	}
	r.last = r.Mark()
	return r
}

// Counter returns the named counter; it panics on a name not given to NewRecorder.
func (r *Recorder) Counter(name string) *atomic.Int64 {
	i := slices.Index(r.cnames, name)
	if i < 0 {
		panic("report: unknown counter " + name)
	}
	return r.counters[i]
}

// Hist returns the named histogram; it panics on a name not given to NewRecorder.
func (r *Recorder) Hist(name string) *hist.Hist {
	i := slices.Index(r.hnames, name)
	if i < 0 {
		panic("report: unknown latency " + name)
	}
	return r.hists[i]
}

// Error counts one failure by its code (an imerr code, "timeout", "closed", ...).
func (r *Recorder) Error(code string) {
	r.emu.Lock()
	r.errors[code]++
	r.emu.Unlock()
}

// Errors returns the failures by code.
func (r *Recorder) Errors() map[string]int64 {
	r.emu.Lock()
	defer r.emu.Unlock()
	return maps.Clone(r.errors)
}

// ErrorTotal is the number of failures so far.
func (r *Recorder) ErrorTotal() int64 {
	var n int64
	for _, v := range r.Errors() {
		n += v
	}
	return n
}

// Mark is the Recorder's state at one moment.
type Mark struct {
	At     time.Time
	Counts []int64
	Hists  []*hist.Snapshot
	Errors int64
}

// Mark snapshots every counter and histogram.
func (r *Recorder) Mark() Mark {
	m := Mark{At: time.Now(), Errors: r.ErrorTotal()}
	for _, c := range r.counters {
		m.Counts = append(m.Counts, c.Load())
	}
	for _, h := range r.hists {
		m.Hists = append(m.Hists, h.Snapshot())
	}
	return m
}

// Window is what happened between two marks.
type Window struct {
	Seconds float64
	Counts  map[string]int64
	Rates   map[string]float64
	Latency map[string]hist.Summary
	Errors  int64
}

// Window summarises the interval from a to b.
func (r *Recorder) Window(a, b Mark) Window {
	w := Window{Seconds: b.At.Sub(a.At).Seconds(), Counts: map[string]int64{}, Rates: map[string]float64{},
		Latency: map[string]hist.Summary{}, Errors: b.Errors - a.Errors}
	for i, name := range r.cnames {
		n := b.Counts[i] - a.Counts[i]
		w.Counts[name] = n
		if w.Seconds > 0 {
			w.Rates[name] = round(float64(n)/w.Seconds, 1)
		}
	}
	for i, name := range r.hnames {
		w.Latency[name] = b.Hists[i].Sub(a.Hists[i]).Summary()
	}
	return w
}

// Point is one interval of the time series.
type Point struct {
	T       float64                 `json:"t"` // seconds since the recorder started, at the end of the interval
	Rates   map[string]float64      `json:"rates"`
	Latency map[string]LatencyPoint `json:"latency,omitempty"`
	Errors  int64                   `json:"errors,omitempty"`
	Extra   map[string]float64      `json:"extra,omitempty"`
}

// LatencyPoint is one interval's percentiles of one histogram.
type LatencyPoint struct {
	Count int64   `json:"n"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Sample closes the current interval, appends it to the series and returns it.
func (r *Recorder) Sample() Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Mark()
	w := r.Window(r.last, now)
	p := Point{T: round(now.At.Sub(r.start).Seconds(), 2), Rates: w.Rates, Latency: map[string]LatencyPoint{}, Errors: w.Errors}
	for name, s := range w.Latency {
		if s.Count > 0 {
			p.Latency[name] = LatencyPoint{Count: s.Count, P50: s.P50, P99: s.P99, Max: s.Max}
		}
	}
	r.series = append(r.series, p)
	r.last = now
	return p
}

// Series returns the points sampled so far.
func (r *Recorder) Series() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.series)
}

// Run samples every interval until ctx ends, writing a progress line to w (nil:
// none) from the latest point and the run's totals. On a terminal the line is
// rewritten in place; otherwise a line is printed every 10 intervals.
func (r *Recorder) Run(ctx context.Context, interval time.Duration, w io.Writer, label func() string) {
	tty := isTerminal(w)
	t := time.NewTicker(interval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			if w != nil && tty {
				fmt.Fprint(w, "\r\x1b[K")
			}
			return
		case <-t.C:
			p := r.Sample()
			n++
			if w == nil {
				continue
			}
			line := r.progressLine(p, label)
			if tty {
				fmt.Fprint(w, "\r\x1b[K"+line)
			} else if n%10 == 0 {
				fmt.Fprintln(w, line)
			}
		}
	}
}

func (r *Recorder) progressLine(p Point, label func() string) string {
	var b strings.Builder
	if label != nil {
		b.WriteString(label())
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "[%4.0fs]", p.T)
	for _, name := range r.cnames {
		fmt.Fprintf(&b, " %s %s/s", name, human(p.Rates[name]))
	}
	cum := r.Mark()
	for i, name := range r.hnames {
		if cum.Hists[i].Total > 0 {
			fmt.Fprintf(&b, " | %s p99 %s", name, fmtMS(ms(cum.Hists[i].Quantile(0.99))))
		}
	}
	fmt.Fprintf(&b, " | errors %d", cum.Errors)
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// human formats a rate compactly: 950, 12.3k, 1.2M.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}
