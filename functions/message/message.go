// Package message serves sending, history and sync. MySQL is the truth for
// messages and for each conversation's seq; pushes to online devices go over core
// NATS (at most once) and clients fill gaps from history/sync by seq.
package message

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"natter/shared/endpoint"
)

// Config is the message domain's settings (env prefix MESSAGE_ in the worker).
type Config struct {
	MaxTextRunes int `env:"MAX_TEXT_RUNES" envDefault:"5000"`
	HistoryLimit int `env:"HISTORY_LIMIT" envDefault:"100"` // max page size
	SyncLimit    int `env:"SYNC_LIMIT" envDefault:"2000"`   // max messages per sync call
	// FanoutWorkers is how many goroutines publish group messages to members.
	FanoutWorkers int `env:"FANOUT_WORKERS" envDefault:"4"`
	// Writers is how many group-commit writers store sends, each owning a shard of
	// the conversations (0: one transaction per message). One makes the biggest
	// batches, hence the least database work per message; more add transactions in
	// flight when the database has cores to spare.
	Writers int `env:"WRITERS" envDefault:"1"`
	// BatchLinger is how long a small batch of sends waits for more to join it
	// (under load batches fill while the previous one commits, and do not wait).
	BatchLinger  time.Duration `env:"BATCH_LINGER" envDefault:"2ms"`
	RecallWindow time.Duration `env:"RECALL_WINDOW" envDefault:"2m"`
	EditWindow   time.Duration `env:"EDIT_WINDOW" envDefault:"15m"`
	// Typing indicators: at most one per user and conversation per TypingThrottle,
	// none in groups larger than TypingMaxGroup.
	TypingThrottle time.Duration `env:"TYPING_THROTTLE" envDefault:"3s"`
	TypingMaxGroup int           `env:"TYPING_MAX_GROUP" envDefault:"200"`
}

// Deps are what the domain needs; main wires them. Store and Fanout are shared
// with the group domain, which writes system messages through them.
type Deps struct {
	DB      *sql.DB
	Redis   *redis.Client
	Store   *Store
	Fanout  *Fanout
	Friends Relations
	Config  Config
}

// Relations decides whether one user may message another 1:1 (blocks, privacy).
// The friend domain implements it; nil allows everything.
type Relations interface {
	CanMessage(ctx context.Context, from, to int64) error
}

// Service implements the message endpoints.
type Service struct {
	db      *sql.DB
	rdb     *redis.Client
	store   *Store
	fan     *Fanout
	friends Relations
	cfg     Config
	now     func() time.Time
}

// New returns the message service, filling defaults for zero settings.
func New(d Deps) *Service {
	c := d.Config
	if c.MaxTextRunes <= 0 {
		c.MaxTextRunes = 5000
	}
	if c.HistoryLimit <= 0 {
		c.HistoryLimit = 100
	}
	if c.SyncLimit <= 0 {
		c.SyncLimit = 2000
	}
	if c.RecallWindow <= 0 {
		c.RecallWindow = 2 * time.Minute
	}
	if c.EditWindow <= 0 {
		c.EditWindow = 15 * time.Minute
	}
	if c.TypingThrottle <= 0 {
		c.TypingThrottle = 3 * time.Second
	}
	if c.TypingMaxGroup <= 0 {
		c.TypingMaxGroup = 200
	}
	return &Service{db: d.DB, rdb: d.Redis, store: d.Store, fan: d.Fanout, friends: d.Friends, cfg: c, now: time.Now}
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("msg.send", s.send),
		endpoint.Handle("msg.history", s.history),
		endpoint.Handle("msg.sync", s.sync),
		endpoint.Handle("msg.recall", s.recall),
		endpoint.Handle("msg.edit", s.edit),
		endpoint.Handle("msg.react", s.react),
		endpoint.Handle("msg.receipts", s.receipts),
		endpoint.Handle("msg.typing", s.typing),
	}
}

// insertColumns are written by Append; selectColumns add the lifecycle columns.
const (
	insertColumns = "conv_id, seq, id, sender_id, client_msg_id, kind, content, created_at"
	selectColumns = insertColumns + ", mod_seq, edit_count, edited_at, recalled_by"
)

func scanMessages(rows *sql.Rows, into []Message) ([]Message, error) {
	defer rows.Close()
	for rows.Next() {
		var m Message
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
