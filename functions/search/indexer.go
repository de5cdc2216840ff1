package search

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/bus"
	"natter/shared/subject"
)

// Consumer is the durable consumer of message events that feeds the index.
const Consumer = "search"

// event is what the indexer reads of any message event (sent, edited,
// recalled): the key, and for a send its time (the lag metric); a send of
// several messages (wire.MessagesSent) lists them.
type event struct {
	ConvID   string  `json:"conv_id"`
	Seq      int64   `json:"seq"`
	SentAt   int64   `json:"sent_at"`
	Messages []event `json:"messages"`
}

// consume keeps the index in step with the message events: a durable pull
// consumer on IM_MESSAGES (every im.evt.message.* subject), shared by every
// worker that runs it. Events are taken in batches (what arrives within
// Config.Linger, up to Config.Batch; Config.Writers batches at a time), the
// batch's messages synced in one transaction per 500 (Index.Sync reads them
// from the messages table), then acknowledged. A batch that fails is
// negatively acknowledged and comes again; an indexer that was down resumes
// where its acknowledgements stopped.
//
// It runs until ctx ends and returns once the consumer is created (or failed to be).
func (s *Service) consume(ctx context.Context) error {
	cc := jetstream.ConsumerConfig{
		Durable: Consumer, FilterSubject: subject.EventPrefix + "message.>",
		// A new consumer starts at the stream's first event: a fresh deployment
		// indexes what the stream still holds (reindex covers the rest).
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy, AckWait: s.cfg.AckWait,
		MaxAckPending: 4 * s.cfg.Batch, MaxDeliver: -1,
	}
	in := make(chan jetstream.Msg, 4*s.cfg.Batch)
	for range max(s.cfg.Writers, 1) {
		go s.batches(ctx, in)
	}
	err := bus.Consume(ctx, s.nc, subject.MessageStream, cc, 2*s.cfg.Batch, func(m jetstream.Msg) {
		select {
		case in <- m:
		case <-ctx.Done():
		}
	}, s.log)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

// batches takes what the consumer delivered, a batch at a time, until ctx ends:
// a batch is what arrives within Linger of its first event, up to Batch. Fewer,
// larger transactions cost the database far less than one per event, and the
// linger is a small part of the lag.
func (s *Service) batches(ctx context.Context, in <-chan jetstream.Msg) {
	batch := make([]jetstream.Msg, 0, s.cfg.Batch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-in:
			batch = append(batch, m)
		}
		linger.Reset(s.cfg.Linger)
	more:
		for len(batch) < s.cfg.Batch {
			select {
			case m := <-in:
				batch = append(batch, m)
			case <-linger.C:
				break more
			case <-ctx.Done():
				return
			}
		}
		linger.Stop()
		s.handle(ctx, batch)
	}
}

// handle indexes one batch and acknowledges it; on failure it asks for the
// batch again after Backoff (unless the indexer is stopping: then the events
// come again after AckWait).
func (s *Service) handle(ctx context.Context, batch []jetstream.Msg) {
	keys := make([]Key, 0, len(batch))
	sent := make([]int64, 0, len(batch))
	for _, m := range batch {
		var ev event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			s.log.Error().Err(err).Str("subject", m.Subject()).Msg("search: undecodable message event, skipped")
			continue
		}
		evs := ev.Messages
		if evs == nil {
			evs = []event{ev}
		}
		for _, ev := range evs {
			if ev.ConvID == "" || ev.Seq <= 0 {
				s.log.Error().Str("subject", m.Subject()).Msg("search: message event without conversation or seq, skipped")
				continue
			}
			keys = append(keys, Key{ev.ConvID, ev.Seq})
			if m.Subject() == subject.EvtMessageSent && ev.SentAt > 0 {
				sent = append(sent, ev.SentAt)
			}
		}
	}
	err := s.index.Sync(ctx, keys)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn().Err(err).Int("events", len(batch)).Msg("search: batch will be redelivered")
		s.m.failed.Add(float64(len(batch)))
		for _, m := range batch {
			_ = m.NakWithDelay(s.cfg.Backoff)
		}
		return
	}
	now := time.Now()
	for _, at := range sent {
		s.m.lag.Observe(now.Sub(time.UnixMilli(at)).Seconds())
	}
	s.m.indexed.Add(float64(len(keys)))
	for _, m := range batch {
		_ = m.Ack()
	}
}

// watchClose cancels ctx's child when nc closes (a worker killed: its
// unacknowledged events go to another worker after AckWait).
func watchClose(ctx context.Context, nc *nats.Conn) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	closed := nc.StatusChanged(nats.CLOSED)
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
		case <-closed:
		}
	}()
	if nc.IsClosed() {
		cancel()
	}
	return ctx, cancel
}
