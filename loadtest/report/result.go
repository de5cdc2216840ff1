package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"natter/loadtest/hist"
)

// Result is one run's summary: what a person reads in the table and the HTML page,
// and what tools read in the JSON file.
type Result struct {
	Scenario string         `json:"scenario"`
	Command  string         `json:"command"`
	Started  time.Time      `json:"started"`
	Seconds  float64        `json:"measured_s"` // the measured window (sending, holding, ...)
	Params   map[string]any `json:"params"`
	Machine  Machine        `json:"machine"`
	// Counts are totals over the window; Rates are Counts per second of it.
	Counts  map[string]int64        `json:"counts"`
	Rates   map[string]float64      `json:"rates"`
	Latency map[string]hist.Summary `json:"latency"`
	Errors  map[string]int64        `json:"errors"`
	// Values are the scenario's own numbers (edge RSS, bytes per connection,
	// catch-up time, ...), with their unit in the name.
	Values    map[string]float64 `json:"values,omitempty"`
	Processes []Process          `json:"processes,omitempty"`
	Steps     []Step             `json:"steps,omitempty"`
	Checks    []Check            `json:"checks,omitempty"`
	Notes     []string           `json:"notes,omitempty"`
	Series    []Point            `json:"series"`
	// Metrics are samples of other processes' /metrics (soak runs).
	Metrics []MetricSample `json:"metrics,omitempty"`
}

// MetricSample is one reading of other processes' metrics: Values by
// "<process> <metric>", T seconds after sending started.
type MetricSample struct {
	T      float64            `json:"t"`
	Values map[string]float64 `json:"values"`
}

// Machine is where the run happened.
type Machine struct {
	CPUs     int     `json:"cpus"`
	CPU      string  `json:"cpu"`
	MemoryGB float64 `json:"memory_gb"`
	Kernel   string  `json:"kernel"`
	Go       string  `json:"go"`
	Load     string  `json:"loadavg_at_end"`
	FDLimit  uint64  `json:"fd_limit"`
}

// Process is one process's share of the machine during the window.
type Process struct {
	Name   string  `json:"name"`
	PID    int     `json:"pid"`
	CPUPct float64 `json:"cpu_pct"` // of one core; 200 = both cores of a 2-core machine
	RSSMB  float64 `json:"rss_mb"`  // at the end
}

// Step is one rate of a step run.
type Step struct {
	Rate    float64                 `json:"target_rate"`
	Held    bool                    `json:"held"`
	Why     string                  `json:"why,omitempty"` // why it did not hold
	Seconds float64                 `json:"seconds"`
	Counts  map[string]int64        `json:"counts"`
	Rates   map[string]float64      `json:"rates"`
	Latency map[string]hist.Summary `json:"latency"`
}

// Check compares a number with a target (issue 5's), for the reader; a load run
// never fails on one.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// WriteTable prints r as aligned text.
func WriteTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n== %s  (%s, %.1fs measured)\n", r.Scenario, r.Started.Format(time.RFC3339), r.Seconds)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %.1f GB, Linux %s, %s, load %s\n", r.Machine.CPUs, r.Machine.CPU, r.Machine.MemoryGB, r.Machine.Kernel, r.Machine.Go, r.Machine.Load)
	fmt.Fprintf(w, "command: %s\n", r.Command)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Counts) > 0 {
		fmt.Fprintln(tw, "\ncount\ttotal\tper second\t")
		for _, k := range sortedKeys(r.Counts) {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", k, r.Counts[k], rate(r.Rates, k))
		}
	}
	if len(r.Latency) > 0 {
		fmt.Fprintln(tw, "\nlatency (ms)\tn\tp50\tp90\tp95\tp99\tp99.9\tmax\tmean\t")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", k, s.Count, s.P50, s.P90, s.P95, s.P99, s.P999, s.Max, s.Mean)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(tw, "\nerror\tcount\t")
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Errors[k])
		}
	}
	if len(r.Values) > 0 {
		fmt.Fprintln(tw, "\nvalue\t\t")
		for _, k := range sortedKeys(r.Values) {
			fmt.Fprintf(tw, "%s\t%s\t\n", k, num(r.Values[k]))
		}
	}
	if len(r.Processes) > 0 {
		fmt.Fprintln(tw, "\nprocess\tpid\tCPU % of a core\tRSS MB\t")
		for _, p := range r.Processes {
			if p.PID == 0 { // machine-wide rows
				fmt.Fprintf(tw, "%s\t\t%.0f\t\t\n", p.Name, p.CPUPct)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t\n", p.Name, p.PID, p.CPUPct, p.RSSMB)
		}
	}
	_ = tw.Flush()
	if len(r.Steps) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		lat := stepLatencyKeys(r.Steps)
		fmt.Fprint(tw, "\nstep rate/s\theld\t")
		rk := stepRateKeys(r.Steps)
		for _, k := range rk {
			fmt.Fprintf(tw, "%s/s\t", k)
		}
		for _, k := range lat {
			fmt.Fprintf(tw, "%s p50\t%s p95\t%s p99\t", k, k, k)
		}
		fmt.Fprintln(tw, "why\t")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%.0f\t%v\t", s.Rate, s.Held)
			for _, k := range rk {
				fmt.Fprintf(tw, "%.0f\t", s.Rates[k])
			}
			for _, k := range lat {
				fmt.Fprintf(tw, "%.2f\t%.2f\t%.2f\t", s.Latency[k].P50, s.Latency[k].P95, s.Latency[k].P99)
			}
			fmt.Fprintf(tw, "%s\t\n", s.Why)
		}
		_ = tw.Flush()
	}
	if len(r.Checks) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 5):")
		for _, c := range r.Checks {
			mark := "MISSED"
			if c.OK {
				mark = "met"
			}
			fmt.Fprintf(w, "  %-6s %s: want %s, got %s\n", mark, c.Name, c.Want, c.Got)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func rate(rates map[string]float64, k string) string {
	v, ok := rates[k]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.1f", v)
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func stepRateKeys(steps []Step) []string {
	keys := map[string]bool{}
	for _, s := range steps {
		for k := range s.Rates {
			keys[k] = true
		}
	}
	return slices.Sorted(maps.Keys(keys))
}

func stepLatencyKeys(steps []Step) []string {
	keys := map[string]bool{}
	for _, s := range steps {
		for k := range s.Latency {
			keys[k] = true
		}
	}
	return slices.Sorted(maps.Keys(keys))
}

// WriteFiles writes r as <dir>/<scenario>-<time>[-<tag>].json and .html and returns
// both paths; tag (the run's prefix, say) keeps concurrent runs apart.
func WriteFiles(dir string, r *Result, tag string) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	base := filepath.Join(dir, r.Scenario+"-"+r.Started.Format("20060102-150405"))
	if tag = strings.Trim(tag, "-"); tag != "" {
		base += "-" + tag
	}
	jsonPath, htmlPath = base+".json", base+".html"
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	var page strings.Builder
	writeHTML(&page, r)
	if err := os.WriteFile(htmlPath, []byte(page.String()), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, htmlPath, nil
}
