package account

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// activity records sessions' latest activity (and, at connect, the address it
// came from) for account.devices and the back office. Connects and disconnects
// only note it in memory; a goroutine writes what was noted once per flushEvery
// in one statement per activityChunk sessions. One single-row commit per
// connect and per disconnect made a reconnect storm (an edge restarting, a load
// run starting) compete with message writes for the database's log: 2,000
// connections arriving at once delayed sends by hundreds of milliseconds.
// What a worker holds when it dies unannounced is lost, at most flushEvery of
// timestamps; a worker that stops writes it first.
type activity struct {
	db         *sql.DB
	log        zerolog.Logger
	flushEvery time.Duration

	mu      sync.Mutex
	pending map[activityKey]activityNote
	kick    chan struct{} // a full buffer asks for an early write
	dropped int           // notes refused while the buffer was at activityMax
}

type activityKey struct {
	session string
	user    int64
}

type activityNote struct {
	at time.Time
	ip string // "" keeps the stored address (a disconnect)
}

const (
	// activityMax bounds the notes held between writes: past activityFlush a
	// write starts early, past activityMax notes are dropped (and counted).
	activityFlush = 5000
	activityMax   = 50000
	activityChunk = 500
)

func newActivity(db *sql.DB, log zerolog.Logger, every time.Duration) *activity {
	return &activity{db: db, log: log, flushEvery: every, pending: map[activityKey]activityNote{}, kick: make(chan struct{}, 1)}
}

// note records one session's activity; a later note of the same session
// replaces it, keeping the address of a connect that a disconnect follows.
func (a *activity) note(session string, user int64, at time.Time, ip string) {
	k := activityKey{session, user}
	a.mu.Lock()
	defer a.mu.Unlock()
	old, had := a.pending[k]
	if !had && len(a.pending) >= activityMax {
		a.dropped++
		return
	}
	if ip == "" {
		ip = old.ip
	}
	a.pending[k] = activityNote{at, ip}
	if len(a.pending) >= activityFlush {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// overlay returns what is noted and not yet written for session, so that
// account.devices answers with it.
func (a *activity) overlay(session string, user int64) (activityNote, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.pending[activityKey{session, user}]
	return n, ok
}

// run writes the notes every flushEvery (or when the buffer fills) until ctx
// ends, then once more with a few seconds of its own.
func (a *activity) run(ctx context.Context) {
	t := time.NewTicker(a.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			a.flush(wctx)
			cancel()
			return
		case <-t.C:
		case <-a.kick:
		}
		a.flush(ctx)
	}
}

// flush writes what is noted. A chunk that fails is logged and forgotten: the
// next connect or disconnect notes the session again.
func (a *activity) flush(ctx context.Context) {
	a.mu.Lock()
	notes, dropped := a.pending, a.dropped
	a.pending, a.dropped = make(map[activityKey]activityNote, len(notes)), 0
	a.mu.Unlock()
	if dropped > 0 {
		a.log.Warn().Int("notes", dropped).Msg("session activity dropped: too many connects between writes")
	}
	keys := make([]activityKey, 0, len(notes))
	for k := range notes {
		keys = append(keys, k)
	}
	for len(keys) > 0 {
		n := min(len(keys), activityChunk)
		if err := a.write(ctx, keys[:n], notes); err != nil {
			a.log.Warn().Err(err).Int("sessions", n).Msg("session activity not recorded")
		}
		keys = keys[n:]
	}
}

// write updates the sessions of keys in one statement: a derived table of the
// notes joined to sessions (a session deleted meanwhile matches nothing). The
// latest time wins, as another worker may have written a later one first.
func (a *activity) write(ctx context.Context, keys []activityKey, notes map[activityKey]activityNote) error {
	var q strings.Builder
	args := make([]any, 0, 4*len(keys))
	q.WriteString("UPDATE sessions s JOIN (")
	for i, k := range keys {
		if i == 0 {
			q.WriteString("SELECT ? AS id, ? AS user_id, CAST(? AS DATETIME(3)) AS at, CAST(? AS CHAR(45)) AS ip")
		} else {
			q.WriteString(" UNION ALL SELECT ?, ?, ?, ?")
		}
		n := notes[k]
		args = append(args, k.session, k.user, n.at, n.ip)
	}
	q.WriteString(") v ON s.id = v.id AND s.user_id = v.user_id SET s.last_active_at = GREATEST(COALESCE(s.last_active_at, v.at), v.at), s.last_ip = IF(v.ip = '', s.last_ip, v.ip)")
	if _, err := a.db.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("record session activity: %w", err)
	}
	return nil
}
