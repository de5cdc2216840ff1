package friend

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"natter/shared/imerr"
)

// Relations answers other domains' questions about the social graph. The message
// domain asks CanMessage on every 1:1 send.
type Relations struct {
	db   *sql.DB
	mu   sync.Mutex
	stmt atomic.Pointer[sql.Stmt]
}

// NewRelations returns a Relations reading d.
func NewRelations(d *sql.DB) *Relations { return &Relations{db: d} }

// canMessageQuery answers everything CanMessage needs with five primary-key
// lookups in one statement.
const canMessageQuery = `SELECT
	EXISTS(SELECT 1 FROM users WHERE id = ?),
	EXISTS(SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?),
	EXISTS(SELECT 1 FROM blocks WHERE user_id = ? AND blocked_id = ?),
	COALESCE((SELECT messages FROM user_privacy WHERE user_id = ?), '` + DefaultMessages + `') = '` + Everyone + `',
	EXISTS(SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?)`

// CanMessage returns nil when from may send a 1:1 message to to, and otherwise an
// *imerr.Error: not_found when to does not exist; forbidden when from blocked to
// ("unblock this user first"), and with one neutral message when to blocked from
// or to takes messages from friends only (the default) and they are not friends,
// so a blocked sender cannot tell a block from a privacy setting.
//
// Hot path (msg.send): one round trip running a prepared statement, no cache to
// invalidate. See BenchmarkCanMessage.
func (r *Relations) CanMessage(ctx context.Context, from, to int64) error {
	st, err := r.prepared(ctx)
	if err != nil {
		return err
	}
	var exists, blocking, blockedBy, open, friends bool
	if err := st.QueryRowContext(ctx, to, from, to, to, from, to, to, from).Scan(&exists, &blocking, &blockedBy, &open, &friends); err != nil {
		return fmt.Errorf("can message: %w", err)
	}
	return verdict(to, exists, blocking, blockedBy, open, friends)
}

func verdict(to int64, exists, blocking, blockedBy, open, friends bool) error {
	switch {
	case !exists:
		return imerr.New(imerr.NotFound, "user %d not found", to)
	case blocking:
		return imerr.New(imerr.Forbidden, "unblock this user first")
	case blockedBy, !open && !friends:
		return imerr.New(imerr.Forbidden, "you cannot message this user")
	}
	return nil
}

// CanMessageMany answers CanMessage for the pairs (from[i], to[i]) in one
// statement: the group-commit writer asks it once per batch of 1:1 sends. errs[i]
// is pair i's answer; err is a failure of the query itself.
func (r *Relations) CanMessageMany(ctx context.Context, from, to []int64) (errs []error, err error) {
	if len(from) != len(to) {
		return nil, fmt.Errorf("can message: %d senders for %d recipients", len(from), len(to))
	}
	if len(from) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT p.i,
		EXISTS(SELECT 1 FROM users WHERE id = p.t),
		EXISTS(SELECT 1 FROM blocks WHERE user_id = p.f AND blocked_id = p.t),
		EXISTS(SELECT 1 FROM blocks WHERE user_id = p.t AND blocked_id = p.f),
		COALESCE((SELECT messages FROM user_privacy WHERE user_id = p.t), '` + DefaultMessages + `') = '` + Everyone + `',
		EXISTS(SELECT 1 FROM friendships WHERE user_id = p.t AND friend_id = p.f)
		FROM (`)
	args := make([]any, 0, 3*len(from))
	for i := range from {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		q.WriteString("SELECT ? AS i, ? AS f, ? AS t")
		args = append(args, i, from[i], to[i])
	}
	q.WriteString(") p")
	rows, err := r.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("can message: %w", err)
	}
	defer rows.Close()
	errs = make([]error, len(from))
	seen := 0
	for rows.Next() {
		var i int
		var exists, blocking, blockedBy, open, friends bool
		if err := rows.Scan(&i, &exists, &blocking, &blockedBy, &open, &friends); err != nil {
			return nil, fmt.Errorf("can message: %w", err)
		}
		if i < 0 || i >= len(from) {
			return nil, fmt.Errorf("can message: row %d out of range", i)
		}
		errs[i] = verdict(to[i], exists, blocking, blockedBy, open, friends)
		seen++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("can message: %w", err)
	}
	if seen != len(from) {
		return nil, fmt.Errorf("can message: %d answers for %d pairs", seen, len(from))
	}
	return errs, nil
}

// prepared returns the statement, preparing it on first use (and again after a
// failed attempt). database/sql re-prepares it on each pooled connection as needed.
func (r *Relations) prepared(ctx context.Context) (*sql.Stmt, error) {
	if st := r.stmt.Load(); st != nil {
		return st, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.stmt.Load(); st != nil {
		return st, nil
	}
	st, err := r.db.PrepareContext(ctx, canMessageQuery)
	if err != nil {
		return nil, fmt.Errorf("prepare can message: %w", err)
	}
	r.stmt.Store(st)
	return st, nil
}
