package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"natter/functions/message"
	"natter/loadtest/client"
	"natter/loadtest/report"
	"natter/loadtest/seed"
)

// CatchupConfig sizes the catchup scenario.
type CatchupConfig struct {
	Common
	// Messages the device missed, spread over Convs 1:1 conversations.
	Messages, Convs int
	// Held is how many earlier messages per conversation the device already holds
	// (its cursors).
	Held int
	// Repeat is how many times the device reconnects and catches up (each time
	// from the same cursors), for a distribution rather than one number.
	Repeat int
	// Limit is msg.sync's page size (0: the server's default and maximum, 2000).
	Limit int
}

// Catchup seeds a device's user with K conversations holding N messages it has not
// seen, then times reconnect + msg.sync paging until it holds all of them, and
// checks that it got each exactly once.
func Catchup(ctx context.Context, t Target, cfg CatchupConfig) (*report.Result, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	if cfg.Convs < 1 || cfg.Messages < cfg.Convs {
		return nil, errors.New("catchup: want 1 ≤ convs ≤ messages")
	}
	cfg.Repeat = max(cfg.Repeat, 1)
	started := time.Now()
	sd := seed.New(t.DB, t.Signer, cfg.Prefix)
	if cfg.Cleanup {
		defer cleanup(sd)
	}
	users, err := sd.Users(ctx, cfg.Convs+1, "load")
	if err != nil {
		return nil, err
	}
	dev := users[0]
	pairs := make([][2]int64, cfg.Convs)
	for i := range pairs {
		pairs[i] = [2]int64{dev.ID, users[i+1].ID}
	}
	if err := sd.Friends(ctx, pairs); err != nil {
		return nil, err
	}
	convs, err := sd.Direct(ctx, pairs)
	if err != nil {
		return nil, err
	}
	cursors := map[string]int64{}
	want := map[string]int64{} // last seq per conversation
	for i, conv := range convs {
		missed := cfg.Messages / cfg.Convs
		if i < cfg.Messages%cfg.Convs {
			missed++
		}
		total := cfg.Held + missed
		if err := sd.Messages(ctx, conv, []int64{users[i+1].ID, dev.ID}, 0, total); err != nil {
			return nil, err
		}
		cursors[conv] = int64(cfg.Held)
		want[conv] = int64(total)
	}
	seeded := time.Since(started)

	rec := report.NewRecorder([]string{"messages", "sync_calls"}, []string{"catchup", "connect", "sync_call"})
	msgs, calls := rec.Counter("messages"), rec.Counter("sync_calls")
	res := newResult("catchup", cfg.Common, started, map[string]any{
		"messages": cfg.Messages, "conversations": cfg.Convs, "held_per_conversation": cfg.Held,
		"repeat": cfg.Repeat, "sync_limit": cfg.Limit, "edges": fmt.Sprint(t.Edges), "prefix": cfg.Prefix,
		"device_user_id": dev.ID,
	})
	watch := watchStack()
	a := rec.Mark()
	var bad []string
	var dups int64
	for r := range cfg.Repeat {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		cl, err := client.Dial(ctx, client.Options{URL: t.ws(r), Token: dev.Token, Pushes: 64})
		if err != nil {
			return nil, fmt.Errorf("catchup: connect: %w", err)
		}
		rec.Hist("connect").Record(time.Since(t0))
		got, nCalls, d, err := syncAll(ctx, cl, cursors, cfg.Limit, rec)
		dups += d
		elapsed := time.Since(t0)
		_ = cl.Close()
		if err != nil {
			return nil, fmt.Errorf("catchup: %w", err)
		}
		rec.Hist("catchup").Record(elapsed)
		calls.Add(int64(nCalls))
		var n int64
		for conv, seqs := range got {
			n += int64(len(seqs))
			for k, s := range seqs {
				if s != cursors[conv]+int64(k)+1 {
					bad = append(bad, fmt.Sprintf("run %d: %s: seq %d at position %d", r+1, conv, s, k))
					break
				}
			}
			if len(seqs) > 0 && seqs[len(seqs)-1] != want[conv] {
				bad = append(bad, fmt.Sprintf("run %d: %s: ends at %d, want %d", r+1, conv, seqs[len(seqs)-1], want[conv]))
			}
		}
		msgs.Add(n)
		if n != int64(cfg.Messages) || len(got) != len(convs) {
			bad = append(bad, fmt.Sprintf("run %d: got %d messages in %d conversations, want %d in %d", r+1, n, len(got), cfg.Messages, len(convs)))
		}
	}
	b := rec.Mark()
	finish(res, rec, rec.Window(a, b), watch.Stop())
	res.Series = nil // a handful of runs: the table says it all
	res.Values["seed_seconds"] = round(seeded.Seconds(), 2)
	res.Values["sync_calls_per_catchup"] = round(float64(res.Counts["sync_calls"])/float64(cfg.Repeat), 1)
	cu := res.Latency["catchup"]
	if cu.P50 > 0 {
		res.Values["messages_per_s_median"] = round(float64(cfg.Messages)/(cu.P50/1000), 0)
	}
	res.Counts["duplicated"] = dups
	if dups > 0 {
		bad = append(bad, fmt.Sprintf("%d messages came twice", dups))
	}
	if len(bad) > 0 {
		res.Counts["incomplete_runs"] = int64(len(bad))
		res.Notes = append(res.Notes, bad...)
	}
	res.Checks = []report.Check{
		check(fmt.Sprintf("catch up %d messages across %d conversations", cfg.Messages, cfg.Convs), "< 2 s (10,000 / 100)",
			fmt.Sprintf("median %.0f ms, max %.0f ms", cu.P50, cu.Max), cu.Max < 2000 && cfg.Messages >= 10000 && len(bad) == 0),
		check("every missed message exactly once", "yes", fmt.Sprintf("%v", len(bad) == 0), len(bad) == 0),
	}
	return res, nil
}

// syncAll pages msg.sync from cursors until nothing is left and returns the seqs
// received per conversation, in order, the number of calls, and how many messages
// came again (at or below the cursor).
func syncAll(ctx context.Context, cl *client.Client, cursors map[string]int64, limit int, rec *report.Recorder) (map[string][]int64, int, int64, error) {
	cur := make(map[string]int64, len(cursors))
	for k, v := range cursors {
		cur[k] = v
	}
	got := map[string][]int64{}
	var dups int64
	for calls := 1; ; calls++ {
		if calls > 10000 {
			return nil, calls, dups, errors.New("sync does not converge")
		}
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var r message.SyncResp
		err := cl.Call(cctx, "msg.sync", message.SyncReq{Cursors: cur, Limit: limit}, &r)
		cancel()
		if err != nil {
			return nil, calls, dups, fmt.Errorf("msg.sync: %w", err)
		}
		rec.Hist("sync_call").Record(time.Since(t0))
		for _, c := range r.Conversations {
			for _, m := range c.Messages {
				if m.Seq <= cur[c.ConvID] {
					dups++
					continue
				}
				got[c.ConvID] = append(got[c.ConvID], m.Seq)
				cur[c.ConvID] = m.Seq
			}
			if !c.HasMore {
				cur[c.ConvID] = max(cur[c.ConvID], c.LastSeq)
			}
		}
		if !r.HasMore {
			return got, calls, dups, nil
		}
	}
}
