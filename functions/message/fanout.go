package message

import (
	"context"
	"database/sql"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"natter/shared/endpoint"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Fanout publishes push frames to the delivery subjects of a conversation's
// members. A frame is encoded once by the caller and published as is to every
// member. Group fan-out runs on background goroutines so that a send's reply does
// not wait for thousands of publishes; jobs are sharded by conversation, so the
// pushes of one conversation leave this process in seq order. Member lists are
// cached per conversation under the group's members_version, which the send path
// reads with the sender's standing: a membership change makes the next message
// reload the list, and no message costs a 5,000-row read otherwise.
type Fanout struct {
	db     *sql.DB
	nc     *nats.Conn
	log    zerolog.Logger
	shards []chan fanJob
	seed   maphash.Seed

	mu      sync.Mutex
	members map[string]memberList
}

type memberList struct {
	version int64
	users   []int64
}

// maxCachedLists bounds the member-list cache; past it the cache starts over.
const maxCachedLists = 10000

type fanJob struct {
	conv    string
	version int64
	frame   []byte
	from    Origin
}

// Origin is the connection a push comes from: it has the reply already, so the
// edge skips it. Only the publish to its user's subject carries the header that
// says so. The zero Origin skips nothing.
type Origin struct {
	User int64
	Conn string
}

// OriginOf is the connection that made the call c.
func OriginOf(c endpoint.Caller) Origin { return Origin{User: c.UserID, Conn: c.ConnID} }

// header returns the skip header for a publish to user, or nil.
func (o Origin) header(user int64) nats.Header {
	if o.Conn == "" || user != o.User {
		return nil
	}
	return nats.Header{wire.HeaderSkipConn: []string{o.Conn}}
}

// NewFanout starts workers goroutines that live until ctx ends.
func NewFanout(ctx context.Context, d *sql.DB, nc *nats.Conn, log zerolog.Logger, workers int) *Fanout {
	f := &Fanout{db: d, nc: nc, log: log, seed: maphash.MakeSeed(), members: map[string]memberList{}}
	for range max(workers, 1) {
		ch := make(chan fanJob, 1024)
		f.shards = append(f.shards, ch)
		go f.run(ctx, ch)
	}
	return f
}

func (f *Fanout) run(ctx context.Context, jobs <-chan fanJob) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := f.toConversation(jctx, j); err != nil {
				f.log.Warn().Err(err).Str("conv", j.conv).Msg("fan-out failed; members catch up by sync")
			}
			cancel()
		}
	}
}

// ToUsers publishes frame to each user's delivery subject now.
func (f *Fanout) ToUsers(users []int64, frame []byte, from Origin) {
	for _, u := range users {
		if err := f.nc.PublishMsg(&nats.Msg{Subject: subject.Deliver(u), Data: frame, Header: from.header(u)}); err != nil {
			// At most once by design: the recipient catches up by seq through sync.
			f.log.Warn().Err(err).Int64("to", u).Msg("push failed")
		}
	}
}

// ToConversation queues frame for every current member of the (group)
// conversation. version is the group's members_version as the caller read it, or
// -1 when unknown (the list is then read fresh). When the shard's queue is full it
// publishes inline, slowing the sender instead of dropping pushes.
func (f *Fanout) ToConversation(ctx context.Context, conv string, version int64, frame []byte, from Origin) {
	j := fanJob{conv: conv, version: version, frame: frame, from: from}
	shard := f.shards[maphash.String(f.seed, conv)%uint64(len(f.shards))]
	select {
	case shard <- j:
	default:
		if err := f.toConversation(ctx, j); err != nil {
			f.log.Warn().Err(err).Str("conv", conv).Msg("fan-out failed; members catch up by sync")
		}
	}
}

func (f *Fanout) toConversation(ctx context.Context, j fanJob) error {
	users, err := f.memberList(ctx, j.conv, j.version)
	if err != nil {
		return err
	}
	for _, u := range users {
		if err := f.nc.PublishMsg(&nats.Msg{Subject: subject.Deliver(u), Data: j.frame, Header: j.from.header(u)}); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	return nil
}

// memberList returns the conversation's members, from the cache when it holds
// this version.
func (f *Fanout) memberList(ctx context.Context, conv string, version int64) ([]int64, error) {
	if version >= 0 {
		f.mu.Lock()
		l, ok := f.members[conv]
		f.mu.Unlock()
		if ok && l.version == version {
			return l.users, nil
		}
	}
	rows, err := f.db.QueryContext(ctx, "SELECT user_id FROM conversation_members WHERE conv_id = ?", conv)
	if err != nil {
		return nil, fmt.Errorf("members of %s: %w", conv, err)
	}
	defer rows.Close()
	var users []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if version >= 0 {
		f.mu.Lock()
		if len(f.members) >= maxCachedLists {
			clear(f.members)
		}
		f.members[conv] = memberList{version: version, users: users}
		f.mu.Unlock()
	}
	return users, nil
}
