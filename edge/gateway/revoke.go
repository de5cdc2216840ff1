package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/subject"
	"natter/shared/wire"
)

// revocations are the sessions revoked (logout, ...) while access tokens issued
// to them may still be unexpired, so the edge refuses those tokens without a
// round trip. The account domain publishes im.evt.session.revoked into the
// IM_EVENTS stream; each edge replays the last access-token lifetime of them on
// start and follows new ones live, and is not ready while it cannot (below).
// Open connections of a revoked session are closed separately, by the kick the
// account domain sends on delivery subjects.
type revocations struct {
	ttl   time.Duration // access-token lifetime
	mu    sync.RWMutex
	until map[string]time.Time // session id -> when its last token expires
	// following is set while the edge follows the stream and has applied what
	// it held when the consumer started: only then is the edge ready.
	following atomic.Bool
}

func newRevocations(ttl time.Duration) *revocations {
	return &revocations{ttl: ttl, until: map[string]time.Time{}}
}

// add records that session sid was revoked at at; tokens issued before then
// expire by at + ttl, after which the entry is useless and dropped.
func (r *revocations) add(sid string, at, now time.Time) {
	until := at.Add(r.ttl)
	if sid == "" || !until.After(now) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	maps.DeleteFunc(r.until, func(_ string, u time.Time) bool { return !u.After(now) }) // few: logouts of one TTL
	r.until[sid] = until
}

func (r *revocations) revoked(sid string, now time.Time) bool {
	r.mu.RLock()
	u, ok := r.until[sid]
	r.mu.RUnlock()
	return ok && now.Before(u)
}

// revCheckEvery is how often a following edge asks whether IM_EVENTS is still the
// stream it follows. Its consumer fails at once when the stream is deleted, and
// the stream is checked after each NATS reconnect (a stream replaced meanwhile,
// which the consumer survives); this catches whatever else might replace it.
const revCheckEvery = 30 * time.Second

// followRevocations feeds g.rev from the event stream until g.stop closes. While
// it cannot vouch for what it applies (no stream yet, the stream deleted or
// replaced, NATS away) the edge is not ready; it retries each second and, once
// the stream is back, replays the last access-token lifetime from it again.
// Revocations learnt before a loss stay applied.
func (g *Gateway) followRevocations() {
	js, err := jetstream.New(g.nc)
	if err != nil {
		g.log.Error().Err(err).Msg("jetstream: session revocations not applied")
		return
	}
	reconnected := g.nc.StatusChanged(nats.CONNECTED)
	defer g.nc.RemoveStatusListener(reconnected)
	outage := false // logged, once per outage
	for {
		followed, err := g.followOnce(js, reconnected)
		g.rev.following.Store(false)
		if err == nil {
			return
		}
		if followed || !outage {
			g.log.Warn().Err(err).Msg("session revocations: not following " + subject.EventStream + "; not ready until it does")
			outage = true
		}
		select {
		case <-g.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// errStreamReplaced: IM_EVENTS is not the stream the consumer was made on.
var errStreamReplaced = errors.New("the stream was deleted and created again")

// followOnce makes an ordered consumer replaying the last access-token lifetime
// of revocations and applies them; it sets g.rev.following (and followed) once
// it has applied what the stream held when it started. It returns a nil error
// when g.stop closes, and an error once it can no longer vouch for the
// revocations: the consumer failed (the stream was deleted, heartbeats
// stopped), or the stream is gone or new (checked every revCheckEvery and after
// NATS reconnects).
func (g *Gateway) followOnce(js jetstream.JetStream, reconnected <-chan nats.Status) (followed bool, err error) {
	for len(reconnected) > 0 { // the new consumer starts after those
		<-reconnected
	}
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subject.EventStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", subject.EventStream, err)
	}
	created := stream.CachedInfo().Created
	start := time.Now().Add(-g.rev.ttl)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject.EvtSessionRevoked},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		// Its own recovery (after a reconnect, say) resumes after the last
		// sequence it saw, which skips the first events of a re-created stream
		// (the checks below catch that), and would retry silently for ever while
		// the stream is missing: one attempt, then its error ends this follow.
		MaxResetAttempts: 1,
	})
	if err != nil {
		return false, fmt.Errorf("revocations consumer: %w", err)
	}
	failed := make(chan error, 1)
	caughtUp := make(chan struct{})
	var once sync.Once
	if cons.CachedInfo().NumPending == 0 {
		once.Do(func() { close(caughtUp) })
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		g.applyRevocation(m, md, err)
		if err == nil && md.NumPending == 0 {
			once.Do(func() { close(caughtUp) })
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		select { // the loop below stops the consumer: not here, under its lock
		case failed <- err:
		default:
		}
	}))
	if err != nil {
		return false, fmt.Errorf("revocations consumer: %w", err)
	}
	defer cc.Stop()
	check := func() error {
		ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
		defer cancel()
		info, err := stream.Info(ctx)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return fmt.Errorf("stream %s: %w", subject.EventStream, err)
		case err != nil: // no answer is not an answer: ask again later
			g.log.Debug().Err(err).Msg("session revocations: stream check")
			return nil
		case !info.Created.Equal(created):
			return errStreamReplaced
		}
		return nil
	}
	tick := time.NewTicker(revCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-g.stop:
			return followed, nil
		case <-caughtUp:
			caughtUp, followed = nil, true
			g.rev.following.Store(true)
			g.log.Info().Msg("session revocations: following " + subject.EventStream)
		case err := <-failed:
			return followed, fmt.Errorf("revocations consumer: %w", err)
		case <-reconnected:
			if err := check(); err != nil {
				return followed, err
			}
		case <-tick.C:
			if err := check(); err != nil {
				return followed, err
			}
		}
	}
}

// applyRevocation records the revocation event m carries.
func (g *Gateway) applyRevocation(m jetstream.Msg, md *jetstream.MsgMetadata, mdErr error) {
	var ev wire.SessionRevoked
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		g.log.Warn().Err(err).Msg("bad session.revoked event")
		return
	}
	at := time.UnixMilli(ev.At)
	if ev.At == 0 && mdErr == nil {
		at = md.Timestamp
	}
	g.rev.add(ev.SessionID, at, time.Now())
}
