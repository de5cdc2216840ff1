package group

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"natter/functions/perm"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/subject"
	"natter/shared/wire"
)

// PurgeResp says what became of a deleted user's groups.
type PurgeResp struct {
	Left      int `json:"left"`
	Dismissed int `json:"dismissed"` // groups the user owned alone
}

// purgeMember takes a user out of each of their groups, when their account is
// deleted (WatchDeletions). An owner hands the group to the longest-serving admin,
// else the longest-serving member, before leaving; a group with nobody else is
// dismissed. Each step is an ordinary change with its system message, so members
// see "owner transferred" and "left" as they would otherwise. Idempotent: a retry
// finds fewer groups.
func (s *Service) purgeMember(ctx context.Context, user int64) (PurgeResp, error) {
	r := struct{ UserID int64 }{user}
	rows, err := s.db.QueryContext(ctx, "SELECT group_id FROM group_members WHERE user_id = ? ORDER BY group_id", r.UserID)
	if err != nil {
		return PurgeResp{}, fmt.Errorf("groups of %d: %w", r.UserID, err)
	}
	var groups []int64
	for rows.Next() {
		var g int64
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return PurgeResp{}, err
		}
		groups = append(groups, g)
	}
	if err := rows.Close(); err != nil {
		return PurgeResp{}, err
	}
	var out PurgeResp
	as := endpoint.Caller{UserID: r.UserID} // system messages are the user's doing
	for _, g := range groups {
		dismissed := false
		// Hand the group on first: an owner may not leave.
		err := s.change(ctx, as, g, func(tx *sql.Tx) (*SystemEvent, error) {
			grp, err := lockGroup(ctx, tx, g)
			if err != nil {
				return nil, err
			}
			role, ok, err := roleOf(ctx, tx, g, r.UserID)
			if err != nil || !ok || role != perm.Owner || grp.dismissed {
				return nil, err
			}
			var heir int64
			err = tx.QueryRowContext(ctx, `SELECT user_id FROM group_members WHERE group_id = ? AND user_id <> ?
				ORDER BY role DESC, joined_at, user_id LIMIT 1`, g, r.UserID).Scan(&heir)
			if errors.Is(err, sql.ErrNoRows) {
				dismissed = true
				if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET dismissed_at = ? WHERE id = ?", s.now(), g); err != nil {
					return nil, err
				}
				return &SystemEvent{Event: EvtDismissed, Actor: r.UserID}, nil
			}
			if err != nil {
				return nil, err
			}
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{"UPDATE group_members SET role = ?, muted_until = NULL WHERE group_id = ? AND user_id = ?", []any{perm.Owner, g, heir}},
				{"UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?", []any{perm.Admin, g, r.UserID}},
				{"UPDATE chat_groups SET owner_id = ? WHERE id = ?", []any{heir, g}},
			} {
				if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
					return nil, err
				}
			}
			return &SystemEvent{Event: EvtTransferred, Actor: r.UserID, Users: []int64{heir}}, nil
		})
		if err != nil && !errors.Is(err, errNoGroup) {
			return out, err
		}
		if dismissed {
			out.Dismissed++
		}
		err = s.change(ctx, as, g, func(tx *sql.Tx) (*SystemEvent, error) {
			grp, err := lockGroup(ctx, tx, g)
			if err != nil {
				return nil, err
			}
			if removed, err := removeMember(ctx, tx, g, r.UserID); err != nil || !removed || grp.dismissed {
				return nil, err
			}
			return &SystemEvent{Event: EvtLeft, Actor: r.UserID, Users: []int64{r.UserID}}, nil
		})
		var ie *imerr.Error
		if err != nil && !(errors.As(err, &ie) && ie.Code == imerr.NotFound) {
			return out, err
		}
		out.Left++
	}
	return out, nil
}

// WatchDeletions takes deleted accounts out of their groups: a durable consumer of
// im.evt.account.deleted (IM_EVENTS), shared by every worker hosting the group
// domain, acknowledging an event once the user is out of every group (a failure
// is retried; purgeMember is idempotent). It runs until ctx ends.
func (s *Service) WatchDeletions(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.EventStream, jetstream.ConsumerConfig{
		Durable: "group-account-deleted", FilterSubject: subject.EvtAccountDeleted,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, MaxDeliver: -1,
	})
	if err != nil {
		return fmt.Errorf("account deletions consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev wire.AccountDeleted
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.UserID <= 0 {
			_ = m.Term() // not an event anyone can act on
			return
		}
		mctx, cancel := context.WithTimeout(ctx, 50*time.Second)
		defer cancel()
		if _, err := s.purgeMember(mctx, ev.UserID); err != nil {
			logging.From(ctx).Warn().Err(err).Int64("user", ev.UserID).Msg("deleted account's groups: will retry")
			_ = m.NakWithDelay(retryDelay(m))
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("account deletions: %w", err)
	}
	context.AfterFunc(ctx, cc.Stop)
	return nil
}

// retryDelay spaces a failed event's retries: 1 s, 5 s, then every 30 s. (A
// consumer BackOff list would do it, but servers before 2.10 refuse one with
// unlimited deliveries.)
func retryDelay(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := m.Metadata(); err == nil {
		n = md.NumDelivered
	}
	switch {
	case n <= 1:
		return time.Second
	case n == 2:
		return 5 * time.Second
	}
	return 30 * time.Second
}
