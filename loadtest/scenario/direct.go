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

// DirectConfig sizes the direct scenario.
type DirectConfig struct {
	Common
	// Users online, in pairs of friends; each sends to its partner.
	Users int
	// Rate is messages per second in total, at an open-loop constant arrival rate.
	Rate float64
	// Size is the text length in bytes.
	Size int
	// Drain bounds the wait for late replies and pushes after sending stops.
	Drain time.Duration
	Step  Step
	Retry Retry
}

// Direct runs U users in pairs of friends, every user online and sending to its
// partner; it reports ack and end-to-end latency, acknowledged (persisted)
// messages per second, and lost, duplicated and out-of-order pushes by seq.
func Direct(ctx context.Context, t Target, cfg DirectConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	cfg.Step = cfg.Step.withDefaults()
	if cfg.Users < 2 || cfg.Users%2 != 0 {
		return nil, errors.New("direct: users must be even and at least 2")
	}
	if cfg.Rate <= 0 {
		return nil, errors.New("direct: rate must be positive")
	}
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	c := newChat(ctx, chatConfig{Common: cfg.Common, Rate: cfg.Rate, Size: cfg.Size, Drain: cfg.Drain, Step: cfg.Step, Retry: cfg.Retry})
	users, err := seedDirect(ctx, sd, c, cfg.Users, c.addFlow(0, ""))
	if err != nil {
		return nil, err
	}
	seeded := time.Since(started)
	sessions, err := c.connect(ctx, t, users)
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	connected := time.Since(started) - seeded

	res := newResult("direct", cfg.Common, started, map[string]any{
		"users": cfg.Users, "rate_per_s": cfg.Rate, "size_bytes": c.cfg.Size, "duration": cfg.Duration.String(),
		"edges": fmt.Sprint(t.Edges), "step": cfg.Step.Enabled, "prefix": cfg.Prefix,
	})
	if cfg.Step.Enabled {
		res.Params["step_duration"], res.Params["step_factor"] = cfg.Step.Duration.String(), cfg.Step.Factor
		res.Params["step_bound"] = "e2e " + cfg.Step.Quantile + " ≤ " + cfg.Step.Bound.String()
	}
	c.run(ctx, res)
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["connect_seconds"] = round(connected.Seconds(), 2)
	acked, e2e := res.Rates["acked"], res.Latency["e2e"]
	if cfg.Step.Enabled {
		acked = c.highestHeld
	}
	res.Checks = []report.Check{
		check("persisted 1:1 messages per second", "≥ 10000", fmt.Sprintf("%.0f", acked), acked >= 10000),
		check("end-to-end p99", "< 50 ms", fmt.Sprintf("%.1f ms", e2e.P99), e2e.P99 < 50 && e2e.Count > 0),
		check("lost / duplicated", "0 / 0", fmt.Sprintf("%d / %d", res.Counts["lost"], res.Counts["duplicated"]),
			res.Counts["lost"] == 0 && res.Counts["duplicated"] == 0),
	}
	return res, nil
}

// seedDirect seeds users (even) in pairs of friends with their 1:1
// conversations, each sending to its partner in flow f of c, and returns them in
// the order of c's members.
func seedDirect(ctx context.Context, sd *seed.Seeder, c *chat, n, f int) ([]seed.User, error) {
	users, err := sd.Users(ctx, n, "load")
	if err != nil {
		return nil, err
	}
	pairs := make([][2]int64, n/2)
	for i := range pairs {
		pairs[i] = [2]int64{users[2*i].ID, users[2*i+1].ID}
	}
	if err := sd.Friends(ctx, pairs); err != nil {
		return nil, err
	}
	convIDs, err := sd.Direct(ctx, pairs)
	if err != nil {
		return nil, err
	}
	for i := range pairs {
		a, b := c.addMember(users[2*i].ID), c.addMember(users[2*i+1].ID)
		conv := c.addConv(f, convIDs[i], []*member{a, b})
		c.addSender(f, a, conv, `"to":`+strconv.FormatInt(b.uid, 10))
		c.addSender(f, b, conv, `"to":`+strconv.FormatInt(a.uid, 10))
	}
	return users, nil
}

func cleanup(sd *seed.Seeder) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_ = sd.Cleanup(ctx)
}
