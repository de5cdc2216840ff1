package sensitive

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/imerr"
	"natter/shared/subject"
)

// EvtWordsChanged is published after the word list changes; every worker
// reloads it.
const EvtWordsChanged = subject.EventPrefix + "risk.words.changed"

// MaxWords bounds the list (what a reload reads and a matcher holds).
const MaxWords = 100000

// WordsChanged is the event's body.
type WordsChanged struct {
	At int64 `json:"at"` // ms, when the change committed
}

// List is a worker's current word list: a Matcher swapped whole when the list
// changes. Reads are one atomic load.
type List struct {
	db      *sql.DB
	log     zerolog.Logger
	cur     atomic.Pointer[Matcher]
	version atomic.Int64 // loads done
	kick    chan struct{}
	// OnReload, when set before Watch, is called after each reload an event
	// caused, with the time since the change committed.
	OnReload func(lag time.Duration)
	lastAt   atomic.Int64
}

// NewList returns an empty list reading from db.
func NewList(db *sql.DB, log zerolog.Logger) *List {
	l := &List{db: db, log: log, kick: make(chan struct{}, 1)}
	l.cur.Store(Build(nil))
	return l
}

// Matcher is the current matcher (never nil).
func (l *List) Matcher() *Matcher { return l.cur.Load() }

// Version counts the loads so far.
func (l *List) Version() int64 { return l.version.Load() }

// Check applies the current list to text.
func (l *List) Check(text string) Verdict { return l.cur.Load().Check(text) }

// Load reads the list from the database and swaps in a new matcher.
func (l *List) Load(ctx context.Context) error {
	rows, err := l.db.QueryContext(ctx, "SELECT word, action FROM sensitive_words ORDER BY id LIMIT ?", MaxWords)
	if err != nil {
		return fmt.Errorf("load words: %w", err)
	}
	defer rows.Close()
	var words []Word
	for rows.Next() {
		var w, a string
		if err := rows.Scan(&w, &a); err != nil {
			return err
		}
		act, _ := ParseAction(a)
		words = append(words, Word{Text: w, Action: act})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.cur.Store(Build(words))
	l.version.Add(1)
	return nil
}

// Watch loads the list, then reloads it on every EvtWordsChanged (events that
// arrive during a reload cause one more) and every refresh (a minute when 0),
// until ctx ends.
func (l *List) Watch(ctx context.Context, nc *nats.Conn, refresh time.Duration) error {
	if refresh <= 0 {
		refresh = time.Minute
	}
	sub, err := nc.Subscribe(EvtWordsChanged, func(m *nats.Msg) {
		var ev WordsChanged
		if json.Unmarshal(m.Data, &ev) == nil && ev.At > l.lastAt.Load() {
			l.lastAt.Store(ev.At)
		}
		select {
		case l.kick <- struct{}{}:
		default: // a reload is already due; it will see this change
		}
	})
	if err != nil {
		return fmt.Errorf("watch words: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := l.Load(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(refresh)
		defer t.Stop()
		for {
			kicked := false
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-l.kick:
				kicked = true
			}
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := l.Load(lctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					l.log.Warn().Err(err).Msg("sensitive words: reload")
				}
				continue
			}
			if kicked && l.OnReload != nil {
				l.OnReload(time.Since(time.UnixMilli(l.lastAt.Load())))
			}
		}
	}()
	return nil
}

// ErrBlocked is the answer to a text with a blocked word.
func ErrBlocked(field string) error {
	return imerr.New(imerr.Forbidden, "%s contains a word that is not allowed", field)
}

// Apply checks text for field where nothing can wait for review (names,
// announcements): block and review refuse it, mask masks it.
func (l *List) Apply(field, text string) (string, error) {
	if l == nil {
		return text, nil
	}
	v := l.Check(text)
	switch v.Action {
	case Block, Review:
		return "", ErrBlocked(field)
	}
	return v.Text, nil
}
