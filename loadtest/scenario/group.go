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
	// Rate is group messages per second in total (deliveries are Rate × (Online-1)).
	Rate  float64
	Size  int
	Drain time.Duration
	Step  Step
	Retry Retry
}

// Group runs one group of G members with O online and S of them sending at an
// open-loop rate; it reports deliveries per second, delivery latency, and lost and
// duplicated pushes per receiver.
func Group(ctx context.Context, t Target, cfg GroupConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	cfg.Step = cfg.Step.withDefaults()
	switch {
	case cfg.Members < 2 || cfg.Online < 2 || cfg.Online > cfg.Members:
		return nil, errors.New("group: want 2 ≤ online ≤ members")
	case cfg.Senders < 1 || cfg.Senders > cfg.Online:
		return nil, errors.New("group: want 1 ≤ senders ≤ online")
	case cfg.Rate <= 0:
		return nil, errors.New("group: rate must be positive")
	}
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	c := newChat(ctx, chatConfig{Common: cfg.Common, Rate: cfg.Rate, Size: cfg.Size, Drain: cfg.Drain, Step: cfg.Step, Retry: cfg.Retry})
	online, gid, err := seedGroup(ctx, sd, c, cfg.Members, cfg.Online, cfg.Senders, 0)
	if err != nil {
		return nil, err
	}
	seeded := time.Since(started)
	sessions, err := c.connect(ctx, t, online)
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	connected := time.Since(started) - seeded

	res := newResult("group", cfg.Common, started, map[string]any{
		"members": cfg.Members, "online": cfg.Online, "senders": cfg.Senders, "rate_per_s": cfg.Rate,
		"size_bytes": c.cfg.Size, "duration": cfg.Duration.String(), "edges": fmt.Sprint(t.Edges),
		"group_id": strconv.FormatInt(gid, 10), "step": cfg.Step.Enabled, "prefix": cfg.Prefix,
	})
	if cfg.Step.Enabled {
		res.Params["step_duration"], res.Params["step_factor"] = cfg.Step.Duration.String(), cfg.Step.Factor
		res.Params["step_bound"] = "e2e " + cfg.Step.Quantile + " ≤ " + cfg.Step.Bound.String()
	}
	c.run(ctx, res)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["connect_seconds"] = round(connected.Seconds(), 2)
	deliveries, e2e := res.Rates["delivered"], res.Latency["e2e"]
	if cfg.Step.Enabled {
		deliveries = c.highestHeld * float64(cfg.Online-1)
	}
	res.Checks = []report.Check{
		check("group deliveries per second (5,000 members, 2,000 online)", "≥ 200000",
			fmt.Sprintf("%.0f (%d members, %d online)", deliveries, cfg.Members, cfg.Online), deliveries >= 200000 && cfg.Members >= 5000 && cfg.Online >= 2000),
		check("delivery p95", "< 100 ms", fmt.Sprintf("%.1f ms", e2e.P95), e2e.P95 < 100 && e2e.Count > 0),
		check("lost / duplicated", "0 / 0", fmt.Sprintf("%d / %d", res.Counts["lost"], res.Counts["duplicated"]),
			res.Counts["lost"] == 0 && res.Counts["duplicated"] == 0),
	}
	return res, nil
}

// seedGroup seeds a group of members, the first online of them members of c
// and the first senders of those sending in flow f, and returns the online users
// in the order of c's members and the group's id.
func seedGroup(ctx context.Context, sd *seed.Seeder, c *chat, members, online, senders, f int) ([]seed.User, int64, error) {
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
	ms := make([]*member, online)
	for i := range online {
		ms[i] = c.addMember(users[i].ID)
	}
	conv := c.addConv(convID, ms)
	for i := range senders {
		c.addSender(f, ms[i], conv, `"conv_id":"`+convID+`"`)
	}
	return users[:online], gid, nil
}
