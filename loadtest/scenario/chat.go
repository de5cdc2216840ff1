package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"natter/functions/message"
	"natter/loadtest/client"
	"natter/loadtest/hist"
	"natter/loadtest/report"
)

// The message engine behind direct and group: senders fire msg.send on an
// open-loop timetable, every online member reads its pushes, and at the end the
// deliveries are checked by seq against the acknowledged sends.
//
// A message's client_msg_id is "<tag><sender>.<k>.<scheduled unix ns>": the tag
// is unique to the run, k counts the sender's messages, and the scheduled time is
// what both latencies are measured from, so a slow server (or a slow generator)
// cannot hide its backlog (no coordinated omission). The k6 scripts use the same
// format.

// Step turns a run into a step run: start at the configured rate, run each step
// for Duration, multiply the rate by Factor while the step held (e2e latency at
// Quantile within Bound, at least 95 % of the scheduled messages acknowledged, no
// errors) and report the highest rate that held.
type Step struct {
	Enabled  bool
	Duration time.Duration
	Factor   float64
	MaxRate  float64
	Bound    time.Duration
	Quantile string // p50, p90, p95 or p99 (default)
}

// StepQuantiles are the quantiles a step may be judged on.
var StepQuantiles = []string{"p50", "p90", "p95", "p99"}

func (s Step) latency(l hist.Summary) float64 {
	switch s.Quantile {
	case "p50":
		return l.P50
	case "p90":
		return l.P90
	case "p95":
		return l.P95
	}
	return l.P99
}

func (s Step) withDefaults() Step {
	if s.Duration <= 0 {
		s.Duration = 10 * time.Second
	}
	if s.Factor <= 1 {
		s.Factor = 1.5
	}
	if s.MaxRate <= 0 {
		s.MaxRate = 1e7
	}
	if s.Bound <= 0 {
		s.Bound = 50 * time.Millisecond
	}
	if s.Quantile == "" {
		s.Quantile = "p99"
	}
	return s
}

type chatConfig struct {
	Common
	Rate  float64
	Size  int
	Drain time.Duration
	Step  Step
}

type chat struct {
	cfg chatConfig
	rec *report.Recorder
	// Recorder counters (per-second rates in the series and progress line).
	sent, acked, delivered *atomic.Int64
	ack, e2e               *hist.Hist
	// Totals checked at the end.
	dups, ooo, foreign, ackDups atomic.Int64
	queued, outstanding, expect atomic.Int64
	scheduled                   int64 // by the scheduler goroutine only
	tag                         []byte
	text                        string
	recipients                  int64 // live deliveries expected per message
	members                     []*member
	senders                     []*sender
	convs                       []*convLog
	stepsRun                    []report.Step
	highestHeld                 float64
	sendSeconds                 float64
}

// member is one online session.
type member struct {
	uid  int64
	cl   *client.Client
	mu   sync.Mutex
	recv map[string]*received // by conversation
}

// received is the set of seqs a member got live in one conversation.
type received struct {
	bits []uint64
	last int64
}

func (r *received) has(seq int64) bool {
	i := int(seq >> 6)
	return i < len(r.bits) && r.bits[i]&(1<<(seq&63)) != 0
}

func (r *received) set(seq int64) {
	i := int(seq >> 6)
	for i >= len(r.bits) {
		r.bits = append(r.bits, 0)
	}
	r.bits[i] |= 1 << (seq & 63)
}

// convLog is one conversation's acknowledged sends: acked[seq] = sender.
type convLog struct {
	id     string
	online []*member
	mu     sync.Mutex
	acked  []int64
}

func (l *convLog) mark(seq, sender int64) {
	l.mu.Lock()
	for int64(len(l.acked)) <= seq {
		l.acked = append(l.acked, 0)
	}
	l.acked[seq] = sender
	l.mu.Unlock()
}

type sender struct {
	idx    int
	m      *member
	conv   *convLog
	target string // the request's addressing: "to":<id> or "conv_id":"g:<id>"
	queue  chan int64
}

func newChat(cfg chatConfig, recipients int64) *chat {
	c := &chat{cfg: cfg, recipients: recipients}
	c.rec = report.NewRecorder([]string{"sent", "acked", "delivered"}, []string{"ack", "e2e"})
	c.sent, c.acked, c.delivered = c.rec.Counter("sent"), c.rec.Counter("acked"), c.rec.Counter("delivered")
	c.ack, c.e2e = c.rec.Hist("ack"), c.rec.Hist("e2e")
	c.tag = []byte("L" + cfg.Prefix)
	size := max(cfg.Size, 16)
	text := "load message "
	c.text = text + strings.Repeat("x", max(size-len(text), 0))
	return c
}

func (c *chat) addMember(uid int64) *member {
	m := &member{uid: uid, recv: map[string]*received{}}
	c.members = append(c.members, m)
	return m
}

func (c *chat) addSender(m *member, conv *convLog, target string) {
	c.senders = append(c.senders, &sender{idx: len(c.senders), m: m, conv: conv, target: target, queue: make(chan int64, 4096)})
}

// dialOptions gives member i's session options: pushes go straight to onPush.
func (c *chat) dialOptions(i int) client.Options {
	return client.Options{Pushes: 16, OnPush: c.onPush(c.members[i])}
}

// onPush scans a msg.new push on m's read goroutine: latency from the scheduled
// time in client_msg_id, then the seq against what m already holds.
func (c *chat) onPush(m *member) func(ev, data []byte, at time.Time) bool {
	return func(ev, data []byte, at time.Time) bool {
		if string(ev) != "msg.new" {
			return true
		}
		conv, ok1 := field(data, "conv_id")
		seqRaw, ok2 := field(data, "seq")
		cmid, ok3 := field(data, "client_msg_id")
		seq, ok4 := atoi(seqRaw)
		if !ok1 || !ok2 || !ok3 || !ok4 || !bytes.HasPrefix(cmid, c.tag) {
			c.foreign.Add(1)
			return true
		}
		if ns, ok := atoi(cmid[bytes.LastIndexByte(cmid, '.')+1:]); ok {
			c.e2e.Record(at.Sub(time.Unix(0, ns)))
		}
		c.delivered.Add(1)
		m.mu.Lock()
		r := m.recv[string(conv)]
		if r == nil {
			r = &received{}
			m.recv[string(conv)] = r
		}
		switch {
		case r.has(seq):
			c.dups.Add(1)
		case seq < r.last:
			c.ooo.Add(1)
			r.set(seq)
		default:
			r.set(seq)
			r.last = seq
		}
		m.mu.Unlock()
		return true
	}
}

// runSender writes s's scheduled messages as they come due.
func (c *chat) runSender(s *sender) {
	buf := make([]byte, 0, 160+len(c.text))
	var k int64
	for sched := range s.queue {
		c.queued.Add(-1)
		k++
		buf = append(buf[:0], '{')
		buf = append(buf, s.target...)
		buf = append(buf, `,"client_msg_id":"`...)
		buf = append(buf, c.tag...)
		buf = strconv.AppendInt(buf, int64(s.idx), 10)
		buf = append(buf, '.')
		buf = strconv.AppendInt(buf, k, 10)
		buf = append(buf, '.')
		buf = strconv.AppendInt(buf, sched, 10)
		buf = append(buf, `","type":"text","content":{"text":"`...)
		buf = append(buf, c.text...)
		buf = append(buf, `"}}`...)
		c.sent.Add(1)
		c.outstanding.Add(1)
		err := s.m.cl.Go("msg.send", buf, func(raw json.RawMessage, err error) { c.onAck(s, sched, raw, err) })
		if err != nil {
			c.outstanding.Add(-1)
			c.rec.Error(errCode(err))
		}
	}
}

func (c *chat) onAck(s *sender, sched int64, raw []byte, err error) {
	defer c.outstanding.Add(-1)
	if err != nil {
		c.rec.Error(errCode(err))
		return
	}
	c.ack.Record(time.Since(time.Unix(0, sched)))
	seqRaw, ok := field(raw, "seq")
	seq, ok2 := atoi(seqRaw)
	if !ok || !ok2 || seq <= 0 {
		c.rec.Error("bad_reply")
		return
	}
	if bytes.Contains(raw, []byte(`"duplicate":true`)) {
		c.ackDups.Add(1) // every client_msg_id is new: the server saw a retry that was not one
	}
	s.conv.mark(seq, s.m.uid)
	c.acked.Add(1)
	c.expect.Add(c.recipients)
}

// schedule hands out sends at rate per second for d (or until MaxRequests),
// round-robin over the senders, and returns how many it scheduled. It wakes every
// millisecond and issues everything due, so a late wake-up is caught up at once
// and measured from the times the sends were due.
func (c *chat) schedule(ctx context.Context, rate float64, d time.Duration) int64 {
	start := time.Now()
	end := start.Add(d)
	interval := float64(time.Second) / rate
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var i int64
	for {
		now := time.Now()
		for {
			due := start.Add(time.Duration(float64(i) * interval))
			if !due.Before(end) || (c.cfg.MaxRequests > 0 && c.scheduled >= c.cfg.MaxRequests) {
				return i
			}
			if due.After(now) {
				break
			}
			s := c.senders[int(c.scheduled%int64(len(c.senders)))]
			c.queued.Add(1)
			select {
			case s.queue <- due.UnixNano():
			default:
				c.queued.Add(-1)
				c.rec.Error("generator_backlog")
			}
			i++
			c.scheduled++
		}
		select {
		case <-ctx.Done():
			return i
		case <-t.C:
		}
	}
}

// drain waits until every scheduled send is answered and every expected push
// arrived, or for at most d.
func (c *chat) drain(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c.queued.Load() == 0 && c.outstanding.Load() == 0 && c.delivered.Load() >= c.expect.Load() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run sends (one rate, or steps) and checks the deliveries.
func (c *chat) run(ctx context.Context, res *report.Result) {
	for _, s := range c.senders {
		go c.runSender(s)
	}
	defer func() {
		for _, s := range c.senders {
			close(s.queue)
		}
	}()
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.rec.Run(pctx, time.Second, c.cfg.Progress, func() string { return res.Scenario })
	}()
	watch := watchStack()
	drain := c.cfg.Drain
	if drain <= 0 {
		drain = 5 * time.Second
	}
	a := c.rec.Mark()
	if !c.cfg.Step.Enabled {
		c.schedule(ctx, c.cfg.Rate, c.cfg.Duration)
		c.sendSeconds = time.Since(a.At).Seconds()
		c.drain(ctx, drain)
	} else {
		c.steps(ctx, drain)
	}
	b := c.rec.Mark()
	procs := watch.Stop()
	stop()
	<-done
	c.rec.Sample()
	w := c.rec.Window(a, b)
	finish(res, c.rec, w, procs)
	for _, k := range []string{"sent", "acked", "delivered"} {
		res.Rates[k] = round(float64(w.Counts[k])/c.sendSeconds, 1)
	}
	res.Values["send_seconds"] = round(c.sendSeconds, 2)
	res.Steps = c.stepsRun
	if c.cfg.Step.Enabled {
		res.Values["highest_rate_held_per_s"] = c.highestHeld
	}
	c.verify(ctx, res)
}

func (c *chat) steps(ctx context.Context, drain time.Duration) {
	st := c.cfg.Step
	rate := c.cfg.Rate
	for ctx.Err() == nil {
		a := c.rec.Mark()
		n := c.schedule(ctx, rate, st.Duration)
		secs := time.Since(a.At).Seconds()
		c.sendSeconds += secs
		c.drain(ctx, drain)
		w := c.rec.Window(a, c.rec.Mark())
		s := report.Step{Rate: rate, Seconds: round(secs, 2), Counts: w.Counts, Rates: map[string]float64{}, Latency: w.Latency}
		for k, v := range w.Counts {
			s.Rates[k] = round(float64(v)/secs, 1)
		}
		got := st.latency(w.Latency["e2e"])
		switch {
		case w.Errors > 0:
			s.Why = fmt.Sprintf("%d errors", w.Errors)
		case float64(w.Counts["acked"]) < 0.95*float64(n):
			s.Why = fmt.Sprintf("acked %d of %d scheduled", w.Counts["acked"], n)
		case time.Duration(got*float64(time.Millisecond)) > st.Bound:
			s.Why = fmt.Sprintf("e2e %s %.1f ms > %v", st.Quantile, got, st.Bound)
		case c.cfg.MaxRequests > 0 && c.scheduled >= c.cfg.MaxRequests:
			s.Why = "request cap reached"
		default:
			s.Held = true
			c.highestHeld = rate
		}
		c.stepsRun = append(c.stepsRun, s)
		if !s.Held || rate >= st.MaxRate {
			return
		}
		rate = min(math.Round(rate*st.Factor), st.MaxRate)
	}
}

// verify compares every member's pushes with the acknowledged sends of its
// conversations, and looks up each missing seq with msg.history: recovered means
// stored but not pushed (the client would sync it), lost means acknowledged and
// not stored.
func (c *chat) verify(ctx context.Context, res *report.Result) {
	var missing, unackedDelivered, recovered, lost, unchecked int64
	budget := 2000 // history calls
	for _, conv := range c.convs {
		conv.mu.Lock()
		acked := slices.Clone(conv.acked) // a late reply may still come in
		conv.mu.Unlock()
		for _, m := range conv.online {
			var miss []int64
			m.mu.Lock()
			r := m.recv[conv.id]
			if r == nil {
				r = &received{}
			}
			for seq, snd := range acked {
				if snd != 0 && snd != m.uid && !r.has(int64(seq)) {
					miss = append(miss, int64(seq))
				}
			}
			for i, w := range r.bits {
				for b := range 64 {
					seq := int64(i*64 + b)
					if w&(1<<b) != 0 && (seq >= int64(len(acked)) || acked[seq] == 0) {
						unackedDelivered++
					}
				}
			}
			m.mu.Unlock()
			missing += int64(len(miss))
			if len(miss) == 0 {
				continue
			}
			if budget <= 0 {
				unchecked += int64(len(miss))
				continue
			}
			found, calls := c.inHistory(ctx, m, conv.id, miss, budget)
			budget -= calls
			recovered += found
			lost += int64(len(miss)) - found
		}
	}
	res.Counts["duplicated"] = c.dups.Load()
	res.Counts["out_of_order"] = c.ooo.Load()
	res.Counts["push_missing"] = missing
	res.Counts["recovered_by_history"] = recovered
	res.Counts["lost"] = lost
	res.Counts["delivered_unacked"] = unackedDelivered
	res.Counts["foreign_pushes"] = c.foreign.Load()
	res.Counts["ack_duplicate"] = c.ackDups.Load()
	res.Counts["expected_deliveries"] = c.expect.Load()
	if unchecked > 0 {
		res.Counts["missing_unchecked"] = unchecked
		res.Notes = append(res.Notes, fmt.Sprintf("%d missing pushes were not looked up (history call budget spent)", unchecked))
	}
	var dropped int64
	for _, m := range c.members {
		dropped += m.cl.Dropped.Load()
	}
	if dropped > 0 {
		res.Counts["client_dropped"] = dropped
	}
}

// inHistory pages msg.history over the ranges of missing seqs (ascending) and
// returns how many of them are stored, and the calls it made.
func (c *chat) inHistory(ctx context.Context, m *member, conv string, miss []int64, budget int) (found int64, calls int) {
	want := make(map[int64]bool, len(miss))
	for _, s := range miss {
		want[s] = true
	}
	after := miss[0] - 1
	last := miss[len(miss)-1]
	for after < last && calls < budget {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var h message.HistoryResp
		err := m.cl.Call(cctx, "msg.history", message.HistoryReq{ConvID: conv, After: &after, Limit: 100}, &h)
		cancel()
		calls++
		if err != nil || len(h.Messages) == 0 {
			return found, calls
		}
		for _, msg := range h.Messages {
			if want[msg.Seq] {
				found++
			}
			after = msg.Seq
		}
		// Jump over stretches with nothing missing.
		for _, s := range miss {
			if s > after {
				after = max(after, s-1)
				break
			}
		}
	}
	return found, calls
}
