package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/subject"
	"natter/shared/wire"
)

// revocations are the sessions revoked (logout, ...) while access tokens issued
// to them may still be unexpired, so the edge refuses those tokens without a
// round trip. The account domain publishes im.evt.session.revoked into the
// IM_EVENTS stream; each edge replays the last access-token lifetime of them on
// start and follows new ones live. Open connections of a revoked session are
// closed separately, by the kick the account domain sends on delivery subjects.
type revocations struct {
	ttl   time.Duration // access-token lifetime
	mu    sync.RWMutex
	until map[string]time.Time // session id -> when its last token expires
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

// followRevocations feeds g.rev from the event stream until g.stop closes,
// retrying while the stream does not exist yet or NATS is away.
func (g *Gateway) followRevocations() {
	js, err := jetstream.New(g.nc)
	if err != nil {
		g.log.Error().Err(err).Msg("jetstream: session revocations not applied")
		return
	}
	warned := false
	for {
		cc, err := g.consumeRevocations(js)
		if err == nil {
			<-g.stop
			cc.Stop()
			return
		}
		if !warned { // once: the stream may just not exist yet
			g.log.Warn().Err(err).Msg("session revocations: retrying")
			warned = true
		}
		select {
		case <-g.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

func (g *Gateway) consumeRevocations(js jetstream.JetStream) (jetstream.ConsumeContext, error) {
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subject.EventStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", subject.EventStream, err)
	}
	start := time.Now().Add(-g.rev.ttl)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject.EvtSessionRevoked},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, fmt.Errorf("revocations consumer: %w", err)
	}
	return cons.Consume(func(m jetstream.Msg) {
		var ev wire.SessionRevoked
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			g.log.Warn().Err(err).Msg("bad session.revoked event")
			return
		}
		at := time.UnixMilli(ev.At)
		if ev.At == 0 {
			if md, err := m.Metadata(); err == nil {
				at = md.Timestamp
			}
		}
		g.rev.add(ev.SessionID, at, time.Now())
	})
}
