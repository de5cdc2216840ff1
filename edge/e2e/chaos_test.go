package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/functions/fntest"
	"natter/functions/group"
	"natter/functions/message"
	"natter/loadtest/client"
	"natter/shared/imerr"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// Short versions of the chaos matrix (docs/reliability.md): messages flow while
// something fails; clients resend what failed with the same client_msg_id and
// sync from their cursors; afterwards every acknowledged message is stored once,
// under the seq its reply gave, seqs are gap-free and never reused, and every
// member holds every seq of its conversations.

// TestWorkerKilledMidRun: two workers serve the same queue groups; one dies
// (its NATS connection closed without a drain) while 1:1 and group messages
// flow. The requests it held time out at the edge and are resent to the other.
func TestWorkerKilledMidRun(t *testing.T) {
	e := testenv.Start(t)
	w1 := fntest.StartWorker(t, e, fntest.Options{})
	fntest.StartWorker(t, e, fntest.Options{})
	// A short request timeout, so that what the dead worker held fails fast.
	s := startEdge(t, e, w1, gateway.Config{HTTPPublicLimit: -1, RateLimit: -1, RequestTimeout: time.Second})
	r := newChaosRun(t, s)
	r.run(t, 40, 60, func() { w1.Kill() })
	r.check(t)
	t.Logf("%d sends, %d failed attempts resent (%v), %d found stored by the resend", len(r.acked), r.retries.Load(), r.codes(), r.stored.Load())
}

// TestRedisFlushedMidRun: Redis loses everything while messages flow; sends go
// on with the next seq, nothing is lost or reused.
func TestRedisFlushedMidRun(t *testing.T) {
	s := start(t)
	r := newChaosRun(t, s)
	r.run(t, 40, 100, func() { s.env.FlushRedis(t) })
	r.check(t)
	if n := r.retries.Load(); n != 0 {
		t.Errorf("%d sends failed around the flush (%v)", n, r.codes())
	}
}

// startEdge serves an edge on e's NATS in front of whatever workers serve it.
func startEdge(t *testing.T, e *testenv.Env, w *fntest.Worker, cfg gateway.Config) *stack {
	t.Helper()
	gw, err := gateway.New(cfg, gateway.Deps{NC: e.Connect(t), Signer: w.Signer(), Log: zerolog.Nop(), AccessTTL: fntest.AuthConfig.AccessTTL})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	})
	return &stack{env: e, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", base: srv.URL}
}

// chaosRun is three pairs of friends (a–b, c–d, e–f) and a group of a, c and e,
// one device each; a, c and e send to their partners and a and c to the group.
type chaosRun struct {
	s       *stack
	devs    []*device
	flows   []flow
	mu      sync.Mutex
	acked   []ackedSend
	retries atomic.Int64
	stored  atomic.Int64 // resends answered duplicate: the first attempt was stored
	errs    sync.Map     // code -> *atomic.Int64
}

type device struct {
	id    int64
	c     *client.Client
	mu    sync.Mutex
	held  map[string]map[int64]bool // conversation -> seqs (pushed, synced, or its own acked)
	convs []string
	done  chan struct{}
}

type flow struct {
	from   *device
	to     int64  // a 1:1 peer, or
	conv   string // a group
	prefix string
}

type ackedSend struct {
	conv, cmid string
	sender     int64
	seq        int64
}

func newChaosRun(t *testing.T, s *stack) *chaosRun {
	t.Helper()
	r := &chaosRun{s: s}
	for i := range 6 {
		u := s.user(t, fmt.Sprintf("chaos%c", 'a'+i))
		d := &device{id: u.id, c: s.device(t, u, "d"), held: map[string]map[int64]bool{}, done: make(chan struct{})}
		go d.read() // ends when the device's connection closes, at the test's end
		r.devs = append(r.devs, d)
	}
	a, b, c, d, e, f := r.devs[0], r.devs[1], r.devs[2], r.devs[3], r.devs[4], r.devs[5]
	for _, p := range [][2]*device{{a, b}, {c, d}, {e, f}} {
		befriend(t, p[0].c, p[1].c, p[1].id)
		conv := fmt.Sprintf("d:%d:%d", min(p[0].id, p[1].id), max(p[0].id, p[1].id))
		p[0].convs, p[1].convs = append(p[0].convs, conv), append(p[1].convs, conv)
		r.flows = append(r.flows, flow{from: p[0], to: p[1].id, prefix: fmt.Sprintf("d%d-", p[0].id)})
	}
	g := call[group.Info](t, a.c, "group.create", group.CreateReq{Name: "chaos", Members: []int64{c.id, e.id}})
	for _, m := range []*device{a, c, e} {
		m.convs = append(m.convs, g.ConvID)
	}
	r.flows = append(r.flows, flow{from: a, conv: g.ConvID, prefix: "ga-"}, flow{from: c, conv: g.ConvID, prefix: "gc-"})
	return r
}

// read files every msg.new the device is pushed.
func (d *device) read() {
	defer close(d.done)
	for {
		select {
		case p := <-d.c.Pushes():
			if p.Event != "msg.new" {
				continue
			}
			var m wire.Message
			if json.Unmarshal(p.Data, &m) == nil {
				d.hold(m.ConvID, m.Seq)
			}
		case <-d.c.Done():
			return
		}
	}
}

func (d *device) hold(conv string, seq int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.held[conv] == nil {
		d.held[conv] = map[int64]bool{}
	}
	d.held[conv][seq] = true
}

// cursor is the highest seq of conv below which the device holds every one.
func (d *device) cursor(conv string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for d.held[conv][n+1] {
		n++
	}
	return n
}

// run sends n messages on every flow, each sender waiting for its reply (closed
// loop) and resending a failure with the same client_msg_id, and calls fault
// once after acked sends in all.
func (r *chaosRun) run(t *testing.T, n, after int, fault func()) {
	t.Helper()
	var total atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	errs := make(chan error, len(r.flows))
	for _, f := range r.flows {
		wg.Go(func() {
			for i := range n {
				if err := r.send(f, fmt.Sprintf("%s%d", f.prefix, i)); err != nil {
					errs <- err
					return
				}
				if total.Add(1) == int64(after) {
					once.Do(fault)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// send sends one message until a reply, resending outages (up to 30 times).
func (r *chaosRun) send(f flow, cmid string) error {
	req := message.SendReq{To: f.to, ConvID: f.conv, ClientMsgID: cmid, Type: "text", Content: text(cmid)}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var resp message.SendResp
		err := f.from.c.Call(ctx, "msg.send", req, &resp)
		cancel()
		if err == nil {
			if attempt > 0 && resp.Duplicate {
				r.stored.Add(1)
			}
			f.from.hold(resp.ConvID, resp.Seq)
			r.mu.Lock()
			r.acked = append(r.acked, ackedSend{conv: resp.ConvID, cmid: cmid, sender: f.from.id, seq: resp.Seq})
			r.mu.Unlock()
			return nil
		}
		code := imerr.CodeOf(err)
		var ie *imerr.Error
		if !errors.As(err, &ie) {
			code = "transport"
		}
		if (code != imerr.Unavailable && code != imerr.Internal) || attempt >= 30 {
			return fmt.Errorf("send %s (attempt %d): %w", cmid, attempt+1, err)
		}
		v, _ := r.errs.LoadOrStore(string(code), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		r.retries.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *chaosRun) codes() map[string]int64 {
	out := map[string]int64{}
	r.errs.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// check syncs every device from its cursors, then holds the run to its promises.
func (r *chaosRun) check(t *testing.T) {
	t.Helper()
	db := r.s.env.DB
	// Stored once, under the acknowledged seq; no seq acknowledged twice.
	bySeq := map[string]string{}
	for _, a := range r.acked {
		var n int
		var seq int64
		if err := db.QueryRow("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM messages WHERE conv_id = ? AND sender_id = ? AND client_msg_id = ?",
			a.conv, a.sender, a.cmid).Scan(&n, &seq); err != nil {
			t.Fatal(err)
		}
		if n != 1 || seq != a.seq {
			t.Errorf("%s in %s: %d rows, seq %d, acknowledged as seq %d", a.cmid, a.conv, n, seq, a.seq)
		}
		k := fmt.Sprintf("%s/%d", a.conv, a.seq)
		if prev, ok := bySeq[k]; ok {
			t.Errorf("seq %s acknowledged to %s and to %s", k, prev, a.cmid)
		}
		bySeq[k] = a.cmid
	}
	// Gap-free, and every member holds every seq once it synced.
	last := map[string]int64{}
	for _, d := range r.devs {
		for _, conv := range d.convs {
			if _, ok := last[conv]; ok {
				continue
			}
			var top, rows, maxSeq int64
			if err := db.QueryRow("SELECT c.last_seq, COUNT(m.seq), COALESCE(MAX(m.seq), 0) FROM conversations c LEFT JOIN messages m ON m.conv_id = c.id WHERE c.id = ? GROUP BY c.id",
				conv).Scan(&top, &rows, &maxSeq); err != nil {
				t.Fatal(err)
			}
			if rows != top || maxSeq != top {
				t.Errorf("%s: last_seq %d, %d messages up to seq %d", conv, top, rows, maxSeq)
			}
			last[conv] = top
		}
	}
	for _, d := range r.devs {
		cursors := map[string]int64{}
		for _, conv := range d.convs {
			cursors[conv] = d.cursor(conv)
		}
		for page := 0; ; page++ {
			resp := call[message.SyncResp](t, d.c, "msg.sync", message.SyncReq{Cursors: cursors})
			for _, sc := range resp.Conversations {
				for _, m := range sc.Messages {
					d.hold(sc.ConvID, m.Seq)
					cursors[sc.ConvID] = max(cursors[sc.ConvID], m.Seq)
				}
			}
			if !resp.HasMore || page > 20 {
				break
			}
		}
		for _, conv := range d.convs {
			if got := d.cursor(conv); got != last[conv] {
				t.Errorf("user %d holds %s up to seq %d of %d after syncing", d.id, conv, got, last[conv])
			}
		}
	}
}
