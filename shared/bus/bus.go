// Package bus connects to NATS and declares the JetStream streams natter needs.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/shared/config"
	"natter/shared/subject"
)

// InboxPrefix is where the replies to user's requests arrive: _INBOX.<user>.
// nats-config/accounts.conf lets each user subscribe under its own prefix only,
// so that no user reads the replies another one waits for (a login's tokens).
func InboxPrefix(user string) string { return "_INBOX." + user }

// user is the NATS user c connects as: NATS_USER, or the one in the URL.
func user(c config.NATS) string {
	if c.User != "" {
		return c.User
	}
	first, _, _ := strings.Cut(c.URL, ",")
	if u, err := url.Parse(strings.TrimSpace(first)); err == nil && u.User != nil {
		return u.User.Username()
	}
	return ""
}

// Connect dials NATS with reconnects forever (a worker or edge without NATS is
// useless, and NATS restarts must not need a process restart). A connection as a
// user takes that user's inbox prefix (InboxPrefix).
func Connect(c config.NATS, name string, log zerolog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn().Err(err).Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrl()).Msg("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats async error")
		}),
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Pass))
	}
	if u := user(c); u != "" {
		opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(u)))
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", c.URL, err)
	}
	return nc, nil
}

// OnReconnect adds f to what runs each time nc reconnects, after the handlers set
// before it. For state kept fresh by core NATS events, whose events published
// during the outage are lost: f drops it. Call it while wiring, before traffic.
func OnReconnect(nc *nats.Conn, f func()) {
	prev := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(c *nats.Conn) {
		if prev != nil {
			prev(c)
		}
		f()
	})
}

// MessageStreamBytes bounds IM_MESSAGES on disk, within nats-config's 4 GB file
// store with room for IM_EVENTS: about 3 hours at 100 KiB/s of message events.
// Its consumers follow it within seconds; a rebuild starts from the database.
const MessageStreamBytes = 1 << 30

// PushDeadStreamBytes bounds IM_PUSH_DEAD, the offline pushes that failed after
// their retries: operators inspect and replay them (functions push-replay).
const PushDeadStreamBytes = 256 << 20

// EnsureStreams creates or updates the streams of subject.Streams. IM_EVENTS
// keeps a week of events; IM_MESSAGES keeps a week too but at most
// MessageStreamBytes, oldest dropped first: its consumers (push, search) follow it
// closely, and the database is the truth a rebuild starts from. IM_PUSH_DEAD
// keeps dead letters 30 days, at most PushDeadStreamBytes. IM_EVENTS goes
// first: a store from before IM_MESSAGES has it capturing all of im.evt.>.
func EnsureStreams(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	r := Replicas(nc)
	for _, sc := range []jetstream.StreamConfig{
		{Name: subject.EventStream, Subjects: subject.Streams[subject.EventStream], Storage: jetstream.FileStorage,
			MaxAge: 7 * 24 * time.Hour, Retention: jetstream.LimitsPolicy},
		{Name: subject.MessageStream, Subjects: subject.Streams[subject.MessageStream], Storage: jetstream.FileStorage,
			MaxAge: 7 * 24 * time.Hour, MaxBytes: MessageStreamBytes, Discard: jetstream.DiscardOld, Retention: jetstream.LimitsPolicy,
			Duplicates: 10 * time.Minute},
		{Name: subject.PushDeadStream, Subjects: subject.Streams[subject.PushDeadStream], Storage: jetstream.FileStorage,
			MaxAge: 30 * 24 * time.Hour, MaxBytes: PushDeadStreamBytes, Discard: jetstream.DiscardOld, Retention: jetstream.LimitsPolicy},
	} {
		sc.Replicas = r
		if err := ensureStream(ctx, js, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// ensureStream creates or updates one stream. On a cluster this is a Raft
// proposal that can outlast the API's default wait while a leader is elected or
// several workers start at once, so a timed-out attempt is retried (the call is
// idempotent) for up to a minute, or until ctx ends.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	deadline := time.Now().Add(time.Minute)
	for {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := js.CreateOrUpdateStream(actx, sc)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Replicas is how many copies natter's streams and buckets keep: 3 on a cluster of
// three or more servers (so one node can die without losing an event), else as many
// as there are servers, and 1 on a single server. The count comes from the server
// list the connection learnt at connect (the configured URLs and the cluster's
// gossiped client URLs), so nothing assumes a single node and no setting is needed.
func Replicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	return max(1, min(3, len(nc.Servers())))
}

// KeepStreams calls EnsureStreams every interval until ctx ends, so that a stream
// someone deleted comes back (an edge stays not ready without IM_EVENTS).
func KeepStreams(ctx context.Context, nc *nats.Conn, interval time.Duration, log zerolog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := EnsureStreams(cctx, nc); err != nil && ctx.Err() == nil {
				log.Warn().Err(err).Msg("ensure streams")
			}
			cancel()
		}
	}
}
