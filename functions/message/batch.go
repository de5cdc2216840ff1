package message

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/shared/db"
)

// Group commit for the send path. Concurrent Appends queue here. One collector
// forms batches: it takes the first queued message, then whatever else arrives
// within Linger (up to batchMax), and hands the batch to one of the writers. A
// writer stores a batch in one transaction of five statements however many
// messages and conversations it holds: bump every conversation's seq with one
// UPDATE, read the new tops back, insert all messages with one multi-row INSERT,
// move the senders' read cursors with one UPDATE, commit. Then, still in commit
// order, it runs each message's after-commit callback (the send path's pushes), so
// a conversation's pushes leave in seq order. Anything unusual (a retried
// client_msg_id already stored, a conversation without its row, a deadlock) falls
// back to the one-message path, which handles it.

const batchMax = 128

// AfterCommit runs once a message is stored (dup: it was stored before, by an
// earlier attempt), on the goroutine that committed it, before Append returns.
type AfterCommit func(m *Message, dup bool)

type appendReq struct {
	ctx  context.Context
	m    *Message
	o    AppendOptions
	done chan appendRes
}

type appendRes struct {
	dup bool
	err error
}

// BatchConfig configures the group-commit writers.
type BatchConfig struct {
	Writers int           // transactions in flight
	Linger  time.Duration // how long a batch waits for company
	// Metrics receives natter_message_batch_size; may be nil.
	Metrics prometheus.Registerer
	// Check, when set, answers AppendOptions.CheckPeer for a whole batch in one
	// round trip (the 1:1 block and privacy rules); refused sends are not stored.
	Check PairCheck
}

// Start runs the collector and c.Writers batch writers until ctx ends. Without
// Start, Append writes each message in its own transaction.
func (s *Store) Start(ctx context.Context, c BatchConfig) {
	writers, linger, reg := c.Writers, c.Linger, c.Metrics
	s.check = c.Check
	sizes := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "natter", Subsystem: "message", Name: "batch_size",
		Help:    "Messages stored per group-commit transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
	if reg != nil {
		if err := reg.Register(sizes); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				sizes = are.ExistingCollector.(prometheus.Histogram)
			}
		}
	}
	s.batchSize = sizes
	s.queue = make(chan *appendReq, batchMax*max(writers, 1))
	batches := make(chan []*appendReq, max(writers, 1))
	go s.collect(ctx, batches, linger)
	for range max(writers, 1) {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case b := <-batches:
					s.writeBatch(ctx, b)
				}
			}
		}()
	}
}

func (s *Store) enqueue(ctx context.Context, m *Message, o AppendOptions) (bool, error) {
	r := &appendReq{ctx: ctx, m: m, o: o, done: make(chan appendRes, 1)}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	// Once queued the message may be stored even if ctx ends; the client's retry
	// with the same client_msg_id then finds it.
	select {
	case res := <-r.done:
		return res.dup, res.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// collect forms batches: the first queued message opens one, which closes after
// linger or at batchMax messages.
func (s *Store) collect(ctx context.Context, out chan<- []*appendReq, linger time.Duration) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var batch []*appendReq
		select {
		case <-ctx.Done():
			return
		case r := <-s.queue:
			batch = append(make([]*appendReq, 0, 16), r)
		}
		if linger > 0 {
			timer.Reset(linger)
		fill:
			for len(batch) < batchMax {
				select {
				case r := <-s.queue:
					batch = append(batch, r)
				case <-timer.C:
					break fill
				}
			}
			timer.Stop()
		}
	drain:
		for len(batch) < batchMax {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return
		}
	}
}

type msgKey struct {
	conv   string
	sender int64
	client string
}

func (s *Store) writeBatch(ctx context.Context, batch []*appendReq) {
	s.batchSize.Observe(float64(len(batch)))
	if batch = s.checkPeers(ctx, batch); len(batch) == 0 {
		return
	}
	// A retry racing its original inside one batch: store it once, answer both.
	primary := make(map[msgKey]*appendReq, len(batch))
	var uniq []*appendReq
	var dups [][2]*appendReq
	for _, r := range batch {
		k := msgKey{r.m.ConvID, r.m.Sender, r.m.ClientMsgID}
		if p, ok := primary[k]; ok {
			dups = append(dups, [2]*appendReq{r, p})
			continue
		}
		primary[k] = r
		uniq = append(uniq, r)
	}
	results := make(map[*appendReq]appendRes, len(uniq))
	one := func(r *appendReq) {
		o := r.o
		o.CheckPeer = 0 // checked with the batch
		dup, err := s.appendOne(r.ctx, r.m, o)
		results[r] = appendRes{dup, err}
	}
	if len(uniq) == 1 {
		one(uniq[0])
	} else if err := s.insertBatch(ctx, uniq); err != nil {
		for _, r := range uniq { // the slow path sorts out whatever went wrong
			one(r)
		}
	} else {
		for _, r := range uniq {
			results[r] = appendRes{}
			if r.o.After != nil {
				r.o.After(r.m, false)
			}
		}
	}
	for _, r := range uniq {
		r.done <- results[r]
	}
	for _, d := range dups {
		res := results[d[1]]
		if res.err == nil {
			*d[0].m = *d[1].m
			res.dup = true
		}
		d[0].done <- res
	}
}

// checkPeers asks the PairCheck about every send of the batch that wants it, in
// one call, answers the refused ones and returns the rest.
func (s *Store) checkPeers(ctx context.Context, batch []*appendReq) []*appendReq {
	if s.check == nil {
		return batch
	}
	var from, to []int64
	var asked []*appendReq
	for _, r := range batch {
		if r.o.CheckPeer != 0 {
			from, to, asked = append(from, r.m.Sender), append(to, r.o.CheckPeer), append(asked, r)
		}
	}
	if len(asked) == 0 {
		return batch
	}
	errs, err := s.check(ctx, from, to)
	refused := make(map[*appendReq]bool, len(asked))
	for i, r := range asked {
		switch {
		case err != nil:
			r.done <- appendRes{err: err}
		case errs[i] != nil:
			r.done <- appendRes{err: errs[i]}
		default:
			continue
		}
		refused[r] = true
	}
	if len(refused) == 0 {
		return batch
	}
	kept := batch[:0:0]
	for _, r := range batch {
		if !refused[r] {
			kept = append(kept, r)
		}
	}
	return kept
}

// insertBatch stores every message of batch in one transaction, or none of them.
func (s *Store) insertBatch(ctx context.Context, batch []*appendReq) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	count := map[string]int64{}
	for _, r := range batch {
		count[r.m.ConvID]++
	}
	convs := make([]string, 0, len(count))
	for c := range count {
		convs = append(convs, c)
	}
	slices.Sort(convs) // one lock order for every batch

	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(tctx, nil) // READ COMMITTED per session (db.Open)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	var q strings.Builder
	args := make([]any, 0, 3*len(convs)+1)
	q.WriteString("UPDATE conversations SET last_seq = last_seq + CASE id")
	for _, c := range convs {
		q.WriteString(" WHEN ? THEN ?")
		args = append(args, c, count[c])
	}
	q.WriteString(" END, last_msg_at = ? WHERE id IN (" + placeholders(len(convs)) + ")")
	args = append(args, now)
	for _, c := range convs {
		args = append(args, c)
	}
	res, err := tx.ExecContext(tctx, q.String(), args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != int64(len(convs)) {
		return ErrNoConversation
	}
	rows, err := tx.QueryContext(tctx, "SELECT id, last_seq FROM conversations WHERE id IN ("+placeholders(len(convs))+")", args[len(args)-len(convs):]...)
	if err != nil {
		return err
	}
	next := make(map[string]int64, len(convs))
	for rows.Next() {
		var id string
		var top int64
		if err := rows.Scan(&id, &top); err != nil {
			rows.Close()
			return err
		}
		next[id] = top - count[id] + 1
	}
	if err := rows.Close(); err != nil {
		return err
	}

	q.Reset()
	q.WriteString("INSERT INTO messages (" + insertColumns + ") VALUES ")
	margs := make([]any, 0, 8*len(batch))
	type cursor struct {
		user int64
		conv string
	}
	reads := map[cursor]int64{}
	for i, r := range batch {
		m := r.m
		m.Seq = next[m.ConvID]
		next[m.ConvID]++
		m.ID = s.ids.Next()
		m.SentAt = now.UnixMilli()
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?)")
		margs = append(margs, m.ConvID, m.Seq, m.ID, m.Sender, m.ClientMsgID, m.Type, []byte(m.Content), now)
		reads[cursor{m.Sender, m.ConvID}] = max(reads[cursor{m.Sender, m.ConvID}], m.Seq)
	}
	if _, err := tx.ExecContext(tctx, q.String(), margs...); err != nil {
		return err // a stored client_msg_id (db.IsDuplicate) among them, most likely
	}

	// Senders have read up to their own messages (see appendTx).
	q.Reset()
	q.WriteString("UPDATE conversation_members SET read_seq = GREATEST(read_seq, CASE")
	cargs := make([]any, 0, 5*len(reads))
	keys := make([]cursor, 0, len(reads))
	for k, seq := range reads {
		q.WriteString(" WHEN user_id = ? AND conv_id = ? THEN ?")
		cargs = append(cargs, k.user, k.conv, seq)
		keys = append(keys, k)
	}
	q.WriteString(" ELSE read_seq END) WHERE (user_id, conv_id) IN (")
	for i, k := range keys {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?)")
		cargs = append(cargs, k.user, k.conv)
	}
	q.WriteByte(')')
	if _, err := tx.ExecContext(tctx, q.String(), cargs...); err != nil {
		return fmt.Errorf("sender cursors: %w", err)
	}
	if err := tx.Commit(); err != nil {
		if db.IsRetryable(err) {
			return err
		}
		return fmt.Errorf("commit batch: %w", err)
	}
	return nil
}
