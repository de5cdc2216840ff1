// Package friend serves the social graph: friend requests, friendships and remarks,
// the blacklist, and privacy settings (who may add or message me). Relations
// answers the message domain's "may A message B" on the send path.
//
// Concurrency: every write touching a pair of users (request, respond, delete,
// block) runs in one transaction that first locks both users' rows in id order.
// That serialises all writes between the same two people — two users asking each
// other at the same instant end in one friendship — and keeps the friend and block
// caps exact. Unique keys stay as the backstop.
package friend

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"natter/functions/deliver"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Config is the friend domain's settings (env prefix FRIEND_ in the worker).
type Config struct {
	// MaxFriends caps each user's friends (checked on accept, for both sides), so
	// friend.list always returns the whole list.
	MaxFriends int `env:"MAX_FRIENDS" envDefault:"5000"`
	// MaxBlocks caps each user's blacklist, so block.list returns it whole.
	MaxBlocks int `env:"MAX_BLOCKS" envDefault:"5000"`
}

// Deps are what the domain needs; main wires them.
type Deps struct {
	DB      *sql.DB
	NC      *nats.Conn // events
	Deliver *deliver.Deliverer
	Config  Config
	// Relations, when set, is this worker's send-permission cache: changes here
	// forget its answers at once (other workers hear subject.EvtRelationsChanged).
	Relations *Relations
}

// Service implements the friend, block and privacy endpoints.
type Service struct {
	db      *sql.DB
	nc      *nats.Conn
	deliver *deliver.Deliverer
	rel     *Relations
	cfg     Config
	now     func() time.Time
}

// New returns the friend service, filling defaults for zero settings.
func New(d Deps) *Service {
	return &Service{db: d.DB, nc: d.NC, deliver: d.Deliver, rel: d.Relations, cfg: config.WithDefaults(d.Config), now: time.Now}
}

// Endpoints lists the domain's endpoints.
func (s *Service) Endpoints() []endpoint.Endpoint {
	return []endpoint.Endpoint{
		endpoint.Handle("friend.request", s.request),
		endpoint.Handle("friend.respond", s.respond),
		endpoint.Handle("friend.requests", s.requests),
		endpoint.Handle("friend.list", s.list),
		endpoint.Handle("friend.delete", s.delete),
		endpoint.Handle("friend.remark", s.remark),
		endpoint.Handle("block.add", s.blockAdd),
		endpoint.Handle("block.remove", s.blockRemove),
		endpoint.Handle("block.list", s.blockList),
		endpoint.Handle("account.privacy.get", s.privacyGet),
		endpoint.Handle("account.privacy.set", s.privacySet),
		endpoint.Handle("user.lookup", s.lookup),
	}
}

// lockPair locks the rows of users a and b (ascending id: no lock-order
// deadlocks) and returns the short profiles of those that exist.
func lockPair(ctx context.Context, tx *sql.Tx, a, b int64) (map[int64]User, error) {
	rows, err := tx.QueryContext(ctx, "SELECT id, username, nickname, avatar FROM users WHERE id IN (?, ?) ORDER BY id FOR UPDATE", a, b)
	if err != nil {
		return nil, fmt.Errorf("lock users: %w", err)
	}
	defer rows.Close()
	users := make(map[int64]User, 2)
	for rows.Next() {
		var u User
		if err := rows.Scan(&u.UserID, &u.Username, &u.Nickname, &u.Avatar); err != nil {
			return nil, fmt.Errorf("scan user: %w", err)
		}
		users[u.UserID] = u
	}
	return users, rows.Err()
}

// at returns the current time at the storage precision (DATETIME(3)).
func (s *Service) at() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// changed announces a committed change to what users may send each other:
// this worker's cache forgets them now, every worker's once the event arrives.
func (s *Service) changed(ctx context.Context, users ...int64) {
	if s.rel != nil {
		s.rel.Forget(users...)
	}
	s.publish(ctx, subject.EvtRelationsChanged, wire.RelationsChanged{Users: users})
}

func (s *Service) publish(ctx context.Context, subj string, data any) {
	b, err := json.Marshal(data)
	if err == nil {
		err = s.nc.Publish(subj, b)
	}
	if err != nil {
		logging.From(ctx).Warn().Err(err).Str("subject", subj).Msg("publish event")
	}
}
