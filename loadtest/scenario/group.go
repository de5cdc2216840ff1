package scenario

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// GroupConfig sizes the group scenario.
type GroupConfig struct {
	Common
	// Members of the group; the first Online of them are connected, and the first
	// Senders of those send.
	Members, Online, Senders int
	// Devices each online member connects (0: 1), each with its own device id and
	// session. A sender's message is pushed to every device but the one that sent
	// it (its other devices included). The worker's ACCOUNT_MAX_DEVICES (5 by
	// default) bounds it: a further device pushes the oldest one out.
	Devices int
	// Rate is group messages per second in total (deliveries are Rate × (Online ×
	// Devices - 1)).
	Rate  float64
	Size  int
	Drain time.Duration
	Step  Step
	Retry Retry
	// DirectUsers more online users (even; 0: none), in pairs of friends, send 1:1
	// messages at DirectRate per second in total on the same edges for as long as
	// the group sends (at that one rate in every step of a step run). Their
	// numbers are reported apart (direct_ack, direct_e2e, direct_lost, ...): what
	// a group burst does to 1:1 latency.
	DirectUsers int
	DirectRate  float64
}

// Check reports a configuration the scenario cannot run (before anything
// connects).
func (cfg GroupConfig) Check() error {
	switch {
	case cfg.Members < 2 || cfg.Online < 2 || cfg.Online > cfg.Members:
		return errors.New("group: want 2 ≤ online ≤ members")
	case cfg.Senders < 1 || cfg.Senders > cfg.Online:
		return errors.New("group: want 1 ≤ senders ≤ online")
	case cfg.Rate <= 0:
		return errors.New("group: rate must be positive")
	case cfg.Devices < 0:
		return errors.New("group: devices must be at least 1")
	case cfg.DirectUsers < 0 || cfg.DirectUsers%2 != 0:
		return errors.New("group: direct users must be even (pairs of friends), 0 for none")
	case cfg.DirectUsers > 0 && cfg.DirectRate <= 0:
		return errors.New("group: direct users need a positive direct rate")
	case cfg.DirectUsers == 0 && cfg.DirectRate != 0:
		return errors.New("group: a direct rate needs direct users")
	}
	return nil
}

// Group runs one group of G members with O online (each on D devices) and S of
// them sending at an open-loop rate, and optionally 1:1 messages beside it; it
// reports deliveries per second, delivery latency, and lost and duplicated
// pushes per receiving device.
func Group(ctx context.Context, t Target, cfg GroupConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	cfg.Step = cfg.Step.withDefaults()
	cfg.Devices = max(cfg.Devices, 1)
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	cc := chatConfig{Common: cfg.Common, Rate: cfg.Rate, Size: cfg.Size, Drain: cfg.Drain, Step: cfg.Step, Retry: cfg.Retry}
	if cfg.DirectUsers > 0 {
		cc.Apart = []string{directSection}
	}
	c := newChat(ctx, cc)
	online, gid, err := seedGroup(ctx, sd, c, cfg.Members, cfg.Online, cfg.Senders, cfg.Devices, c.addFlow(0, ""))
	if err != nil {
		return nil, err
	}
	if cfg.DirectUsers > 0 {
		// Their own prefix: usernames are <prefix><i>.
		sdDirect := seed.New(t.DB, t.Signer, cfg.Prefix+"d")
		if cfg.Cleanup {
			defer cleanup(sdDirect)
		}
		users, err := seedDirect(ctx, sdDirect, c, cfg.DirectUsers, c.addFlow(cfg.DirectRate, directSection))
		if err != nil {
			return nil, err
		}
		online = append(online, users...)
	}
	seeded := time.Since(started)
	sessions, err := c.connect(ctx, t, online)
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	connected := time.Since(started) - seeded

	devices := cfg.Online * cfg.Devices
	res := newResult("group", cfg.Common, started, map[string]any{
		"members": cfg.Members, "online": cfg.Online, "senders": cfg.Senders, "devices": cfg.Devices, "rate_per_s": cfg.Rate,
		"size_bytes": c.cfg.Size, "duration": cfg.Duration.String(), "edges": fmt.Sprint(t.Edges),
		"group_id": strconv.FormatInt(gid, 10), "step": cfg.Step.Enabled, "prefix": cfg.Prefix,
		"direct_users": cfg.DirectUsers, "direct_rate_per_s": cfg.DirectRate,
	})
	if cfg.Step.Enabled {
		res.Params["step_duration"], res.Params["step_factor"] = cfg.Step.Duration.String(), cfg.Step.Factor
		res.Params["step_bound"] = "e2e " + cfg.Step.Quantile + " ≤ " + cfg.Step.Bound.String()
	}
	c.run(ctx, res)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["connect_seconds"] = round(connected.Seconds(), 2)
	res.Values["group_connections"] = float64(devices)
	deliveries, e2e := res.Rates["delivered"], res.Latency["e2e"]
	if cfg.Step.Enabled {
		deliveries = c.highestHeld * float64(devices-1)
	}
	res.Checks = []report.Check{
		check("group deliveries per second (5,000 members, 2,000 online)", "≥ 200000",
			fmt.Sprintf("%.0f (%d members, %d online)", deliveries, cfg.Members, cfg.Online), deliveries >= 200000 && cfg.Members >= 5000 && cfg.Online >= 2000),
		check("delivery p95", "< 100 ms", fmt.Sprintf("%.1f ms", e2e.P95), e2e.P95 < 100 && e2e.Count > 0),
		check("lost / duplicated", "0 / 0", fmt.Sprintf("%d / %d", res.Counts["lost"], res.Counts["duplicated"]),
			res.Counts["lost"] == 0 && res.Counts["duplicated"] == 0),
	}
	if cfg.DirectUsers > 0 {
		de := res.Latency["direct_e2e"]
		res.Checks = append(res.Checks,
			check("1:1 end-to-end p99 during the group load", "< 50 ms", fmt.Sprintf("%.1f ms", de.P99), de.P99 < 50 && de.Count > 0),
			check("1:1 lost / duplicated", "0 / 0", fmt.Sprintf("%d / %d", res.Counts["direct_lost"], res.Counts["direct_duplicated"]),
				res.Counts["direct_lost"] == 0 && res.Counts["direct_duplicated"] == 0))
	}
	return res, nil
}

// directSection names the 1:1 messages of a group run in its report
// (direct_sent, direct_e2e, direct_lost, ...).
const directSection = "direct"

// seedGroup seeds a group of members, the first online of them members of c
// with devices members (connections) each, and the first device of each of the
// first senders sending in flow f; it returns one user per device (a session of
// its own), in the order of c's members, and the group's id.
func seedGroup(ctx context.Context, sd *seed.Seeder, c *chat, members, online, senders, devices, f int) ([]seed.User, int64, error) {
	users, err := sd.Users(ctx, members, "load")
	if err != nil {
		return nil, 0, err
	}
	ids := make([]int64, len(users)-1)
	for i, u := range users[1:] {
		ids[i] = u.ID
	}
	gid, convID, err := sd.Group(ctx, sd.Prefix()+"group", users[0].ID, ids)
	if err != nil {
		return nil, 0, err
	}
	// byDevice[k][i] is online user i on device k.
	byDevice := [][]seed.User{users[:online]}
	for k := 2; k <= devices; k++ {
		more, err := sd.Devices(ctx, users[:online], "load-"+strconv.Itoa(k))
		if err != nil {
			return nil, 0, err
		}
		byDevice = append(byDevice, more)
	}
	// A user's devices are next to each other, so that they land on different
	// edges in turn.
	conns := make([]seed.User, 0, online*devices)
	ms := make([]*member, 0, online*devices)
	for i := range online {
		for k := range devices {
			conns = append(conns, byDevice[k][i])
			ms = append(ms, c.addMember(users[i].ID))
		}
	}
	conv := c.addConv(f, convID, ms)
	for i := range senders {
		c.addSender(f, ms[i*devices], conv, `"conv_id":"`+convID+`"`)
	}
	return conns, gid, nil
}
