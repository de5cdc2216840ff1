package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Consume creates (or finds) the durable consumer cc on stream, then passes each
// message to handle (on the consumer's goroutine: a handler that must not hold it up
// hands the message on) with at most pullMax messages pulled ahead, until ctx ends.
// A consumer lost meanwhile (the stream re-created, heartbeats missing) is created
// again every second until that works. It returns once the first creation succeeded
// or failed.
func Consume(ctx context.Context, nc *nats.Conn, stream string, cc jetstream.ConsumerConfig, pullMax int,
	handle func(jetstream.Msg), log zerolog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	create := func() (jetstream.Consumer, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return js.CreateOrUpdateConsumer(cctx, stream, cc)
	}
	cons, err := create()
	if err != nil {
		return fmt.Errorf("consumer %s: %w", cc.Durable, err)
	}
	go func() {
		for {
			lost := make(chan struct{}, 1)
			run, err := cons.Consume(handle, jetstream.PullMaxMessages(pullMax),
				jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
					if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrNoHeartbeat) {
						select {
						case lost <- struct{}{}:
						default:
						}
					}
				}))
			if err == nil {
				select {
				case <-ctx.Done():
					run.Stop()
					return
				case <-lost:
					run.Stop()
				}
			}
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				if cons, err = create(); err == nil {
					break
				}
				log.Warn().Err(err).Str("consumer", cc.Durable).Msg("consumer lost, creating it again")
			}
		}
	}()
	return nil
}
