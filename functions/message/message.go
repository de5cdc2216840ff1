// Package message serves sending, history and sync. MySQL is the truth for
// messages and for each conversation's seq; pushes to online devices go over core
// NATS (at most once) and clients fill gaps from history/sync by seq.
package message

import (
	"context"
	"database/sql"
	"time"

	"natter/shared/db"

	"github.com/redis/go-redis/v9"

	"natter/functions/deliver"
	"natter/functions/msgstore"
	"natter/functions/sensitive"
	"natter/shared/config"
	"natter/shared/dynconf"
	"natter/shared/endpoint"
	"natter/shared/wire"
)

// Config is the message domain's settings (env prefix MESSAGE_ in the worker).
// Zero fields take their envDefault (config.WithDefaults).
type Config struct {
	MaxTextRunes int `env:"MAX_TEXT_RUNES" envDefault:"5000"`
	HistoryLimit int `env:"HISTORY_LIMIT" envDefault:"100"` // max page size
	SyncLimit    int `env:"SYNC_LIMIT" envDefault:"2000"`   // max messages per sync call
	// Writers is how many group-commit writers store sends, each owning a shard of
	// the conversations (negative: one transaction per message). One makes the
	// biggest batches, hence the least database work per message; more add
	// transactions in flight when the database has cores to spare.
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

// Deps are what the domain needs; main wires them. Store and Deliver are shared
// with the other domains.
type Deps struct {
	DB *sql.DB
	// Reads serves history and sync (a replica once caught up); nil: DB.
	Reads   *db.Reader
	Redis   redis.UniversalClient
	Store   *msgstore.Store
	Deliver *deliver.Deliverer
	Friends Relations
	Files   Files // media messages; nil answers them unavailable
	// Events hears of edits and recalls (msgevent); nil: nobody.
	Events Events
	// Words is the sensitive-word list applied to text and rich text (sends and
	// edits); nil: none.
	Words *sensitive.List
	// Review queues messages a "review" word flagged; nil: they are only logged.
	Review Flagger
	// Live is the runtime configuration (windows, send rates, message-type
	// flags); nil: the Config values and no rate limit.
	Live   *dynconf.Live
	Config Config
}

// Flagger queues a stored message for review (the risk domain implements it).
type Flagger interface {
	FlagMessage(ctx context.Context, m wire.Message, text string, words []string) error
}

// Events publishes what happens to stored messages.
type Events interface {
	Edited(m wire.Message)
	Recalled(ev wire.MessageRecalled)
}

// Relations decides whether one user may message another 1:1 (blocks, privacy).
// The friend domain implements it; nil allows everything.
type Relations interface {
	CanMessage(ctx context.Context, from, to int64) error
}

// Service implements the message endpoints.
type Service struct {
	reads   *db.Reader
	db      *sql.DB
	rdb     redis.UniversalClient
	store   *msgstore.Store
	deliver *deliver.Deliverer
	friends Relations
	events  Events
	files   Files
	words   *sensitive.List
	review  Flagger
	live    *dynconf.Live
	limiter *limiter
	cfg     Config
	now     func() time.Time
}

// New returns the message service.
func New(d Deps) *Service {
	reads := d.Reads
	if reads == nil {
		reads = db.PrimaryOnly(d.DB)
	}
	s := &Service{db: d.DB, reads: reads, rdb: d.Redis, store: d.Store, deliver: d.Deliver, friends: d.Friends, events: d.Events, files: d.Files,
		words: d.Words, review: d.Review, live: d.Live, cfg: config.WithDefaults(d.Config), now: time.Now}
	if d.Live != nil && d.Redis != nil {
		s.limiter = &limiter{rdb: d.Redis}
	}
	return s
}

// recallWindow and editWindow are the config items, else the Config values.
func (s *Service) recallWindow() time.Duration {
	if s.live == nil {
		return s.cfg.RecallWindow
	}
	return s.live.Duration(dynconf.RecallWindow, s.cfg.RecallWindow)
}

func (s *Service) editWindow() time.Duration {
	if s.live == nil {
		return s.cfg.EditWindow
	}
	return s.live.Duration(dynconf.EditWindow, s.cfg.EditWindow)
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
