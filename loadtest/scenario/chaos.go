package scenario

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// MixConfig sizes a mixed load: 1:1 messages and one group's at once, each at
// its own open-loop rate, over one engine (one set of counts and checks). The
// chaos and soak scenarios run it.
type MixConfig struct {
	Common
	// Users online in pairs of friends, Rate 1:1 messages per second in total.
	Users int
	Rate  float64
	// One group of Members, the first Online connected, the first Senders of those
	// sending GroupRate messages per second in total.
	Members, Online, Senders int
	GroupRate                float64
	Size                     int
	// Drain bounds the wait for late replies, resends and syncs after sending.
	Drain time.Duration
	Retry Retry
}

func (c MixConfig) check(name string) error {
	switch {
	case c.Users < 0 || c.Users%2 != 0 || (c.Users > 0 && c.Rate <= 0):
		return fmt.Errorf("%s: users must be even, with a positive rate", name)
	case c.Members > 0 && (c.Online < 2 || c.Online > c.Members || c.Senders < 1 || c.Senders > c.Online || c.GroupRate <= 0):
		return fmt.Errorf("%s: want 2 ≤ online ≤ members, 1 ≤ senders ≤ online and a positive group rate", name)
	case c.Users == 0 && c.Members == 0:
		return fmt.Errorf("%s: no users and no group", name)
	}
	return nil
}

// mix seeds and connects a mixed load and runs it; onSending is called as
// sending starts. The result is named scenario.
func mix(ctx context.Context, t Target, cfg MixConfig, scenario string, params map[string]any, onSending func(time.Time)) (*report.Result, error) {
	started := time.Now()
	// Two populations, two prefixes: usernames are <prefix><i>.
	sdDirect, sdGroup := seed.New(t.DB, t.Signer, cfg.Prefix+"d"), seed.New(t.DB, t.Signer, cfg.Prefix+"g")
	if cfg.Cleanup {
		defer cleanup(sdDirect)
		defer cleanup(sdGroup)
	}
	c := newChat(ctx, chatConfig{Common: cfg.Common, Size: cfg.Size, Drain: cfg.Drain, Retry: cfg.Retry, OnSending: onSending})
	var users []seed.User
	if cfg.Users > 0 {
		u, err := seedDirect(ctx, sdDirect, c, cfg.Users, c.addFlow(cfg.Rate, ""))
		if err != nil {
			return nil, err
		}
		users = append(users, u...)
	}
	if cfg.Members > 0 {
		u, _, err := seedGroup(ctx, sdGroup, c, cfg.Members, cfg.Online, cfg.Senders, 1, c.addFlow(cfg.GroupRate, ""))
		if err != nil {
			return nil, err
		}
		users = append(users, u...)
	}
	seeded := time.Since(started)
	sessions, err := c.connect(ctx, t, users)
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	connected := time.Since(started) - seeded

	p := map[string]any{
		"users": cfg.Users, "rate_per_s": cfg.Rate, "members": cfg.Members, "online": cfg.Online, "senders": cfg.Senders,
		"group_rate_per_s": cfg.GroupRate, "size_bytes": c.cfg.Size, "duration": cfg.Duration.String(),
		"edges": fmt.Sprint(t.Edges), "prefix": cfg.Prefix,
	}
	maps.Copy(p, params)
	res := newResult(scenario, cfg.Common, started, p)
	c.run(ctx, res)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["connect_seconds"] = round(connected.Seconds(), 2)
	if first := c.firstBad.Load(); first != 0 {
		res.Values["failures_first_at_s"] = round(time.Unix(0, first).Sub(started).Seconds(), 2)
		res.Values["failures_last_at_s"] = round(time.Unix(0, c.lastBad.Load()).Sub(started).Seconds(), 2)
	}
	return res, nil
}

// Clean reports what a run must not have: messages lost, shown twice or out of
// order, a seq given to two messages, in its own numbers or the 1:1 ones a group
// run reports apart (direct_lost, ...). Empty when there is none.
func Clean(r *report.Result) string {
	var bad []string
	for _, p := range []string{"", directSection + "_"} {
		for _, k := range []string{"lost", "duplicated", "out_of_order", "seq_reused", "stored_twice", "ack_duplicate"} {
			if n := r.Counts[p+k]; n != 0 {
				bad = append(bad, fmt.Sprintf("%s %d", p+k, n))
			}
		}
	}
	return strings.Join(bad, ", ")
}

// ChaosConfig is a mixed load with a fault injected while it runs.
type ChaosConfig struct {
	MixConfig
	// Fault is what goes wrong, At after sending starts (nil: nothing). Its error
	// is reported; the run goes on.
	Fault func(ctx context.Context) error
	// FaultName names it in the result.
	FaultName string
	At        time.Duration
}

// Chaos runs 1:1 and group messages at once, injects the fault mid-run, lets the
// run drain (resends, reconnects, syncs) and reports what the clients saw:
// failures by code, how long the fault was visible (from the injection to the
// last failed request, dropped connection or reconnect), reconnects, resends,
// and by seq what was lost, shown twice or out of order. Its checks fail unless
// nothing was.
func Chaos(ctx context.Context, t Target, cfg ChaosConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	if err := cfg.check("chaos"); err != nil {
		return nil, err
	}
	if cfg.FaultName == "" {
		cfg.FaultName = "none"
	}
	type outcome struct {
		start, end time.Time
		err        error
	}
	faulted := make(chan outcome, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	onSending := func(start time.Time) {
		if cfg.Fault == nil {
			return
		}
		go func() {
			select {
			case <-time.After(time.Until(start.Add(cfg.At))):
			case <-fctx.Done():
				faulted <- outcome{err: fctx.Err()}
				return
			}
			o := outcome{start: time.Now()}
			o.err = cfg.Fault(fctx)
			o.end = time.Now()
			faulted <- o
		}()
	}
	res, err := mix(ctx, t, cfg.MixConfig, "chaos", map[string]any{"fault": cfg.FaultName, "fault_at": cfg.At.String()}, onSending)
	if err != nil {
		return nil, err
	}
	if cfg.Fault != nil {
		var o outcome
		select {
		case o = <-faulted:
		default:
			cancel()
			o = <-faulted
		}
		switch {
		case o.start.IsZero():
			res.Notes = append(res.Notes, "the fault was never injected: the run ended first")
		default:
			res.Values["fault_at_s"] = round(o.start.Sub(res.Started).Seconds(), 2)
			res.Values["fault_took_s"] = round(o.end.Sub(o.start).Seconds(), 2)
			visible := 0.0
			if last := res.Values["failures_last_at_s"]; last > res.Values["fault_at_s"] {
				visible = last - res.Values["fault_at_s"]
			}
			res.Values["fault_visible_s"] = round(visible, 2)
		}
		if o.err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("the fault %q failed: %v", cfg.FaultName, o.err))
		}
	}
	bad := Clean(res)
	res.Checks = []report.Check{
		check("lost / duplicated / out of order / seq reused", "0 / 0 / 0 / 0",
			fmt.Sprintf("%d / %d / %d / %d", res.Counts["lost"], res.Counts["duplicated"], res.Counts["out_of_order"], res.Counts["seq_reused"]),
			bad == ""),
	}
	return res, nil
}

// ChaosRowHeader names the columns of ChaosRow.
var ChaosRowHeader = []string{"fault", "errors by code", "fault visible s", "longest offline s", "reconnects",
	"resends", "gave up", "synced", "deduped", "acked", "lost", "duplicated", "out of order", "seq reused"}

// ChaosRow is one line of the chaos matrix, in the order of ChaosRowHeader.
func ChaosRow(r *report.Result) []string {
	c := r.Counts
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		errs = append(errs, k+" "+strconv.FormatInt(r.Errors[k], 10))
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	n := func(k string) string { return strconv.FormatInt(c[k], 10) }
	fault, _ := r.Params["fault"].(string)
	return []string{fault, strings.Join(errs, ", "), f(r.Values["fault_visible_s"]), f(r.Values["offline_s_longest"]),
		n("reconnects"), n("send_retries"), n("sends_gave_up"), n("synced"), n("deduped"), n("acked"),
		n("lost"), n("duplicated"), n("out_of_order"), n("seq_reused")}
}
