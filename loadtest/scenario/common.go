// Package scenario runs natter's load scenarios (issue 5) against a running stack
// through its edges, exactly as clients would: direct (1:1 messages at an
// open-loop rate), group (fan-out to online members), connect (many idle
// connections), catchup (sync after missing messages) and api (an HTTP mix).
// Each returns a report.Result; package main turns flags into Configs and writes
// the results out.
//
// The generator shares the machine with everything it measures, so its hot paths
// are cheap: requests are appended, not encoded; pushes are scanned, not decoded;
// latencies go into lock-free histograms.
package scenario

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"natter/loadtest/client"
	"natter/loadtest/procfs"
	"natter/loadtest/report"
	"natter/loadtest/seed"
	"natter/shared/auth"
	"natter/shared/imerr"
)

// Target is the stack under load.
type Target struct {
	// Edges are the edges' base URLs (http://127.0.0.1:8080); clients are spread
	// over them in turn.
	Edges []string
	// DB is natter's database, for seeding; Signer mints access tokens with the
	// edges' secret.
	DB     *sql.DB
	Signer *auth.Signer
}

// Common are the settings every scenario shares.
type Common struct {
	// Duration is how long the measured phase lasts (sending, holding).
	Duration time.Duration
	// MaxRequests caps the requests one run sends (0: no cap besides Duration).
	MaxRequests int64
	// Progress receives the live progress line (nil: none).
	Progress io.Writer
	// Prefix starts every seeded username; unique per run (NewPrefix).
	Prefix string
	// Cleanup deletes the seeded rows (and the run's messages) at the end.
	Cleanup bool
	// DialConcurrency bounds WebSocket dials in flight while connecting users.
	DialConcurrency int
	// Command is recorded in the result.
	Command string
}

func (c Common) withDefaults() Common {
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = NewPrefix("")
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 32
	}
	return c
}

// NewPrefix returns a fresh username prefix, "lt<6 random characters><extra>-".
func NewPrefix(extra string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := []byte("lt")
	for range 6 {
		b = append(b, alphabet[rand.IntN(len(alphabet))])
	}
	return string(b) + extra + "-"
}

// CheckLoopback refuses a URL whose host is not on 127.0.0.0/8 (or localhost):
// the load tool only ever loads this machine.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("edge %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "ws" {
		return fmt.Errorf("edge %q: want http://127.0.0.1:<port>", raw)
	}
	return CheckLoopbackHost(u.Hostname())
}

// CheckLoopbackHost refuses a host that is not 127.0.0.0/8 or localhost.
func CheckLoopbackHost(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return fmt.Errorf("host %q: the load tool only targets loopback addresses (127.0.0.0/8)", host)
	}
	return nil
}

func (t Target) check() error {
	if len(t.Edges) == 0 {
		return errors.New("no edge to load")
	}
	for _, e := range t.Edges {
		if err := CheckLoopback(e); err != nil {
			return err
		}
	}
	if t.DB == nil || t.Signer == nil {
		return errors.New("a database and a token signer are needed to seed users")
	}
	return nil
}

func (t Target) base(i int) string {
	return strings.TrimSuffix(t.Edges[i%len(t.Edges)], "/")
}

func (t Target) ws(i int) string {
	b := t.base(i)
	return "ws" + strings.TrimPrefix(b, "http") + "/ws"
}

// connectAll opens one session per user (user i on edge i mod len(edges), its
// redials on the edges after it), at most conc at once; opts(i) gives each its
// options (the token and edges are filled in).
func connectAll(ctx context.Context, t Target, users []seed.User, conc int, opts func(i int) client.SessionOptions) ([]*client.Session, error) {
	out := make([]*client.Session, len(users))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range users {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			closeAll(out)
			return nil, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			o := opts(i)
			o.Token = users[i].Token
			for e := range t.Edges {
				o.URLs = append(o.URLs, t.ws(i+e))
			}
			s, err := client.Connect(ctx, o)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("connect %s: %w", users[i].Name, err)
				}
				mu.Unlock()
				return
			}
			out[i] = s
		})
	}
	wg.Wait()
	if first != nil {
		closeAll(out)
		return nil, first
	}
	return out, nil
}

func closeAll(ss []*client.Session) {
	var wg sync.WaitGroup
	for _, s := range ss {
		if s != nil {
			wg.Go(func() { _ = s.Close() })
		}
	}
	wg.Wait()
}

// errCode names an error for the error table: an imerr code, or a coarse class.
func errCode(err error) string {
	var ie *imerr.Error
	switch {
	case errors.As(err, &ie):
		return string(ie.Code)
	case errors.Is(err, client.ErrOffline):
		return "offline"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case strings.Contains(err.Error(), "connection closed"):
		return "connection_closed"
	default:
		return "other"
	}
}

// newResult fills what every result has.
func newResult(name string, c Common, started time.Time, params map[string]any) *report.Result {
	return &report.Result{Scenario: name, Command: c.Command, Started: started, Params: params,
		Counts: map[string]int64{}, Rates: map[string]float64{}, Values: map[string]float64{}}
}

// finish adds the window's numbers and the machine's facts.
func finish(r *report.Result, rec *report.Recorder, w report.Window, procs []report.Process) {
	r.Seconds = round(w.Seconds, 2)
	for k, v := range w.Counts {
		r.Counts[k] = v
	}
	for k, v := range w.Rates {
		r.Rates[k] = v
	}
	r.Latency = w.Latency
	r.Errors = rec.Errors()
	r.Series = rec.Series()
	r.Processes = procs
	r.Machine = procfs.Machine()
}

// watchStack starts following the CPU of the stack's processes on this machine.
func watchStack() *procfs.Watch { return procfs.Start(procfs.StackProcesses()) }

func check(name, want, got string, ok bool) report.Check {
	return report.Check{Name: name, Want: want, Got: got, OK: ok}
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// field returns the raw value of "key" in a flat JSON object: a string's content
// without its quotes, or a number. It finds the first occurrence, so it serves
// objects whose wanted keys come before any nested content (natter's encodings).
func field(b []byte, key string) ([]byte, bool) {
	v, _, ok := fieldRest(b, key)
	return v, ok
}

// fieldRest is field that also returns what follows the value: the next of
// several keys in encoding order is looked for there, so that one pass reads them
// all (the receive path reads three per push).
func fieldRest(b []byte, key string) (v, rest []byte, ok bool) {
	var pat [48]byte
	p := append(append(append(pat[:0], '"'), key...), '"', ':')
	i := bytes.Index(b, p)
	if i < 0 {
		return nil, nil, false
	}
	v = b[i+len(p):]
	if len(v) > 0 && v[0] == '"' {
		v = v[1:]
		end := 0
		for end < len(v) && v[end] != '"' {
			if v[end] == '\\' {
				return nil, nil, false
			}
			end++
		}
		if end == len(v) {
			return nil, nil, false
		}
		return v[:end], v[end+1:], true
	}
	end := 0
	for end < len(v) && v[end] != ',' && v[end] != '}' {
		end++
	}
	return v[:end], v[end:], end > 0
}

// atoi reads a non-negative decimal number (what the generator's ids, seqs and
// times are) without strconv's generality: it runs several times per push.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits fit in a uint64
	}
	return int64(n), n <= math.MaxInt64
}
