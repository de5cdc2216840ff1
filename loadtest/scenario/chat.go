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
	"natter/loadtest/seed"
)

// The message engine behind direct, group, chaos and soak: senders fire msg.send
// on an open-loop timetable, every online member reads its pushes, and at the
// end the deliveries are checked by seq against the acknowledged sends.
//
// A message's client_msg_id is "<tag><sender>.<k>.<scheduled unix ns>": the tag
// is unique to the run, k counts the sender's messages, and the scheduled time is
// what both latencies are measured from, so a slow server (or a slow generator)
// cannot hide its backlog (no coordinated omission). The k6 scripts use the same
// format.
//
// Each member behaves as a client of docs/protocol.md should: its session redials
// when the connection drops (client.Session) and resumes with msg.sync from its
// cursors; a push whose seq leaves a gap is given a moment (syncGrace) to be filled
// by the push in flight before the gap is pulled with msg.sync; anything whose seq
// it already holds is dropped (counted in deduped). What reaches the application
// reaches it in seq order: a message after a gap waits for the gap, and only a
// gap that stays unfilled for gapDeadline is skipped, so that a message filling it
// later is out of order. A failed send is sent again with the same client_msg_id
// (Retry), which the server answers with the first result.

const (
	// syncGrace is how long a gap may wait for the push still on its way (another
	// worker's, or this member's own reply) before it is pulled with msg.sync.
	syncGrace = time.Second
	// gapDeadline is how long the application waits for a gap before it shows
	// what came after it.
	gapDeadline = 10 * time.Second
)

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

// Retry is how a sender resends a msg.send that failed (an error reply other than
// a refusal, a dropped connection): with the same client_msg_id, after a
// jittered backoff, while fewer than Attempts resends were made and Window has
// not passed since the first attempt. A send made while the session is offline
// waits for the connection instead (an outbox), within the same Window.
type Retry struct {
	Attempts int           // resends after the first attempt (0: 8; negative: none)
	Window   time.Duration // 0: 30 s
	Backoff  client.Backoff
}

func (r Retry) withDefaults() Retry {
	if r.Attempts == 0 {
		r.Attempts = 8
	}
	if r.Window <= 0 {
		r.Window = 30 * time.Second
	}
	if r.Backoff.Min <= 0 {
		r.Backoff = client.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	}
	return r
}

type chatConfig struct {
	Common
	Rate  float64 // the first flow's (direct, group; the first step's)
	Size  int
	Drain time.Duration
	Step  Step
	Retry Retry
	// Apart names the sections reported apart from the run's own numbers (a
	// flow added with addFlow(rate, "direct") is counted in direct_sent,
	// direct_e2e, direct_lost, ...).
	Apart []string
	// OnSending, when set, is called once as sending starts (the fault of a chaos
	// run and the metric samples of a soak run are timed from there).
	OnSending func(start time.Time)
}

// tally is one section of a run's numbers: the run's own (prefix ""), or one
// reported apart (prefix "direct_": the 1:1 messages of a mixed group run).
// What is counted by message and conversation is counted per section; what
// sessions and resends do is the run's.
type tally struct {
	prefix string
	// Recorder counters and histograms, named prefix+"sent", prefix+"e2e", ...
	sent, acked, delivered, synced *atomic.Int64
	ack, e2e                       *hist.Hist
	// Totals checked at the end.
	deduped, ooo, reordered, ackDups, reused, expect atomic.Int64
}

// Names of a tally's recorder counters and histograms, without its prefix.
var (
	tallyCounters = []string{"sent", "acked", "delivered", "synced"}
	tallyHists    = []string{"ack", "e2e"}
)

type chat struct {
	cfg chatConfig
	rec *report.Recorder
	ctx context.Context // the run's, for the members' syncs
	// The run's own numbers first, then the sections reported apart.
	tallies []*tally
	// Totals checked at the end.
	foreign                                         atomic.Int64
	retries, retriedOK, retryStored, gaveUp, waited atomic.Int64
	syncCalls, gapsSkipped                          atomic.Int64
	queued, outstanding, expect, arrived            atomic.Int64
	firstBad, lastBad                               atomic.Int64 // unix ns of failures and reconnects
	scheduled                                       atomic.Int64
	tag                                             []byte
	text                                            string
	members                                         []*member
	senders                                         []*sender
	flows                                           []*flow
	convs                                           []*convLog
	stepsRun                                        []report.Step
	highestHeld                                     float64
	sendSeconds                                     float64
	stop                                            chan struct{} // closed when the run ends: syncs stop
}

// flow is a set of senders sharing one rate (a chaos run has two: 1:1 and group),
// and the section their messages are counted in.
type flow struct {
	senders []*sender
	rate    float64
	t       *tally
}

// member is one connected device of an online user, with its session: a client
// of its own (cursors, gaps, syncs). A user with several devices is several
// members with one uid.
type member struct {
	c       *chat
	n       int64 // 1 + its index in c.members
	uid     int64
	sess    atomic.Pointer[client.Session] // set once connected
	mu      sync.Mutex
	recv    map[string]*received // by conversation
	syncing atomic.Bool          // a syncLoop runs
	force   atomic.Bool          // sync even without a gap (after a reconnect)
}

// received is what a member holds of one conversation, by seq.
type received struct {
	conv     *convLog
	bits     seqSet // every seq held (pushed, synced, or its own acknowledged)
	bySync   seqSet // of those, first obtained through msg.sync
	contig   int64  // every seq ≤ contig is held: the msg.sync cursor
	top      int64  // the highest seq held
	shown    int64  // the application has seen every held seq ≤ shown
	lastPush int64  // the highest seq pushed
	gapSince time.Time
}

// seqSet is a bitmap of seqs.
type seqSet []uint64

func (s seqSet) has(seq int64) bool {
	i := int(seq >> 6)
	return i < len(s) && s[i]&(1<<(seq&63)) != 0
}

func (s *seqSet) set(seq int64) {
	i := int(seq >> 6)
	for i >= len(*s) {
		*s = append(*s, 0)
	}
	(*s)[i] |= 1 << (seq & 63)
}

// convLog is one conversation's messages as the run knows them: who sent each
// seq (acknowledged sends), and which message (sender index and k, from the
// client_msg_id) each seq carried wherever it was seen.
type convLog struct {
	id         string
	t          *tally
	recipients int64 // online members (devices) that get each message live: all but the sending one
	online     []*member
	mu         sync.RWMutex // read-locked on the hot path: most arrivals find their seq recorded
	acked      []int64      // seq -> the sending member's n (0: not acknowledged)
	ids        []int64      // seq -> msgID (0: not seen)
	conflict   seqSet       // seqs seen carrying two different messages
	top        int64
}

// msgID packs a sender index and its message number k.
func msgID(idx, k int64) int64 { return idx<<32 | k }

// record notes that seq carried message id (and was acknowledged to the member
// numbered by, when not 0); it reports whether seq was seen before with another
// message.
func (l *convLog) record(seq, id, by int64) (conflict bool) {
	l.mu.RLock()
	known := seq < int64(len(l.ids)) && l.ids[seq] == id && (by == 0 || l.acked[seq] == by)
	l.mu.RUnlock()
	if known {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for int64(len(l.ids)) <= seq {
		l.ids = append(l.ids, 0)
		l.acked = append(l.acked, 0)
	}
	l.top = max(l.top, seq)
	if by != 0 {
		l.acked[seq] = by
	}
	switch prev := l.ids[seq]; {
	case prev == 0:
		l.ids[seq] = id
	case prev != id && !l.conflict.has(seq):
		l.conflict.set(seq)
		return true
	}
	return false
}

func (l *convLog) highest() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.top
}

type sender struct {
	idx    int
	m      *member
	conv   *convLog
	target string // the request's addressing: "to":<id> or "conv_id":"g:<id>"
	queue  chan int64
}

// sendOp is one message being sent, through its retries.
type sendOp struct {
	s        *sender
	k, sched int64
	first    time.Time
	attempt  int // failed attempts so far
}

// newChat returns an engine whose members sync under ctx (the run's).
func newChat(ctx context.Context, cfg chatConfig) *chat {
	cfg.Retry = cfg.Retry.withDefaults()
	c := &chat{cfg: cfg, ctx: ctx, stop: make(chan struct{})}
	var counters, hists []string
	for _, name := range append([]string{""}, cfg.Apart...) {
		t := &tally{}
		if name != "" {
			t.prefix = name + "_"
		}
		for _, k := range tallyCounters {
			counters = append(counters, t.prefix+k)
		}
		for _, k := range tallyHists {
			hists = append(hists, t.prefix+k)
		}
		c.tallies = append(c.tallies, t)
	}
	c.rec = report.NewRecorder(counters, hists)
	for _, t := range c.tallies {
		t.sent, t.acked, t.delivered, t.synced = c.rec.Counter(t.prefix+"sent"), c.rec.Counter(t.prefix+"acked"), c.rec.Counter(t.prefix+"delivered"), c.rec.Counter(t.prefix+"synced")
		t.ack, t.e2e = c.rec.Hist(t.prefix+"ack"), c.rec.Hist(t.prefix+"e2e")
	}
	c.tag = []byte("L" + cfg.Prefix)
	size := max(cfg.Size, 16)
	text := "load message "
	c.text = text + strings.Repeat("x", max(size-len(text), 0))
	return c
}

func (c *chat) addMember(uid int64) *member {
	m := &member{c: c, n: int64(len(c.members) + 1), uid: uid, recv: map[string]*received{}}
	c.members = append(c.members, m)
	return m
}

// addFlow adds a flow of senders at rate per second (0: the run's rate),
// counted in the run's own numbers or, with section (one of cfg.Apart), in
// that section's; it returns the flow's index.
func (c *chat) addFlow(rate float64, section string) int {
	f := &flow{rate: rate, t: c.tallies[0]}
	if section != "" {
		f.t = c.tallies[1+slices.Index(c.cfg.Apart, section)]
	}
	c.flows = append(c.flows, f)
	return len(c.flows) - 1
}

// addConv adds a conversation of flow f whose online members (devices) each get
// every message live but the sending one.
func (c *chat) addConv(f int, id string, online []*member) *convLog {
	l := &convLog{id: id, t: c.flows[f].t, online: online, recipients: int64(len(online) - 1)}
	for _, m := range online {
		m.recv[id] = &received{conv: l}
	}
	c.convs = append(c.convs, l)
	return l
}

// addSender adds a sender to flow f.
func (c *chat) addSender(f int, m *member, conv *convLog, target string) {
	s := &sender{idx: len(c.senders), m: m, conv: conv, target: target, queue: make(chan int64, 4096)}
	c.senders = append(c.senders, s)
	c.flows[f].senders = append(c.flows[f].senders, s)
}

// sessionOptions gives member i's session options: pushes go straight to onPush,
// a reconnect resumes with msg.sync, drops and reconnects are timed.
func (c *chat) sessionOptions(i int) client.SessionOptions {
	m := c.members[i]
	return client.SessionOptions{
		Options: client.Options{Pushes: 16, OnPush: c.onPush(m)},
		OnConnect: func(_ *client.Client, n int) {
			if n > 0 {
				c.bad(time.Now()) // the outage lasted until now for this member
				m.wantSync(true)
			}
		},
		OnDrop: func(error) { c.bad(time.Now()) },
	}
}

// connect opens the sessions of users, c's members from the first not yet
// connected on (users[i] is that member plus i).
func (c *chat) connect(ctx context.Context, t Target, users []seed.User) ([]*client.Session, error) {
	from := 0
	for from < len(c.members) && c.members[from].sess.Load() != nil {
		from++
	}
	ss, err := connectAll(ctx, t, users, c.cfg.DialConcurrency, func(i int) client.SessionOptions { return c.sessionOptions(from + i) })
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		c.members[from+i].sess.Store(s)
	}
	return ss, nil
}

// bad notes a failure (a failed request, a dropped connection, a reconnect that
// ended an outage) for the outage window.
func (c *chat) bad(t time.Time) {
	ns := t.UnixNano()
	c.firstBad.CompareAndSwap(0, ns)
	for {
		l := c.lastBad.Load()
		if ns <= l || c.lastBad.CompareAndSwap(l, ns) {
			return
		}
	}
}

// parseID splits a client_msg_id of this run into its sender index, message
// number and scheduled time; ok is false for anything else.
func (c *chat) parseID(cmid []byte) (idx, k, sched int64, ok bool) {
	if !bytes.HasPrefix(cmid, c.tag) {
		return 0, 0, 0, false
	}
	rest := cmid[len(c.tag):]
	i := bytes.IndexByte(rest, '.')
	if i < 0 {
		return 0, 0, 0, false
	}
	j := bytes.IndexByte(rest[i+1:], '.')
	if j < 0 {
		return 0, 0, 0, false
	}
	idx, ok1 := atoi(rest[:i])
	k, ok2 := atoi(rest[i+1 : i+1+j])
	sched, ok3 := atoi(rest[i+2+j:])
	if !ok1 || !ok2 || !ok3 || idx < 0 || idx >= int64(len(c.senders)) {
		return 0, 0, 0, false
	}
	return idx, k, sched, true
}

// onPush scans a msg.new push on m's read goroutine: latency from the scheduled
// time in client_msg_id, then the seq against what m already holds.
func (c *chat) onPush(m *member) func(ev, data []byte, at time.Time) bool {
	return func(ev, data []byte, at time.Time) bool {
		if string(ev) != "msg.new" {
			return true
		}
		// In the order msg.new encodes them (wire.Message): one pass.
		conv, rest, ok1 := fieldRest(data, "conv_id")
		seqRaw, rest, ok2 := fieldRest(rest, "seq")
		cmid, _, ok3 := fieldRest(rest, "client_msg_id")
		seq, ok4 := atoi(seqRaw)
		idx, k, sched, ok5 := c.parseID(cmid)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			c.foreign.Add(1)
			return true
		}
		m.mu.Lock()
		r := m.recv[string(conv)]
		fresh := r != nil && c.arrive(m, r, seq, msgID(idx, k), c.senders[idx].m == m, srcPush, at)
		m.mu.Unlock()
		if r == nil {
			c.foreign.Add(1)
			return true
		}
		if fresh {
			r.conv.t.e2e.Record(at.Sub(time.Unix(0, sched)))
			r.conv.t.delivered.Add(1)
		}
		return true
	}
}

// Where a member got a seq from.
const (
	srcPush = iota
	srcSync
	srcAck // its own send's reply
)

// arrive files seq (carrying message id, 0 for a message not of this run) in r,
// with m.mu held: the dedupe layer drops a seq already held; anything else
// reaches the application in seq order, and a gap is pulled with msg.sync after
// syncGrace. It reports whether seq was new to m.
func (c *chat) arrive(m *member, r *received, seq, id int64, own bool, src int, at time.Time) bool {
	t := r.conv.t
	if id != 0 && r.conv.record(seq, id, 0) {
		t.reused.Add(1)
	}
	if r.bits.has(seq) {
		if !own && src != srcAck {
			t.deduped.Add(1)
		}
		return false
	}
	r.bits.set(seq)
	if src == srcSync {
		r.bySync.set(seq)
	}
	if id != 0 && !own {
		c.arrived.Add(1)
		if seq <= r.shown {
			t.ooo.Add(1) // its gap was skipped: the application showed later ones first
		}
		if src == srcSync {
			t.synced.Add(1)
		}
	}
	if src == srcPush {
		if seq < r.lastPush {
			t.reordered.Add(1)
		}
		r.lastPush = max(r.lastPush, seq)
	}
	r.top = max(r.top, seq)
	for r.bits.has(r.contig + 1) {
		r.contig++
	}
	r.shown = max(r.shown, r.contig)
	switch {
	case r.contig == r.top:
		r.gapSince = time.Time{}
	case r.gapSince.IsZero():
		r.gapSince = at
		m.wantSync(false)
	}
	return true
}

// wantSync starts m's sync loop unless it runs; now skips the grace period and
// syncs even without a gap (after a reconnect).
func (m *member) wantSync(now bool) {
	if now {
		m.force.Store(true)
	}
	if m.syncing.CompareAndSwap(false, true) {
		go m.syncLoop(now)
	}
}

// call is Session.Call, or ErrOffline before m is connected.
func (m *member) call(ctx context.Context, op string, data, out any) error {
	s := m.sess.Load()
	if s == nil {
		return client.ErrOffline
	}
	return s.Call(ctx, op, data, out)
}

// syncLoop pulls m's gaps (and, when forced, everything past its cursors) with
// msg.sync until it holds every seq up to the highest it saw, backing off while
// the calls fail. A gap older than gapDeadline is skipped by the application.
func (m *member) syncLoop(now bool) {
	c := m.c
	delay := syncGrace
	if now {
		delay = 0
	}
	fails := 0
	for {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-c.stop:
				m.syncing.Store(false)
				return
			}
		}
		force := m.force.Swap(false)
		if !force && !m.behind(false) {
			m.syncing.Store(false)
			// A gap or a reconnect may have come in since the check.
			if (m.force.Load() || m.behind(false)) && m.syncing.CompareAndSwap(false, true) {
				delay = 0
				continue
			}
			return
		}
		if err := c.syncMember(m); err != nil {
			if force {
				m.force.Store(true)
			}
			delay = c.cfg.Retry.Backoff.Delay(fails)
			fails++
		} else {
			delay, fails = syncGrace, 0
		}
		m.skipStale(time.Now())
	}
}

// behind reports a gap in one of m's conversations; with acked, also a
// conversation whose acknowledged messages go past what m holds (a lost tail).
func (m *member) behind(acked bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recv {
		if r.contig < r.top || (acked && r.contig < r.conv.highest()) {
			return true
		}
	}
	return false
}

// skipStale lets the application show what follows a gap older than gapDeadline.
func (m *member) skipStale(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recv {
		if !r.gapSince.IsZero() && now.Sub(r.gapSince) > gapDeadline && r.shown < r.top {
			r.shown = r.top
			r.gapSince = time.Time{}
			m.c.gapsSkipped.Add(1)
		}
	}
}

// syncMember pages msg.sync from m's cursors until nothing is left.
func (c *chat) syncMember(m *member) error {
	cursors := map[string]int64{}
	m.mu.Lock()
	for id, r := range m.recv {
		cursors[id] = r.contig
	}
	m.mu.Unlock()
	for range 100 {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		var resp message.SyncResp
		err := m.call(ctx, "msg.sync", message.SyncReq{Cursors: cursors}, &resp)
		cancel()
		c.syncCalls.Add(1)
		if err != nil {
			if c.ctx.Err() == nil {
				c.rec.Error("sync:" + errCode(err))
				c.bad(time.Now())
			}
			return err
		}
		now := time.Now()
		m.mu.Lock()
		for _, sc := range resp.Conversations {
			r := m.recv[sc.ConvID]
			if r == nil {
				continue
			}
			for _, msg := range sc.Messages {
				var id int64
				own := false // sent by this device; its user's other devices get it
				if idx, k, _, ok := c.parseID([]byte(msg.ClientMsgID)); ok {
					id, own = msgID(idx, k), c.senders[idx].m == m
				}
				c.arrive(m, r, msg.Seq, id, own, srcSync, now)
				cursors[sc.ConvID] = max(cursors[sc.ConvID], msg.Seq)
			}
			if !sc.HasMore {
				cursors[sc.ConvID] = max(cursors[sc.ConvID], sc.LastSeq)
			}
		}
		m.mu.Unlock()
		if !resp.HasMore {
			return nil
		}
	}
	return nil
}

// syncBehind syncs, a few at a time, every member that misses something: a gap,
// or acknowledged messages past its cursor (a tail whose pushes were lost). A
// client does the same when it comes back to the foreground.
func (c *chat) syncBehind(ctx context.Context) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, m := range c.members {
		if ctx.Err() != nil || !m.behind(true) {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = c.syncMember(m)
		})
	}
	wg.Wait()
}

// runSender writes s's scheduled messages as they come due.
func (c *chat) runSender(s *sender) {
	buf := make([]byte, 0, 160+len(c.text))
	var k int64
	for sched := range s.queue {
		c.queued.Add(-1)
		k++
		s.conv.t.sent.Add(1)
		c.outstanding.Add(1)
		buf = c.attempt(&sendOp{s: s, k: k, sched: sched, first: time.Now()}, buf)
	}
}

// attempt sends op once, encoding it into buf (returned for reuse: the session
// copies it).
func (c *chat) attempt(op *sendOp, buf []byte) []byte {
	s := op.s
	buf = append(buf[:0], '{')
	buf = append(buf, s.target...)
	buf = append(buf, `,"client_msg_id":"`...)
	buf = append(buf, c.tag...)
	buf = strconv.AppendInt(buf, int64(s.idx), 10)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, op.k, 10)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, op.sched, 10)
	buf = append(buf, `","type":"text","content":{"text":"`...)
	buf = append(buf, c.text...)
	buf = append(buf, `"}}`...)
	if err := s.m.sess.Load().Go("msg.send", buf, func(raw json.RawMessage, err error) { c.onAck(op, raw, err) }); err != nil {
		c.failed(op, err)
	}
	return buf
}

func (c *chat) onAck(op *sendOp, raw []byte, err error) {
	if err != nil {
		c.failed(op, err)
		return
	}
	defer c.outstanding.Add(-1)
	s := op.s
	t := s.conv.t
	t.ack.Record(time.Since(time.Unix(0, op.sched)))
	seqRaw, ok := field(raw, "seq")
	seq, ok2 := atoi(seqRaw)
	if !ok || !ok2 || seq <= 0 {
		c.rec.Error("bad_reply")
		return
	}
	dup := bytes.Contains(raw, []byte(`"duplicate":true`))
	switch {
	case op.attempt == 0 && dup:
		t.ackDups.Add(1) // every client_msg_id is new: the server saw a retry that was not one
	case op.attempt > 0:
		c.retriedOK.Add(1)
		if dup {
			c.retryStored.Add(1) // an earlier attempt was stored; its reply was lost
		}
	}
	id := msgID(int64(s.idx), op.k)
	if s.conv.record(seq, id, s.m.n) {
		t.reused.Add(1)
	}
	s.m.mu.Lock()
	c.arrive(s.m, s.m.recv[s.conv.id], seq, id, true, srcAck, time.Now())
	s.m.mu.Unlock()
	t.acked.Add(1)
	t.expect.Add(s.conv.recipients)
	c.expect.Add(s.conv.recipients)
}

// failed decides what follows a failed attempt: wait for the connection (the
// frame never left), resend after a backoff, or give up.
func (c *chat) failed(op *sendOp, err error) {
	if c.ended() {
		c.outstanding.Add(-1)
		return
	}
	r := c.cfg.Retry
	late := time.Since(op.first) > r.Window
	if err == client.ErrOffline && !late {
		c.waited.Add(1)
		time.AfterFunc(r.Backoff.Delay(0), func() { c.attempt(op, nil) })
		return
	}
	code := errCode(err)
	if err != client.ErrOffline {
		c.rec.Error(code)
		c.bad(time.Now())
		op.attempt++
	}
	if late || op.attempt > r.Attempts || !retryable(code) {
		c.gaveUp.Add(1)
		c.outstanding.Add(-1)
		return
	}
	c.retries.Add(1)
	time.AfterFunc(r.Backoff.Delay(op.attempt-1), func() { c.attempt(op, nil) })
}

// ended reports whether the run is over (its context done, or verified).
func (c *chat) ended() bool {
	select {
	case <-c.stop:
		return true
	default:
		return c.ctx.Err() != nil
	}
}

// retryable tells an outage (resend) from a refusal (do not).
func retryable(code string) bool {
	switch code {
	case "bad_request", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "bad_reply":
		return false
	}
	return true
}

// schedule hands out f's sends at rate per second for d (or until MaxRequests),
// round-robin over its senders, and returns how many it scheduled. It wakes every
// millisecond and issues everything due, so a late wake-up is caught up at once
// and measured from the times the sends were due.
func (c *chat) schedule(ctx context.Context, f *flow, rate float64, d time.Duration) int64 {
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
			if !due.Before(end) || (c.cfg.MaxRequests > 0 && c.scheduled.Load() >= c.cfg.MaxRequests) {
				return i
			}
			if due.After(now) {
				break
			}
			s := f.senders[int(i%int64(len(f.senders)))]
			c.queued.Add(1)
			select {
			case s.queue <- due.UnixNano():
			default:
				c.queued.Add(-1)
				c.rec.Error("generator_backlog")
			}
			i++
			c.scheduled.Add(1)
		}
		select {
		case <-ctx.Done():
			return i
		case <-t.C:
		}
	}
}

// scheduleAll runs flows, each at its rate, for d at once.
func (c *chat) scheduleAll(ctx context.Context, flows []*flow, d time.Duration) {
	var wg sync.WaitGroup
	for _, f := range flows {
		wg.Go(func() { c.schedule(ctx, f, f.rate, d) })
	}
	wg.Wait()
}

// drain waits until every scheduled send is answered (or given up) and every
// expected message arrived, or for at most d. When the sends are settled and
// nothing arrives for two seconds, the members that miss something sync (a
// client does that when it has been quiet a while); they all do at the end.
func (c *chat) drain(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		settled := c.queued.Load() == 0 && c.outstanding.Load() == 0
		got := c.arrived.Load()
		if settled && got >= c.expect.Load() {
			break
		}
		switch {
		case got != last:
			last, since = got, time.Now()
		case settled && time.Since(since) > 2*time.Second:
			c.syncBehind(ctx)
			since = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.syncBehind(ctx)
}

// run sends (one rate, or steps) and checks the deliveries.
func (c *chat) run(ctx context.Context, res *report.Result) {
	for _, f := range c.flows {
		if f.rate == 0 {
			f.rate = c.cfg.Rate
		}
	}
	for _, s := range c.senders {
		go c.runSender(s)
	}
	defer func() {
		for _, s := range c.senders {
			close(s.queue)
		}
		close(c.stop)
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
	if c.cfg.OnSending != nil {
		c.cfg.OnSending(a.At)
	}
	if !c.cfg.Step.Enabled {
		c.scheduleAll(ctx, c.flows, c.cfg.Duration)
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
	for _, t := range c.tallies {
		for _, k := range tallyCounters {
			res.Rates[t.prefix+k] = round(float64(w.Counts[t.prefix+k])/c.sendSeconds, 1)
		}
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
		// The first flow steps; any other runs at its own rate during every step.
		var wg sync.WaitGroup
		wg.Go(func() { c.scheduleAll(ctx, c.flows[1:], st.Duration) })
		n := c.schedule(ctx, c.flows[0], rate, st.Duration)
		wg.Wait()
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
		case c.cfg.MaxRequests > 0 && c.scheduled.Load() >= c.cfg.MaxRequests:
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

// verified is what verify found in one section of a run.
type verified struct {
	missing, bySync, unackedDelivered, recovered, lost, unchecked, dupShown, storedTwice int64
}

// verify compares what every member (device) holds (pushed, or synced) with the
// acknowledged sends of its conversations, and looks up each seq still missing
// with msg.history: recovered means stored and found there, lost means never
// received, even so. It also counts what the application saw twice: one message
// (client_msg_id) stored under two seqs. Every section is counted apart.
func (c *chat) verify(ctx context.Context, res *report.Result) {
	found := make(map[*tally]*verified, len(c.tallies))
	for _, t := range c.tallies {
		found[t] = &verified{}
	}
	budget := 2000 // history calls
	for _, conv := range c.convs {
		v := found[conv.t]
		conv.mu.Lock()
		acked, ids := slices.Clone(conv.acked), slices.Clone(conv.ids)
		conv.mu.Unlock()
		twice := map[int64][]int64{} // message -> its seqs, when more than one
		seen := make(map[int64]int64, len(ids))
		for seq, id := range ids {
			if id == 0 {
				continue
			}
			if first, ok := seen[id]; ok {
				if twice[id] == nil {
					twice[id] = []int64{first}
				}
				twice[id] = append(twice[id], int64(seq))
				continue
			}
			seen[id] = int64(seq)
		}
		v.storedTwice += int64(len(twice))
		for _, m := range conv.online {
			var miss []int64
			m.mu.Lock()
			r := m.recv[conv.id]
			for seq, by := range acked {
				if by == 0 || by == m.n {
					continue
				}
				switch {
				case !r.bits.has(int64(seq)):
					miss = append(miss, int64(seq))
				case r.bySync.has(int64(seq)):
					v.bySync++
				}
			}
			for seq, id := range ids {
				if id != 0 && r.bits.has(int64(seq)) && acked[seq] == 0 && c.senders[id>>32].m != m {
					v.unackedDelivered++
				}
			}
			for _, seqs := range twice {
				n := 0
				for _, s := range seqs {
					if r.bits.has(s) {
						n++
					}
				}
				v.dupShown += int64(max(n-1, 0))
			}
			m.mu.Unlock()
			v.missing += int64(len(miss))
			if len(miss) == 0 {
				continue
			}
			if budget <= 0 {
				v.unchecked += int64(len(miss))
				continue
			}
			got, calls := c.inHistory(ctx, m, conv.id, miss, budget)
			budget -= calls
			v.recovered += got
			v.lost += int64(len(miss)) - got
		}
	}
	for _, t := range c.tallies {
		v, p := found[t], t.prefix
		res.Counts[p+"duplicated"] = v.dupShown
		res.Counts[p+"stored_twice"] = v.storedTwice
		res.Counts[p+"seq_reused"] = t.reused.Load()
		res.Counts[p+"deduped"] = t.deduped.Load()
		res.Counts[p+"out_of_order"] = t.ooo.Load()
		res.Counts[p+"pushes_reordered"] = t.reordered.Load()
		res.Counts[p+"push_missing"] = v.missing + v.bySync
		res.Counts[p+"recovered_by_sync"] = v.bySync
		res.Counts[p+"recovered_by_history"] = v.recovered
		res.Counts[p+"lost"] = v.lost
		res.Counts[p+"delivered_unacked"] = v.unackedDelivered
		res.Counts[p+"ack_duplicate"] = t.ackDups.Load()
		res.Counts[p+"expected_deliveries"] = t.expect.Load()
		if v.unchecked > 0 {
			res.Counts[p+"missing_unchecked"] = v.unchecked
			res.Notes = append(res.Notes, fmt.Sprintf("%d missing messages were not looked up (history call budget spent)", v.unchecked))
		}
	}
	res.Counts["foreign_pushes"] = c.foreign.Load()
	res.Counts["send_retries"] = c.retries.Load()
	res.Counts["sends_retried_ok"] = c.retriedOK.Load()
	res.Counts["retry_found_stored"] = c.retryStored.Load()
	res.Counts["sends_gave_up"] = c.gaveUp.Load()
	res.Counts["sends_waited_offline"] = c.waited.Load()
	res.Counts["sync_calls"] = c.syncCalls.Load()
	res.Counts["gaps_skipped"] = c.gapsSkipped.Load()
	var dropped, reconnects, dialFailures int64
	var offline, longest time.Duration
	for _, m := range c.members {
		s := m.sess.Load()
		dropped += s.Dropped()
		reconnects += s.Reconnects()
		dialFailures += s.DialFailures()
		t, l := s.Offline()
		offline += t
		longest = max(longest, l)
	}
	res.Counts["reconnects"] = reconnects
	res.Counts["redials_failed"] = dialFailures
	res.Values["offline_s_total"] = round(offline.Seconds(), 2)
	res.Values["offline_s_longest"] = round(longest.Seconds(), 2)
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
		err := m.call(cctx, "msg.history", message.HistoryReq{ConvID: conv, After: &after, Limit: 100}, &h)
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
