package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/subject"
	"natter/shared/wire"
)

// Start runs the back office's audit of security events, until ctx ends: a
// durable consumer of IM_EVENTS shared by every worker hosting the domain writes
// an audit entry for each session revocation (logouts, kicks by a new login,
// bans, stolen refresh tokens), each connection kicked by the device limit, each
// account locked by failed logins, and each
// operator refused admin ops more than RefusalsAudited times in a minute.
//
// It also starts monitoring (monitoring.go): samples every SampleEvery and the
// alert rules evaluated on them.
func (s *Service) Start(ctx context.Context) error {
	if s.rdb != nil {
		go s.monitor(ctx)
	}
	if s.nc == nil {
		return nil
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.EventStream, jetstream.ConsumerConfig{
		// The whole of IM_EVENTS (a few events per user action, no messages), the
		// security ones picked by securityEvent: several filter subjects need
		// nats-server 2.10, and Debian's is 2.9.
		Durable:   "admin-audit",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: -1,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("audit consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := s.securityEvent(mctx, m.Subject(), m.Data()); err != nil {
			s.log.Warn().Err(err).Str("subject", m.Subject()).Msg("audit security event: will retry")
			_ = m.NakWithDelay(5 * time.Second)
			return
		}
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("audit consumer: %w", err)
	}
	context.AfterFunc(ctx, cc.Stop)
	return nil
}

// securityEvent audits one event; a malformed one is dropped (nil).
func (s *Service) securityEvent(ctx context.Context, subj string, data []byte) error {
	switch subj {
	case subject.EvtSessionRevoked:
		var ev wire.SessionRevoked
		if json.Unmarshal(data, &ev) != nil || ev.UserID <= 0 {
			return nil
		}
		return s.audit(ctx, record{actorKind: KindSystem, action: "session.revoked", targetKind: KindUser,
			targetID: strconv.FormatInt(ev.UserID, 10), detail: "session " + ev.SessionID, at: time.UnixMilli(ev.At)})
	case subject.EvtLoginLocked:
		var ev wire.LoginLocked
		if json.Unmarshal(data, &ev) != nil {
			return nil
		}
		return s.audit(ctx, record{actorKind: KindUser, actorID: ev.UserID, actorName: ev.Username, action: "user.login_locked",
			targetKind: KindUser, targetID: strconv.FormatInt(ev.UserID, 10), ip: ev.ClientIP, at: time.UnixMilli(ev.At),
			detail: fmt.Sprintf("%d failed logins: locked for %s", ev.Failures, time.Duration(ev.LockedMs)*time.Millisecond)})
	case subject.EvtDeviceKicked:
		var ev wire.DeviceKicked
		if json.Unmarshal(data, &ev) != nil || ev.UserID <= 0 {
			return nil
		}
		return s.audit(ctx, record{actorKind: KindSystem, action: "session.kicked", targetKind: KindUser,
			targetID: strconv.FormatInt(ev.UserID, 10), ip: ev.ClientIP, at: time.UnixMilli(ev.At),
			detail: fmt.Sprintf("connection %s closed: %s (device %s)", ev.ConnID, ev.Reason, ev.DeviceID)})
	case subject.EvtAdminRefused:
		var ev wire.AdminRefused
		if json.Unmarshal(data, &ev) != nil {
			return nil
		}
		return s.refusal(ctx, ev)
	}
	return nil
}

// refusal counts the admin ops refused to a caller in a one-minute window that
// starts at its first refusal, and audits the RefusalsAudited-th of a window
// (one entry per caller per window).
func (s *Service) refusal(ctx context.Context, ev wire.AdminRefused) error {
	key := "admin:refused:" + strconv.FormatInt(ev.UserID, 10) + ":" + ev.Role
	pipe := s.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("count refusal: %w", err)
	}
	if n.Val() != int64(s.cfg.RefusalsAudited) {
		return nil
	}
	kind := KindOperator
	if roleRank(ev.Role) == 0 {
		kind = KindUser
	}
	return s.audit(ctx, record{actorKind: kind, actorID: max(ev.UserID, 0), action: "admin.refused", targetKind: "op", targetID: ev.Op,
		ip: ev.ClientIP, at: time.UnixMilli(ev.At),
		detail: fmt.Sprintf("%d admin ops refused within a minute (role %q, %s), the last %s", n.Val(), ev.Role, ev.Code, ev.Op)})
}
