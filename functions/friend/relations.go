package friend

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"natter/shared/bus"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Relations answers other domains' questions about the social graph. The message
// domain asks CanMessage on every 1:1 send, so answers are cached per pair (see
// verdicts): a cached answer costs the send no database work at all.
type Relations struct {
	db    *sql.DB
	mu    sync.Mutex
	stmt  atomic.Pointer[sql.Stmt]
	cache *verdicts
	now   func() time.Time
}

// Cache bounds: about 100 bytes an entry. The TTL only limits how long an answer
// could outlive a change whose event this worker missed without a reconnect (a
// slow-consumer drop).
const (
	verdictTTL        = time.Minute
	maxVerdictEntries = 1 << 18
)

// NewRelations returns a Relations reading d.
func NewRelations(d *sql.DB) *Relations {
	return &Relations{db: d, cache: newVerdicts(verdictTTL, maxVerdictEntries), now: time.Now}
}

// Forget drops this worker's cached answers about users; the friend domain calls
// it after each change it commits, then tells the other workers.
func (r *Relations) Forget(users ...int64) { r.cache.forget(users...) }

// Watch makes this worker Forget what other workers' changes announce, until ctx
// ends. Changes announced while this worker was cut off from NATS are lost, so a
// reconnect forgets everything.
func (r *Relations) Watch(ctx context.Context, nc *nats.Conn) error {
	bus.OnReconnect(nc, r.cache.reset)
	sub, err := nc.Subscribe(subject.EvtRelationsChanged, func(m *nats.Msg) {
		var ev wire.RelationsChanged
		if json.Unmarshal(m.Data, &ev) == nil {
			r.Forget(ev.Users...)
		}
	})
	if err != nil {
		return fmt.Errorf("watch relations: %w", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	return nil
}

// cacheable: a missing user is not remembered (ids are not reused, but a miss for
// one is cheap and rare).
func cacheable(err error) bool {
	var e *imerr.Error
	return err == nil || (errors.As(err, &e) && e.Code == imerr.Forbidden)
}

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
// Hot path (msg.send): the cached answer, else one round trip running a prepared
// statement. See BenchmarkCanMessage.
func (r *Relations) CanMessage(ctx context.Context, from, to int64) error {
	now := r.now()
	cached, ok, stamp := r.cache.get(from, to, now)
	if ok {
		return cached
	}
	st, err := r.prepared(ctx)
	if err != nil {
		return err
	}
	var exists, blocking, blockedBy, open, friends bool
	if err := st.QueryRowContext(ctx, to, from, to, to, from, to, to, from).Scan(&exists, &blocking, &blockedBy, &open, &friends); err != nil {
		return fmt.Errorf("can message: %w", err)
	}
	v := verdict(to, exists, blocking, blockedBy, open, friends)
	if cacheable(v) {
		r.cache.put(from, to, v, stamp, now)
	}
	return v
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

// Knows reports whether viewer may see user's profile: themselves, friends,
// users with a friend request between them, and users who share a conversation
// (1:1 or group). Anyone else would only be enumerating ids.
func (r *Relations) Knows(ctx context.Context, viewer, user int64) (bool, error) {
	if viewer == user {
		return true, nil
	}
	var ok bool
	err := r.db.QueryRowContext(ctx, `SELECT
		EXISTS(SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?)
		OR EXISTS(SELECT 1 FROM friend_requests WHERE (from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))
		OR EXISTS(SELECT 1 FROM conversation_members a JOIN conversation_members b ON b.user_id = ? AND b.conv_id = a.conv_id WHERE a.user_id = ?)`,
		viewer, user, viewer, user, user, viewer, user, viewer).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("knows: %w", err)
	}
	return ok, nil
}

// MayAddToGroups returns those of users whom actor may not add to a group: users
// who blocked actor, and users whose "groups" privacy (who may add me to groups)
// is nobody, or friends while actor is not one.
func (r *Relations) MayAddToGroups(ctx context.Context, actor int64, users []int64) ([]int64, error) {
	var refused []int64
	for start := 0; start < len(users); start += 1000 {
		chunk := users[start:min(start+1000, len(users))]
		args := []any{actor, actor}
		for _, u := range chunk {
			args = append(args, u)
		}
		rows, err := r.db.QueryContext(ctx, `SELECT u.id FROM users u LEFT JOIN user_privacy p ON p.user_id = u.id
			WHERE (EXISTS(SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?)
				OR COALESCE(p.add_to_groups, '`+DefaultGroups+`') = '`+Nobody+`'
				OR (COALESCE(p.add_to_groups, '`+DefaultGroups+`') = '`+Friends+`' AND NOT EXISTS(SELECT 1 FROM friendships f WHERE f.user_id = u.id AND f.friend_id = ?)))
			AND u.id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("may add to groups: %w", err)
		}
		for rows.Next() {
			var u int64
			if err := rows.Scan(&u); err != nil {
				rows.Close()
				return nil, err
			}
			refused = append(refused, u)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return refused, nil
}

// PresenceWatchers lists whom uid's presence changes reach: uid's friends, but
// none when uid's presence privacy is nobody, and not those uid blocked.
func (r *Relations) PresenceWatchers(ctx context.Context, uid int64) ([]int64, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT f.friend_id FROM friendships f
		WHERE f.user_id = ? AND COALESCE((SELECT presence FROM user_privacy WHERE user_id = ?), '`+DefaultPresence+`') <> '`+Nobody+`'
		AND NOT EXISTS(SELECT 1 FROM blocks b WHERE b.user_id = f.user_id AND b.blocked_id = f.friend_id)`, uid, uid)
	if err != nil {
		return nil, fmt.Errorf("presence watchers: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// PresenceVisible reports which of users let viewer see their presence: by their
// presence privacy (everyone; friends: viewer is one; nobody), never someone who
// blocked viewer; viewer always sees themselves.
func (r *Relations) PresenceVisible(ctx context.Context, viewer int64, users []int64) (map[int64]bool, error) {
	out := make(map[int64]bool, len(users))
	if len(users) == 0 {
		return out, nil
	}
	args := []any{viewer, viewer}
	for _, u := range users {
		args = append(args, u)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT u.id, COALESCE(p.presence, '`+DefaultPresence+`'),
			EXISTS(SELECT 1 FROM friendships f WHERE f.user_id = u.id AND f.friend_id = ?),
			EXISTS(SELECT 1 FROM blocks b WHERE b.user_id = u.id AND b.blocked_id = ?)
		FROM users u LEFT JOIN user_privacy p ON p.user_id = u.id
		WHERE u.id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(users)), ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("presence visible: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u int64
		var setting string
		var friends, blocked bool
		if err := rows.Scan(&u, &setting, &friends, &blocked); err != nil {
			return nil, err
		}
		out[u] = u == viewer || (!blocked && (setting == Everyone || (setting == Friends && friends)))
	}
	return out, rows.Err()
}
