package msgstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/shared/metrics"
	"natter/shared/wire"
)

// Group commit. Conversations are spread over Writers shards by a hash of their
// id; each shard is one goroutine that forms a batch of sends (all that is
// queued, up to batchMax; a small batch waits up to Linger for company) and
// stores it in one transaction, sent as one script in one round trip however
// many messages and conversations it holds (insertBatch). Meanwhile the next
// batch queues. A conversation's sends all go through one shard, so concurrent
// transactions never wait for each other's conversation rows, and its pushes, run
// after each commit in batch order, leave in seq order.
//
// A change (Change: a group change and its system message) closes the batch
// being formed and, once that batch has committed, runs in its own transaction
// on its own goroutine. Until it commits, its conversation is held: that
// conversation's later sends and changes wait in the shard, in order, while the
// other conversations' batches go on.
//
// Should a batch fail (a retried client_msg_id already stored, a conversation
// without its row), the writer finds the requests that made it fail, stores the
// others as a batch again and only those one by one (appendOne), so one odd send
// does not slow its batch-mates. Any other failure (a deadlock, a lost
// connection) sends the whole batch down the one-by-one path, which handles it.

// batchMax bounds a batch; batchFill is the size that stops a batch's linger.
const (
	batchMax  = 128
	batchFill = 16
)

// request is one send (m set by the caller) or one change (change set) queued
// for a writer.
type request struct {
	ctx    context.Context
	conv   string
	m      *wire.Message
	o      AppendOptions
	change ChangeFunc
	res    result // a change's outcome, set on its goroutine
	done   chan result
}

type result struct {
	dup bool
	err error
}

// shard is one writer's state; only its goroutine touches held and ready.
type shard struct {
	q     chan *request
	done  chan *request         // changes finished on their own goroutines
	held  map[string][]*request // conversations with a change running, and what waits for it
	ready []*request            // released by a finished change; taken before q
}

// BatchConfig configures the group-commit writers.
type BatchConfig struct {
	Writers int           // transactions of sends in flight
	Linger  time.Duration // how long a small batch waits for company
	// Metrics receives natter_message_batch_size; may be nil.
	Metrics prometheus.Registerer
	// Scripts is a pool of the same database that allows multi-statement
	// scripts (db.OpenScripts): each batch is one.
	Scripts *sql.DB
}

// Start runs c.Writers writers until ctx ends. Without Start, Append writes each
// message in its own transaction and Change runs inline.
func (s *Store) Start(ctx context.Context, c BatchConfig) error {
	if c.Scripts == nil {
		return fmt.Errorf("msgstore: BatchConfig.Scripts is required (db.OpenScripts)")
	}
	var err error
	if s.sizes, err = metrics.Register(c.Metrics, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "natter", Subsystem: "message", Name: "batch_size",
		Help:    "Messages stored per group-commit transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})); err != nil {
		return err
	}
	if s.splits, err = metrics.Register(c.Metrics, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "natter", Subsystem: "message", Name: "batch_splits_total",
		Help: "Batches that failed on a few odd sends (retries, missing conversations) and were stored again without them.",
	})); err != nil {
		return err
	}
	s.scrDB = c.Scripts
	s.seed = maphash.MakeSeed()
	for range max(c.Writers, 1) {
		sh := &shard{q: make(chan *request, 4*batchMax), done: make(chan *request, 64), held: map[string][]*request{}}
		s.shards = append(s.shards, sh)
		go s.write(ctx, sh, c.Linger)
	}
	return nil
}

func (s *Store) enqueue(ctx context.Context, r *request) (bool, error) {
	r.done = make(chan result, 1)
	sh := s.shards[maphash.String(s.seed, r.conv)%uint64(len(s.shards))]
	select {
	case sh.q <- r:
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

// write is one shard's writer.
func (s *Store) write(ctx context.Context, sh *shard, linger time.Duration) {
	for {
		c := collector{s: s, sh: sh}
		next, ok := c.collect(ctx, linger)
		if !ok {
			return
		}
		if len(c.batch) > 0 {
			s.writeBatch(ctx, c.batch)
		}
		if next != nil {
			s.startChange(ctx, sh, next)
		}
	}
}

// collector forms one batch.
type collector struct {
	s     *Store
	sh    *shard
	batch []*request
}

// collect forms a batch: the first request opens it, with whatever else is ready
// or queued behind it. A batch smaller than batchFill then waits up to linger for
// company: a transaction costs MariaDB about as much for one message as for ten,
// so small batches are worth a millisecond or two. Under load the previous
// transaction's time gathers batchFill or more and nothing waits. A change closes
// the batch and is returned, to start once the batch is stored. ok is false once
// ctx ends.
func (c *collector) collect(ctx context.Context, linger time.Duration) (next *request, ok bool) {
	for len(c.batch) == 0 {
		r := c.take()
		if r == nil {
			select {
			case <-ctx.Done():
				return nil, false
			case f := <-c.sh.done:
				c.s.finishChange(c.sh, f)
				continue
			case r = <-c.sh.q:
			}
		}
		if next := c.add(r); next != nil {
			return next, true
		}
	}
	if next := c.fill(); next != nil || len(c.batch) >= batchFill || linger <= 0 {
		return next, true
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for len(c.batch) < batchFill {
		select {
		case r := <-c.sh.q:
			if next := c.add(r); next != nil {
				return next, true
			}
		case f := <-c.sh.done:
			c.s.finishChange(c.sh, f)
			if next := c.fill(); next != nil {
				return next, true
			}
		case <-timer.C:
			return c.fill(), true
		}
	}
	return c.fill(), true
}

// take returns a released request, or one queued now, or nil.
func (c *collector) take() *request {
	if len(c.sh.ready) > 0 {
		r := c.sh.ready[0]
		c.sh.ready = c.sh.ready[1:]
		if len(c.sh.ready) == 0 {
			c.sh.ready = nil
		}
		return r
	}
	select {
	case r := <-c.sh.q:
		return r
	default:
		return nil
	}
}

// fill adds what is ready or queued now, up to batchMax, stopping at a change.
func (c *collector) fill() *request {
	for len(c.batch) < batchMax {
		r := c.take()
		if r == nil {
			return nil
		}
		if next := c.add(r); next != nil {
			return next
		}
	}
	return nil
}

// add puts r in the batch, or holds it behind its conversation's running change;
// a change that may start is returned instead.
func (c *collector) add(r *request) *request {
	if list, busy := c.sh.held[r.conv]; busy {
		c.sh.held[r.conv] = append(list, r)
		return nil
	}
	if r.change != nil {
		return r
	}
	c.batch = append(c.batch, r)
	return nil
}

// startChange runs a change on its own goroutine; its conversation is held
// until finishChange.
func (s *Store) startChange(ctx context.Context, sh *shard, r *request) {
	if _, busy := sh.held[r.conv]; !busy {
		sh.held[r.conv] = nil
	}
	go func() {
		r.m, r.res.err = s.runChange(r.ctx, r.change)
		select {
		case sh.done <- r:
		case <-ctx.Done():
			r.done <- result{err: ctx.Err()}
		}
	}()
}

// finishChange runs on the writer once a change's transaction ended: its push
// first, then the conversation's held requests are released, in order, to be
// taken before anything queued later. A change among them closes the batch of
// the sends released before it, as any change does, so those are stored first.
func (s *Store) finishChange(sh *shard, r *request) {
	if r.res.err == nil && r.m != nil && r.o.After != nil {
		r.o.After(r.m, false)
	}
	r.done <- r.res
	sh.ready = append(sh.ready, sh.held[r.conv]...)
	delete(sh.held, r.conv)
}

type msgKey struct {
	conv   string
	sender int64
	client string
}

func (s *Store) writeBatch(ctx context.Context, batch []*request) {
	s.sizes.Observe(float64(len(batch)))
	// A retry racing its original inside one batch: store it once, answer both.
	primary := make(map[msgKey]*request, len(batch))
	var uniq []*request
	var dups [][2]*request
	for _, r := range batch {
		k := msgKey{r.m.ConvID, r.m.Sender, r.m.ClientMsgID}
		if p, ok := primary[k]; ok {
			dups = append(dups, [2]*request{r, p})
			continue
		}
		primary[k] = r
		uniq = append(uniq, r)
	}
	stored, slow := uniq, []*request(nil)
	if err := s.insertBatch(ctx, uniq); err != nil {
		stored, slow = nil, uniq
		if odd := s.odd(ctx, uniq); len(odd) > 0 && len(odd) < len(uniq) {
			rest := slices.DeleteFunc(slices.Clone(uniq), func(r *request) bool { return odd[r] })
			s.splits.Inc()
			if s.insertBatch(ctx, rest) == nil {
				stored = rest
				slow = slices.DeleteFunc(slices.Clone(uniq), func(r *request) bool { return !odd[r] })
			}
		}
	}
	results := make(map[*request]result, len(uniq))
	if s.events != nil && len(stored) > 0 {
		evs := make([]Stored, len(stored)) // one event for the transaction
		for i, r := range stored {
			evs[i] = Stored{r.m, r.o.Mentions}
		}
		s.events.Sent(evs)
	}
	for _, r := range stored {
		results[r] = result{}
		if r.o.After != nil {
			r.o.After(r.m, false)
		}
	}
	for _, r := range slow { // the one-message path sorts out whatever went wrong
		dup, err := s.appendOne(r.ctx, r.m, r.o)
		results[r] = result{dup, err}
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

// odd finds the sends that make a batch fail: a client_msg_id stored already (a
// retry) or a conversation without its row. nil when it cannot tell.
func (s *Store) odd(ctx context.Context, batch []*request) map[*request]bool {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var q strings.Builder
	args := make([]any, 0, 3*len(batch))
	convs := map[string]bool{}
	q.WriteString("SELECT conv_id, sender_id, client_msg_id FROM messages WHERE ")
	for i, r := range batch {
		if i > 0 {
			q.WriteString(" OR ")
		}
		q.WriteString("(conv_id = ? AND sender_id = ? AND client_msg_id = ?)")
		args = append(args, r.m.ConvID, r.m.Sender, r.m.ClientMsgID)
		convs[r.m.ConvID] = false
	}
	stored := map[msgKey]bool{}
	rows, err := s.db.QueryContext(qctx, q.String(), args...)
	if err != nil {
		return nil
	}
	for rows.Next() {
		var k msgKey
		if rows.Scan(&k.conv, &k.sender, &k.client) != nil {
			rows.Close()
			return nil
		}
		stored[k] = true
	}
	if rows.Close() != nil {
		return nil
	}
	ids := slices.Collect(maps.Keys(convs))
	rows, err = s.db.QueryContext(qctx, "SELECT id FROM conversations WHERE id IN ("+placeholders(len(ids))+")", anys(ids)...)
	if err != nil {
		return nil
	}
	for rows.Next() {
		var id string
		if rows.Scan(&id) != nil {
			rows.Close()
			return nil
		}
		convs[id] = true
	}
	if rows.Close() != nil {
		return nil
	}
	odd := map[*request]bool{}
	for _, r := range batch {
		if stored[msgKey{r.m.ConvID, r.m.Sender, r.m.ClientMsgID}] || !convs[r.m.ConvID] {
			odd[r] = true
		}
	}
	return odd
}

// insertBatch stores every message of batch in one transaction, or none of them,
// in one round trip: a multi-statement script (BatchConfig.Scripts) that opens
// the transaction, bumps every conversation's seq, inserts the messages with
// their seqs computed from the bumped tops, marks mentions, moves the senders'
// read cursors, reads the tops back and commits. Each message's seq is top - off,
// off being how many later messages of its conversation the batch holds. Should
// any statement fail (a stored client_msg_id, a conversation without its row:
// its seq comes out NULL), the rest do not run and the transaction is rolled back.
func (s *Store) insertBatch(ctx context.Context, batch []*request) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	count := map[string]int64{}
	for _, r := range batch {
		count[r.m.ConvID]++
	}
	convs := slices.Sorted(maps.Keys(count)) // one lock order for every batch

	var q strings.Builder
	args := make([]any, 0, 4*len(convs)+10*len(batch)+2)
	q.WriteString("START TRANSACTION;\nUPDATE conversations SET last_seq = last_seq + CASE id")
	for _, c := range convs {
		q.WriteString(" WHEN ? THEN ?")
		args = append(args, c, count[c])
	}
	q.WriteString(" END, last_msg_at = ? WHERE id IN (" + placeholders(len(convs)) + ");\n")
	args = append(args, now)
	args = append(args, anys(convs)...)

	q.WriteString("INSERT INTO messages (" + insertColumns + ") VALUES ")
	type cursor struct {
		user int64
		conv string
	}
	left := maps.Clone(count)   // messages of each conversation still to come
	reads := map[cursor]int64{} // sender's last message: its off
	offs := make([]int64, len(batch))
	for i, r := range batch {
		m := r.m
		left[m.ConvID]--
		offs[i] = left[m.ConvID]
		m.ID = s.ids.Next()
		m.SentAt = now.UnixMilli()
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,(SELECT last_seq FROM conversations WHERE id = ?)-?,?,?,?,?,?,?)")
		args = append(args, m.ConvID, m.ConvID, offs[i], m.ID, m.Sender, m.ClientMsgID, m.Type, []byte(m.Content), now)
		reads[cursor{m.Sender, m.ConvID}] = offs[i] // later messages have smaller offs
	}
	q.WriteString(";\n")

	// Mentions, in batch order: a later message's seq is higher, GREATEST keeps it.
	for i, r := range batch {
		mn := r.o.Mentions
		if !mn.All && len(mn.Users) == 0 {
			continue
		}
		q.WriteString("UPDATE conversation_members SET mention_seq = GREATEST(mention_seq, (SELECT last_seq FROM conversations WHERE id = ?)-?) WHERE conv_id = ? AND ")
		args = append(args, r.m.ConvID, offs[i], r.m.ConvID)
		if mn.All {
			q.WriteString("user_id <> ?;\n")
			args = append(args, r.m.Sender)
		} else {
			q.WriteString("user_id IN (" + placeholders(len(mn.Users)) + ");\n")
			args = append(args, anys(mn.Users)...)
		}
	}

	// Senders have read up to their own messages (see appendTx).
	q.WriteString("UPDATE conversation_members m JOIN conversations c ON c.id = m.conv_id SET m.read_seq = GREATEST(m.read_seq, c.last_seq - CASE")
	keys := make([]cursor, 0, len(reads))
	for k, off := range reads {
		q.WriteString(" WHEN m.user_id = ? AND m.conv_id = ? THEN ?")
		args = append(args, k.user, k.conv, off)
		keys = append(keys, k)
	}
	q.WriteString(" END) WHERE (m.user_id, m.conv_id) IN (")
	for i, k := range keys {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?)")
		args = append(args, k.user, k.conv)
	}
	q.WriteString(");\nSELECT id, last_seq FROM conversations WHERE id IN (" + placeholders(len(convs)) + ");\nCOMMIT")
	args = append(args, anys(convs)...)

	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := s.scrDB.Conn(tctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tops, err := runBatchScript(tctx, conn, q.String(), args)
	if err != nil {
		abort(conn)
		return err
	}
	if len(tops) != len(convs) {
		// Committed, but the seqs cannot be told: the one-message path that follows
		// finds every message by its client_msg_id and answers it as a duplicate.
		return fmt.Errorf("batch: %d conversation tops for %d conversations", len(tops), len(convs))
	}
	for i, r := range batch {
		r.m.Seq = tops[r.m.ConvID] - offs[i]
	}
	return nil
}

// runBatchScript runs the script and returns the rows of its one SELECT (id,
// last_seq), or the first statement's error.
func runBatchScript(ctx context.Context, conn *sql.Conn, script string, args []any) (map[string]int64, error) {
	rows, err := conn.QueryContext(ctx, script, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tops := map[string]int64{}
	for {
		for rows.Next() {
			var id string
			var top int64
			if err := rows.Scan(&id, &top); err != nil {
				return nil, err
			}
			tops[id] = top
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return tops, rows.Close()
}

// abort rolls back whatever the failed script left open on conn; a connection
// that cannot even do that is discarded rather than returned to the pool.
func abort(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
