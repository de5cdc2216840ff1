package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/subject"
	"natter/shared/wire"
)

// DeadLetter is a push that failed after its retries, on stream IM_PUSH_DEAD
// (subject im.evt.push.dead.<provider>): the notification (device and token
// included), the last error, how many calls were made, when, and the message
// event it came from (absent for the push that ends a collapse window).
type DeadLetter struct {
	Notification Notification      `json:"notification"`
	Error        string            `json:"error"`
	Attempts     int               `json:"attempts"`
	At           int64             `json:"at"` // unix ms
	Replays      int               `json:"replays,omitempty"`
	Event        *wire.MessageSent `json:"event,omitempty"`
}

// ReplayConsumer is the durable consumer of IM_PUSH_DEAD whose acknowledgements
// mark the dead letters already replayed.
const ReplayConsumer = "push-replay"

func (s *Service) deadLetter(ctx context.Context, d DeadLetter) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := js.Publish(ctx, subject.PushDead(d.Notification.Provider), b); err != nil {
		return fmt.Errorf("push dead letter: %w", err)
	}
	s.log.Warn().Str("provider", d.Notification.Provider).Int64("user", d.Notification.UserID).Str("device", d.Notification.DeviceID).
		Str("conv", d.Notification.ConvID).Int64("seq", d.Notification.Seq).Str("error", d.Error).Msg("push dead letter")
	return nil
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Sent         int `json:"sent"`
	Unregistered int `json:"unregistered"` // the token was no longer valid: removed
	Failed       int `json:"failed"`       // failed again: a new dead letter each
}

// Replay sends again every dead letter no replay has taken yet (the durable
// consumer push-replay remembers), through the provider named in each, with the
// usual attempts; what fails again becomes a new dead letter (Replays counted).
// It returns when none is left. Replayed pushes bypass the duplicate claims: an
// operator asked for them.
func (s *Service) Replay(ctx context.Context) (ReplayResult, error) {
	var res ReplayResult
	js, err := jetstream.New(s.nc)
	if err != nil {
		return res, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, subject.PushDeadStream, jetstream.ConsumerConfig{
		Durable: ReplayConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return res, fmt.Errorf("push replay consumer: %w", err)
	}
	for {
		batch, err := cons.FetchNoWait(64)
		if err != nil {
			return res, fmt.Errorf("push replay: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if err := s.replayOne(ctx, m, &res); err != nil {
				return res, err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return res, fmt.Errorf("push replay: %w", err)
		}
		if got == 0 {
			return res, nil
		}
	}
}

func (s *Service) replayOne(ctx context.Context, m jetstream.Msg, res *ReplayResult) error {
	var d DeadLetter
	if err := json.Unmarshal(m.Data(), &d); err != nil {
		s.log.Error().Err(err).Msg("push replay: undecodable dead letter, skipped")
		return m.Ack()
	}
	p := s.providers[d.Notification.Provider]
	if p == nil {
		p = s.byPlatform[d.Notification.Platform]
	}
	var err error
	attempts := 0
	if p == nil {
		err = fmt.Errorf("no provider %q configured", d.Notification.Provider)
	} else {
		attempts, err = s.attempt(ctx, p, d.Notification)
	}
	switch {
	case err == nil:
		res.Sent++
	case errors.Is(err, ErrUnregistered):
		res.Unregistered++
		if err := s.removeToken(ctx, d.Notification); err != nil {
			return err
		}
	default:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.Failed++
		d.Error, d.Attempts, d.At, d.Replays = err.Error(), attempts, s.now().UnixMilli(), d.Replays+1
		if err := s.deadLetter(ctx, d); err != nil {
			return err
		}
	}
	return m.DoubleAck(ctx)
}
