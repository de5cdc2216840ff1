package report

import (
	"cmp"
	"fmt"
	"html"
	"math"
	"slices"
	"strings"
	"time"
)

// writeHTML renders r as one self-contained page: no scripts, no external files.
func writeHTML(b *strings.Builder, r *Result) {
	esc := html.EscapeString
	fmt.Fprintf(b, `<!doctype html><html><head><meta charset="utf-8"><title>natter load: %s</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
code{background:#f4f4f4;padding:2px 4px}.ok{color:#1a7f37}.miss{color:#cf222e}
svg text{font:11px system-ui,sans-serif;fill:#444}
</style></head><body>
`, esc(r.Scenario))
	fmt.Fprintf(b, "<h1>natter load test: %s</h1>\n", esc(r.Scenario))
	fmt.Fprintf(b, "<p>%s, %.1f s measured<br>machine: %d CPUs (%s), %.1f GB, Linux %s, %s, load at end %s<br>command: <code>%s</code></p>\n",
		esc(r.Started.Format(time.RFC1123)), r.Seconds, r.Machine.CPUs, esc(r.Machine.CPU), r.Machine.MemoryGB,
		esc(r.Machine.Kernel), esc(r.Machine.Go), esc(r.Machine.Load), esc(r.Command))

	if len(r.Checks) > 0 {
		b.WriteString("<h2>Targets (issue 5)</h2><table><tr><th>target</th><th>want</th><th>got</th><th></th></tr>\n")
		for _, c := range r.Checks {
			cls, mark := "miss", "missed"
			if c.OK {
				cls, mark = "ok", "met"
			}
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td class=%s>%s</td></tr>\n", esc(c.Name), esc(c.Want), esc(c.Got), cls, mark)
		}
		b.WriteString("</table>\n")
	}
	if len(r.Latency) > 0 {
		b.WriteString("<h2>Latency (ms)</h2><table><tr><th></th><th>n</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>\n")
		for _, k := range sortedKeys(r.Latency) {
			s := r.Latency[k]
			fmt.Fprintf(b, "<tr><td>%s</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td></tr>\n",
				esc(k), s.Count, s.P50, s.P90, s.P95, s.P99, s.P999, s.Max, s.Mean)
		}
		b.WriteString("</table>\n")
		b.WriteString(percentileChart(r))
	}
	if len(r.Series) > 1 {
		b.WriteString("<h2>Throughput over time (per second)</h2>\n")
		// Rates of very different sizes (group messages and their deliveries) get
		// charts of their own, so the small ones do not lie flat on the axis.
		var groups [][]chartLine
		var top float64
		for i, k := range seriesRateKeysByPeak(r.Series) {
			l := chartLine{name: k, color: palette[i%len(palette)]}
			peak := 0.0
			for _, p := range r.Series {
				l.pts = append(l.pts, [2]float64{p.T, p.Rates[k]})
				peak = math.Max(peak, p.Rates[k])
			}
			if len(groups) == 0 || peak*10 < top {
				groups = append(groups, nil)
				top = peak
			}
			groups[len(groups)-1] = append(groups[len(groups)-1], l)
		}
		for _, g := range groups {
			b.WriteString(lineChart(g, "s", "/s"))
		}
		lk := seriesLatencyKeys(r.Series)
		if len(lk) > 0 {
			b.WriteString("<h2>Latency over time (ms; solid p99, dashed p50, per second)</h2>\n")
			var ls []chartLine
			for i, k := range lk {
				p99 := chartLine{name: k + " p99", color: palette[i%len(palette)]}
				p50 := chartLine{name: k + " p50", color: palette[i%len(palette)], dash: true}
				for _, p := range r.Series {
					if lp, ok := p.Latency[k]; ok {
						p99.pts = append(p99.pts, [2]float64{p.T, lp.P99})
						p50.pts = append(p50.pts, [2]float64{p.T, lp.P50})
					}
				}
				ls = append(ls, p99, p50)
			}
			b.WriteString(lineChart(ls, "s", "ms"))
		}
	}
	if len(r.Steps) > 0 {
		b.WriteString("<h2>Steps</h2><table><tr><th>target rate/s</th><th>held</th>")
		rk, lk := stepRateKeys(r.Steps), stepLatencyKeys(r.Steps)
		for _, k := range rk {
			fmt.Fprintf(b, "<th>%s/s</th>", esc(k))
		}
		for _, k := range lk {
			fmt.Fprintf(b, "<th>%s p50</th><th>%s p95</th><th>%s p99</th>", esc(k), esc(k), esc(k))
		}
		b.WriteString("<th>why not</th></tr>\n")
		for _, s := range r.Steps {
			fmt.Fprintf(b, "<tr><td>%.0f</td><td>%v</td>", s.Rate, s.Held)
			for _, k := range rk {
				fmt.Fprintf(b, "<td>%.0f</td>", s.Rates[k])
			}
			for _, k := range lk {
				fmt.Fprintf(b, "<td>%.2f</td><td>%.2f</td><td>%.2f</td>", s.Latency[k].P50, s.Latency[k].P95, s.Latency[k].P99)
			}
			fmt.Fprintf(b, "<td>%s</td></tr>\n", esc(s.Why))
		}
		b.WriteString("</table>\n")
	}
	if len(r.Counts) > 0 {
		b.WriteString("<h2>Counts</h2><table><tr><th></th><th>total</th><th>per second</th></tr>\n")
		for _, k := range sortedKeys(r.Counts) {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%d</td><td>%s</td></tr>\n", esc(k), r.Counts[k], rate(r.Rates, k))
		}
		b.WriteString("</table>\n")
	}
	if len(r.Errors) > 0 {
		b.WriteString("<h2>Errors</h2><table><tr><th>code</th><th>count</th></tr>\n")
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%d</td></tr>\n", esc(k), r.Errors[k])
		}
		b.WriteString("</table>\n")
	}
	if len(r.Values) > 0 {
		b.WriteString("<h2>Values</h2><table>\n")
		for _, k := range sortedKeys(r.Values) {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td></tr>\n", esc(k), num(r.Values[k]))
		}
		b.WriteString("</table>\n")
	}
	if len(r.Processes) > 0 {
		b.WriteString("<h2>Processes during the window</h2><table><tr><th>process</th><th>pid</th><th>CPU % of a core</th><th>RSS MB</th></tr>\n")
		for _, p := range r.Processes {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%d</td><td>%.0f</td><td>%.0f</td></tr>\n", esc(p.Name), p.PID, p.CPUPct, p.RSSMB)
		}
		b.WriteString("</table>\n")
	}
	if len(r.Params) > 0 {
		b.WriteString("<h2>Parameters</h2><table>\n")
		for _, k := range sortedKeys(r.Params) {
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td></tr>\n", esc(k), esc(fmt.Sprint(r.Params[k])))
		}
		b.WriteString("</table>\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(b, "<p>note: %s</p>\n", esc(n))
	}
	b.WriteString("</body></html>\n")
}

var palette = []string{"#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#0a3069", "#e16f24", "#57606a"}

type chartLine struct {
	name  string
	color string
	dash  bool
	pts   [][2]float64
}

// seriesRateKeysByPeak lists the rates that are ever non-zero, highest peak first.
func seriesRateKeysByPeak(ps []Point) []string {
	peak := map[string]float64{}
	for _, p := range ps {
		for k, v := range p.Rates {
			if v != 0 {
				peak[k] = math.Max(peak[k], v)
			}
		}
	}
	keys := sortedKeys(peak)
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(peak[b], peak[a]) })
	return keys
}

func seriesLatencyKeys(ps []Point) []string {
	keys := map[string]bool{}
	for _, p := range ps {
		for k := range p.Latency {
			keys[k] = true
		}
	}
	return sortedKeys(keys)
}

const (
	chartW, chartH = 960, 300
	padL, padR     = 64, 180
	padT, padB     = 12, 32
)

// lineChart draws lines on shared axes starting at zero, with a legend.
func lineChart(lines []chartLine, xUnit, yUnit string) string {
	maxX, maxY := 0.0, 0.0
	for _, l := range lines {
		for _, p := range l.pts {
			maxX, maxY = math.Max(maxX, p[0]), math.Max(maxY, p[1])
		}
	}
	if maxX == 0 {
		maxX = 1
	}
	maxY = niceCeil(maxY)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(v float64) float64 { return padL + v/maxX*pw }
	y := func(v float64) float64 { return padT + ph - v/maxY*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="#fff" stroke="#ccc"/>`, padL, padT, pw, ph)
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, padL, padL+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, axisNum(v))
	}
	for i := 0; i <= 6; i++ {
		v := maxX * float64(i) / 6
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f%s</text>`, x(v), chartH-padB+16, v, xUnit)
	}
	fmt.Fprintf(&b, `<text x="4" y="%d">%s</text>`, padT+10, html.EscapeString(yUnit))
	for i, l := range lines {
		if len(l.pts) == 0 {
			continue
		}
		var pts strings.Builder
		for _, p := range l.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p[0]), y(p[1]))
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5,4"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`, l.color, dash, strings.TrimSpace(pts.String()))
		ly := padT + 14 + i*16
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`, chartW-padR+10, chartW-padR+34, ly-4, ly-4, l.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, chartW-padR+40, ly, html.EscapeString(l.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// percentileChart draws each latency's percentiles of the whole run as bars.
func percentileChart(r *Result) string {
	keys := sortedKeys(r.Latency)
	qs := []string{"p50", "p90", "p95", "p99", "p99.9", "max"}
	maxV := 0.0
	for _, k := range keys {
		maxV = math.Max(maxV, r.Latency[k].Max)
	}
	if maxV == 0 {
		return ""
	}
	// A log scale keeps p50 readable next to a large max.
	top := math.Pow(10, math.Ceil(math.Log10(maxV)))
	bottom := 0.01
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	y := func(v float64) float64 {
		v = math.Max(v, bottom)
		return padT + ph - (math.Log10(v)-math.Log10(bottom))/(math.Log10(top)-math.Log10(bottom))*ph
	}
	var b strings.Builder
	b.WriteString("<h2>Latency percentiles (ms, log scale)</h2>\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="#fff" stroke="#ccc"/>`, padL, padT, pw, ph)
	for v := bottom; v <= top*1.001; v *= 10 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, padL, padL+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, axisNum(v))
	}
	group := pw / float64(len(qs))
	bar := group / float64(len(keys)+1)
	for qi, q := range qs {
		gx := padL + float64(qi)*group
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, gx+group/2, chartH-padB+16, q)
		for ki, k := range keys {
			s := r.Latency[k]
			v := []float64{s.P50, s.P90, s.P95, s.P99, s.P999, s.Max}[qi]
			bx := gx + bar/2 + float64(ki)*bar
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.2f ms</title></rect>`,
				bx, y(v), bar*0.9, padT+ph-y(v), palette[ki%len(palette)], html.EscapeString(k), q, v)
		}
	}
	for ki, k := range keys {
		ly := padT + 14 + ki*16
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="20" height="10" fill="%s"/>`, chartW-padR+10, ly-9, palette[ki%len(palette)])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, chartW-padR+36, ly, html.EscapeString(k))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func axisNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1 || v == 0:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}
