package message

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"time"

	"natter/shared/db"
	"natter/shared/ids"

	"github.com/prometheus/client_golang/prometheus"
)

// Store appends messages to conversations. It is the only writer of messages and of
// conversations.last_seq: user sends go through Append, and the group domain writes
// its system messages through AppendTx inside its own transactions.
type Store struct {
	db        *sql.DB
	ids       *ids.Generator
	now       func() time.Time
	queues    []chan *appendReq // set by Start: Append goes through the batch writers
	seed      maphash.Seed      // picks a conversation's writer
	scripts   *sql.DB           // set by Start: where batches run as scripts
	batchSize prometheus.Histogram
}

// NewStore returns a Store.
func NewStore(d *sql.DB, g *ids.Generator) *Store {
	return &Store{db: d, ids: g, now: time.Now}
}

// ErrNoConversation means the conversation has no row yet.
var ErrNoConversation = errors.New("conversation not created yet")

// errRetried rolls back the transaction of a send whose client_msg_id is stored.
var errRetried = errors.New("client_msg_id already stored")

// Append stores m (ConvID, Sender, ClientMsgID, Type and Content set), filling in
// Seq, ID and SentAt. When the sender already stored this ClientMsgID in the
// conversation, m becomes that first message and dup is true.
//
// Hot path: one transaction of three round trips (bump the seq, insert, commit). The
// seq bump takes the conversation row lock, so seqs are gap-free and increase in
// commit order; a duplicate client_msg_id rolls the bump back.
func (s *Store) Append(ctx context.Context, m *Message, o AppendOptions) (dup bool, err error) {
	if s.queues != nil && !o.Mentions.All && len(o.Mentions.Users) == 0 {
		return s.enqueue(ctx, m, o) // group commit (batch.go)
	}
	return s.appendOne(ctx, m, o)
}

// AppendOptions are the extras of one Append.
type AppendOptions struct {
	Mentions Mentions
	// After, when not nil, runs right after the commit and before Append returns.
	After AfterCommit
}

// appendOne stores one message in its own transaction.
func (s *Store) appendOne(ctx context.Context, m *Message, o AppendOptions) (dup bool, err error) {
	defer func() {
		if err == nil && o.After != nil {
			o.After(m, dup)
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

// Mentions says whom a message mentions: they see "mentioned" in their
// conversation list until they read past it.
type Mentions struct {
	Users []int64
	All   bool
}

// AppendTx stores m inside tx. It returns ErrNoConversation when the conversation
// has no row, and a duplicate-key error (db.IsDuplicate) for a stored ClientMsgID.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, m *Message) error {
	return s.appendTx(ctx, tx, m, Mentions{})
}

func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, m *Message, mentions Mentions) error {
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
		_, err = tx.ExecContext(ctx, "UPDATE conversation_members SET mention_seq = ? WHERE conv_id = ? AND user_id IN ("+
			strings.TrimSuffix(strings.Repeat("?,", len(mentions.Users)), ",")+")", args...)
	}
	if err != nil {
		return fmt.Errorf("mentions: %w", err)
	}
	return nil
}

func (s *Store) byClientID(ctx context.Context, conv string, sender int64, clientID string) (Message, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+selectColumns+" FROM messages WHERE conv_id = ? AND sender_id = ? AND client_msg_id = ?", conv, sender, clientID)
	if err != nil {
		return Message{}, err
	}
	ms, err := scanMessages(rows, nil)
	if err != nil {
		return Message{}, err
	}
	if len(ms) != 1 {
		return Message{}, fmt.Errorf("retried message %s/%s not found", conv, clientID)
	}
	return ms[0], nil
}

// createDirect creates a 1:1 conversation and its two members if both users exist.
// It runs in its own small transaction, never inside a send's (concurrent first
// sends would deadlock there); INSERT IGNORE makes racing creators harmless.
func (s *Store) createDirect(ctx context.Context, conv parsedConv) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id IN (?, ?)", conv.a, conv.b).Scan(&n); err != nil {
		return fmt.Errorf("check users: %w", err)
	}
	if n != 2 {
		return errUserNotFound
	}
	err := db.InTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversations (id, kind) VALUES (?, ?)", conv.id, kindDirect); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT IGNORE INTO conversation_members (user_id, conv_id, target_id) VALUES (?, ?, ?), (?, ?, ?)",
			conv.a, conv.id, conv.b, conv.b, conv.id, conv.a)
		return err
	})
	if err != nil {
		return fmt.Errorf("create conversation %s: %w", conv.id, err)
	}
	return nil
}
