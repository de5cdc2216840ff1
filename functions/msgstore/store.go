// Package msgstore stores messages: it is the only writer of messages and of each
// conversation's seq (conversations.last_seq). Sends go through group-commit
// writers (batch.go), one per shard of the conversations, so that no two
// transactions in flight touch one conversation row and a conversation's pushes,
// run after each commit in order, leave in seq order. Group changes that write a
// system message run through the same writer (Change).
package msgstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/shared/convid"
	"natter/shared/db"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/wire"
)

// Store appends messages to conversations.
type Store struct {
	db     *sql.DB
	ids    *ids.Generator
	now    func() time.Time
	shards []*shard     // set by Start: Append and Change go through the writers
	seed   maphash.Seed // picks a conversation's writer
	scrDB  *sql.DB      // set by Start: where batches run as scripts
	sizes  prometheus.Histogram
	splits prometheus.Counter

	events Events // nil: none

	mu    sync.Mutex
	known map[string]struct{} // direct conversations known to exist
}

// Events hears of every message the store commits, after the commit (msgevent
// publishes them for offline push and search): the messages of one transaction
// together, in seq order per conversation, so that they can travel as one event.
// A retried send that finds its first copy is told again, alone.
type Events interface {
	Sent(batch []Stored)
}

// Stored is a committed message and the mentions it carried.
type Stored struct {
	Message  *wire.Message
	Mentions Mentions
}

// maxKnown bounds the set of direct conversations known to exist; past it the
// set starts over (a miss costs one indexed read).
const maxKnown = 200_000

// New returns a Store; without Start, every Append is its own transaction.
// events may be nil.
func New(d *sql.DB, g *ids.Generator, events Events) *Store {
	return &Store{db: d, ids: g, now: time.Now, known: map[string]struct{}{}, events: events}
}

// stored tells Events of a committed message.
func (s *Store) stored(m *wire.Message, mentions Mentions) {
	if s.events != nil {
		s.events.Sent([]Stored{{m, mentions}})
	}
}

// ErrNoConversation means the conversation has no row yet.
var ErrNoConversation = errors.New("conversation not created yet")

// ErrUserNotFound answers a first message to a user who does not exist.
var ErrUserNotFound = imerr.New(imerr.NotFound, "user not found")

// errRetried rolls back the transaction of a send whose client_msg_id is stored.
var errRetried = errors.New("client_msg_id already stored")

// AfterCommit runs once a message is stored (dup: it was stored before, by an
// earlier attempt), on the goroutine that committed it, before Append returns.
type AfterCommit func(m *wire.Message, dup bool)

// AppendOptions are the extras of one Append.
type AppendOptions struct {
	Mentions Mentions
	// After, when not nil, runs right after the commit and before Append returns.
	After AfterCommit
}

// Mentions says whom a message mentions: they see "mentioned" in their
// conversation list until they read past it.
type Mentions struct {
	Users []int64
	All   bool
}

// Append stores m (ConvID, Sender, ClientMsgID, Type and Content set), filling in
// Seq, ID and SentAt. When the sender already stored this ClientMsgID in the
// conversation, m becomes that first message and dup is true.
func (s *Store) Append(ctx context.Context, m *wire.Message, o AppendOptions) (dup bool, err error) {
	if s.shards != nil {
		return s.enqueue(ctx, &request{ctx: ctx, conv: m.ConvID, m: m, o: o})
	}
	return s.appendOne(ctx, m, o)
}

// ChangeFunc makes a change inside tx and returns the message that records it in
// the conversation (ConvID, Sender, ClientMsgID, Type and Content set), or nil
// when nothing changed (a retry).
type ChangeFunc func(tx *sql.Tx) (*wire.Message, error)

// Change runs fn and appends the message it returns in one transaction, in order
// with the conversation's sends: sends queued before it are stored first, sends
// queued after it wait until it has committed and after has run, and no send of
// the conversation is in a transaction meanwhile (other conversations' sends go
// on). after, when not nil, runs once committed, so the change's push leaves in
// seq order. It returns the stored message, or nil.
func (s *Store) Change(ctx context.Context, conv string, fn ChangeFunc, after AfterCommit) (*wire.Message, error) {
	if s.shards != nil {
		r := &request{ctx: ctx, conv: conv, change: fn, o: AppendOptions{After: after}}
		if _, err := s.enqueue(ctx, r); err != nil {
			return nil, err
		}
		return r.m, nil
	}
	m, err := s.runChange(ctx, fn)
	if err == nil && m != nil && after != nil {
		after(m, false)
	}
	return m, err
}

// Create runs fn and appends the message it returns in one transaction of its own,
// not through a writer: for a conversation no send can reach yet (a group being
// created, whose conversation row fn inserts). It returns the stored message.
func (s *Store) Create(ctx context.Context, fn ChangeFunc) (*wire.Message, error) {
	return s.runChange(ctx, fn)
}

// runChange is one change's transaction.
func (s *Store) runChange(ctx context.Context, fn ChangeFunc) (*wire.Message, error) {
	var m *wire.Message
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		var err error
		if m, err = fn(tx); err != nil || m == nil {
			return err
		}
		return s.appendTx(ctx, tx, m, Mentions{})
	})
	if err != nil {
		return nil, err
	}
	if m != nil {
		s.stored(m, Mentions{})
	}
	return m, nil
}

// appendOne stores one message in its own transaction: three round trips (bump
// the seq, insert, commit). The seq bump takes the conversation row lock, so
// seqs are gap-free and increase in commit order; a duplicate client_msg_id
// rolls the bump back.
func (s *Store) appendOne(ctx context.Context, m *wire.Message, o AppendOptions) (dup bool, err error) {
	defer func() {
		if err == nil {
			s.stored(m, o.Mentions)
			if o.After != nil {
				o.After(m, dup)
			}
		}
	}()
	err = db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		err := s.appendTx(ctx, tx, m, o.Mentions)
		if db.IsDuplicate(err) {
			return errRetried
		}
		return err
	})
	if errors.Is(err, errRetried) {
		first, err := s.byClientID(ctx, m.ConvID, m.Sender, m.ClientMsgID)
		if err != nil {
			return false, err
		}
		*m = first
		return true, nil
	}
	return false, err
}

func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, m *wire.Message, mentions Mentions) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	// LAST_INSERT_ID(expr) hands the new value back in the OK packet: no SELECT.
	res, err := tx.ExecContext(ctx, "UPDATE conversations SET last_seq = LAST_INSERT_ID(last_seq + 1), last_msg_at = ? WHERE id = ?", now, m.ConvID)
	if err != nil {
		return fmt.Errorf("bump seq: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNoConversation
	}
	if m.Seq, err = res.LastInsertId(); err != nil {
		return err
	}
	m.ID = s.ids.Next()
	m.SentAt = now.UnixMilli()
	_, err = tx.ExecContext(ctx, "INSERT INTO messages ("+insertColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		m.ConvID, m.Seq, m.ID, m.Sender, m.ClientMsgID, m.Type, []byte(m.Content), now)
	if err != nil {
		return err
	}
	// Writing implies having read everything before: the sender's own messages never
	// count as unread, so unread = last_seq - read_seq needs no per-message scan.
	if _, err := tx.ExecContext(ctx, "UPDATE conversation_members SET read_seq = ? WHERE user_id = ? AND conv_id = ? AND read_seq < ?",
		m.Seq, m.Sender, m.ConvID, m.Seq); err != nil {
		return fmt.Errorf("sender cursor: %w", err)
	}
	switch {
	case mentions.All:
		_, err = tx.ExecContext(ctx, "UPDATE conversation_members SET mention_seq = ? WHERE conv_id = ? AND user_id <> ?", m.Seq, m.ConvID, m.Sender)
	case len(mentions.Users) > 0:
		args := []any{m.Seq, m.ConvID}
		for _, u := range mentions.Users {
			args = append(args, u)
		}
		_, err = tx.ExecContext(ctx, "UPDATE conversation_members SET mention_seq = ? WHERE conv_id = ? AND user_id IN ("+placeholders(len(mentions.Users))+")", args...)
	}
	if err != nil {
		return fmt.Errorf("mentions: %w", err)
	}
	return nil
}

func (s *Store) byClientID(ctx context.Context, conv string, sender int64, clientID string) (wire.Message, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+SelectColumns+" FROM messages WHERE conv_id = ? AND sender_id = ? AND client_msg_id = ?", conv, sender, clientID)
	if err != nil {
		return wire.Message{}, err
	}
	ms, err := ScanMessages(rows, nil)
	if err != nil {
		return wire.Message{}, err
	}
	if len(ms) != 1 {
		return wire.Message{}, fmt.Errorf("retried message %s/%s not found", conv, clientID)
	}
	return ms[0], nil
}

// EnsureDirect makes sure the 1:1 conversation and its two member rows exist
// before its first message is queued, so that the message goes through group
// commit like any other (a batch-mate without its conversation row would send
// the whole batch down the slow path). Conversations seen to exist are
// remembered, so a send usually costs nothing here. It answers ErrUserNotFound
// when either user does not exist.
func (s *Store) EnsureDirect(ctx context.Context, conv convid.ID) error {
	s.mu.Lock()
	_, ok := s.known[conv.Raw]
	s.mu.Unlock()
	if ok {
		return nil
	}
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM conversations WHERE id = ?", conv.Raw).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := s.createDirect(ctx, conv); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("conversation %s: %w", conv.Raw, err)
	}
	s.mu.Lock()
	if len(s.known) >= maxKnown {
		clear(s.known)
	}
	s.known[conv.Raw] = struct{}{}
	s.mu.Unlock()
	return nil
}

// createDirect creates a 1:1 conversation and its two members if both users exist.
// It runs in its own small transaction, never inside a send's (concurrent first
// sends would deadlock there); INSERT IGNORE makes racing creators harmless.
func (s *Store) createDirect(ctx context.Context, conv convid.ID) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id IN (?, ?)", conv.A, conv.B).Scan(&n); err != nil {
		return fmt.Errorf("check users: %w", err)
	}
	if n != 2 {
		return ErrUserNotFound
	}
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversations (id, kind) VALUES (?, ?)", conv.Raw, convid.Direct); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversation_members (user_id, conv_id, target_id) VALUES (?, ?, ?), (?, ?, ?)",
			conv.A, conv.Raw, conv.B, conv.B, conv.Raw, conv.A)
		return err
	})
	if err != nil {
		return fmt.Errorf("create conversation %s: %w", conv.Raw, err)
	}
	return nil
}

// insertColumns are written by Append; SelectColumns add the lifecycle columns
// and are what ScanMessages reads.
const (
	insertColumns = "conv_id, seq, id, sender_id, client_msg_id, kind, content, created_at"
	SelectColumns = insertColumns + ", mod_seq, edit_count, edited_at, recalled_by"
)

// ScanMessages reads rows of SelectColumns into into; it closes rows.
func ScanMessages(rows *sql.Rows, into []wire.Message) ([]wire.Message, error) {
	defer rows.Close()
	for rows.Next() {
		var m wire.Message
		var content []byte
		var at time.Time
		var edited sql.NullTime
		if err := rows.Scan(&m.ConvID, &m.Seq, &m.ID, &m.Sender, &m.ClientMsgID, &m.Type, &content, &at,
			&m.Mod, &m.Edits, &edited, &m.RecalledBy); err != nil {
			return nil, fmt.Errorf("scan message: %w", err)
		}
		m.SentAt = at.UnixMilli()
		if edited.Valid {
			m.EditedAt = edited.Time.UnixMilli()
		}
		m.Recalled = m.RecalledBy != 0
		if !m.Recalled {
			m.Content = content
		}
		into = append(into, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return into, nil
}

// placeholders returns "?,?,...,?" (n of them).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
