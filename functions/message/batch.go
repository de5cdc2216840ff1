package message

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group commit for the send path. Conversations are spread over Writers shards
// by a hash of their id; each shard is one goroutine that forms a batch (all
// that is queued, up to batchMax; a small batch waits up to Linger for company)
// and stores it in one transaction, sent as one script in one round trip
// however many messages and conversations it holds (see insertBatch). Meanwhile
// the next batch queues. A conversation's sends all go through one
// shard, so concurrent transactions never wait for each other's conversation
// rows, and its pushes, run after each commit in batch order, leave in seq order.
// Anything unusual (a retried client_msg_id already stored, a conversation
// without its row, a deadlock) falls back to the one-message path, which handles
// it.

// batchMax bounds a batch; batchFill is the size that stops a batch's linger.
const (
	batchMax  = 128
	batchFill = 16
)

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
	Linger  time.Duration // how long a small batch waits for company
	// Metrics receives natter_message_batch_size; may be nil.
	Metrics prometheus.Registerer
	// Scripts is a pool of the same database that allows multi-statement
	// scripts (db.OpenScripts): each batch is one.
	Scripts *sql.DB
}

// Start runs c.Writers batch writers until ctx ends. Without Start, Append writes
// each message in its own transaction.
func (s *Store) Start(ctx context.Context, c BatchConfig) {
	writers, linger, reg := c.Writers, c.Linger, c.Metrics
	s.scripts = c.Scripts
	if s.scripts == nil {
		panic("message: BatchConfig.Scripts is required (db.OpenScripts)")
	}
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
	s.seed = maphash.MakeSeed()
	for range max(writers, 1) {
		q := make(chan *appendReq, 4*batchMax)
		s.queues = append(s.queues, q)
		go func() {
			for {
				batch := collect(ctx, q, linger)
				if batch == nil {
					return
				}
				s.writeBatch(ctx, batch)
			}
		}()
	}
}

func (s *Store) enqueue(ctx context.Context, m *Message, o AppendOptions) (bool, error) {
	r := &appendReq{ctx: ctx, m: m, o: o, done: make(chan appendRes, 1)}
	q := s.queues[maphash.String(s.seed, m.ConvID)%uint64(len(s.queues))]
	select {
	case q <- r:
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

// collect forms a batch from q: the first queued message opens it, with
// whatever else is queued behind it. A batch smaller than batchFill then waits up
// to linger for company: a transaction costs MariaDB about as much for one
// message as for ten, so small batches are worth a millisecond or two. Under load
// the previous transaction's time gathers batchFill or more and nothing waits, so
// the linger never caps a writer's rate. At most batchMax messages; nil once ctx
// ends.
func collect(ctx context.Context, q <-chan *appendReq, linger time.Duration) []*appendReq {
	var batch []*appendReq
	select {
	case <-ctx.Done():
		return nil
	case r := <-q:
		batch = append(make([]*appendReq, 0, 16), r)
	}
	batch = drain(q, batch)
	if len(batch) >= batchFill || linger <= 0 {
		return batch
	}
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for len(batch) < batchFill {
		select {
		case r := <-q:
			batch = append(batch, r)
		case <-timer.C:
			return drain(q, batch)
		}
	}
	return drain(q, batch)
}

// drain adds to batch what q holds now, up to batchMax.
func drain(q <-chan *appendReq, batch []*appendReq) []*appendReq {
	for len(batch) < batchMax {
		select {
		case r := <-q:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

type msgKey struct {
	conv   string
	sender int64
	client string
}

func (s *Store) writeBatch(ctx context.Context, batch []*appendReq) {
	s.batchSize.Observe(float64(len(batch)))
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
	if err := s.insertBatch(ctx, uniq); err != nil {
		for _, r := range uniq { // the slow path sorts out whatever went wrong
			dup, err := s.appendOne(r.ctx, r.m, r.o)
			results[r] = appendRes{dup, err}
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

// insertBatch stores every message of batch in one transaction, or none of them,
// in one round trip: a multi-statement script (BatchConfig.Scripts) that opens
// the transaction, bumps every conversation's seq, inserts the messages with
// their seqs computed from the bumped tops, moves the senders' read cursors,
// reads the tops back and commits. Each message's seq is top - off, off being
// how many later messages of its conversation the batch holds. Should any
// statement fail (a stored client_msg_id, a conversation without its row: its
// seq comes out NULL), the rest do not run and the transaction is rolled back.
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

	var q strings.Builder
	args := make([]any, 0, 4*len(convs)+10*len(batch)+2)
	q.WriteString("START TRANSACTION;\nUPDATE conversations SET last_seq = last_seq + CASE id")
	for _, c := range convs {
		q.WriteString(" WHEN ? THEN ?")
		args = append(args, c, count[c])
	}
	q.WriteString(" END, last_msg_at = ? WHERE id IN (" + placeholders(len(convs)) + ");\n")
	args = append(args, now)
	for _, c := range convs {
		args = append(args, c)
	}

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
	for _, c := range convs {
		args = append(args, c)
	}

	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := s.scripts.Conn(tctx)
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
