// Package msgevent publishes what happens to messages (sent, edited, recalled) on
// JetStream, stream IM_MESSAGES, for the services that must see every message:
// offline push and search indexing.
//
// The messages stored by one transaction travel as one event (Sent).
// Publishing never holds up a send: the message writer hands events over to a
// bounded buffer and a goroutine publishes them asynchronously, in batches, and
// retries what JetStream did not acknowledge. Each event carries a message id
// (Nats-Msg-Id: "sent:<conv>:<seq>", ...), so a retried publish is stored once
// (the stream's duplicate window), as is a retried send of a message that
// travelled alone. What is lost:
// events still buffered when a worker dies, and events dropped while the buffer is
// full (JetStream too slow or away for long); both are counted, and consumers that
// must not miss one (search) rebuild from the database.
package msgevent

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/functions/msgstore"
	"natter/shared/config"
	"natter/shared/metrics"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Config tunes the publisher (env prefix MSGEVENT_ in the worker).
type Config struct {
	// Buffer is how many events may wait to be published; past it, events are
	// dropped and counted rather than slowing sends.
	Buffer int `env:"BUFFER" envDefault:"65536"`
	// Batch is how many events are published before their acknowledgements are
	// awaited.
	Batch int `env:"BATCH" envDefault:"256"`
	// RetryFor is how long events JetStream does not acknowledge are published
	// again before they count as failed (lost).
	RetryFor time.Duration `env:"RETRY_FOR" envDefault:"1m"`
}

// Publisher publishes message events.
type Publisher struct {
	js  jetstream.JetStream
	ch  chan pending
	cfg Config
	log zerolog.Logger
	m   *eventMetrics
}

type eventMetrics struct {
	published, dropped, failed *prometheus.CounterVec
}

// New starts the publisher; it stops when ctx ends.
func New(ctx context.Context, nc *nats.Conn, log zerolog.Logger, reg prometheus.Registerer, cfg Config) (*Publisher, error) {
	cfg = config.WithDefaults(cfg)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Batch))
	if err != nil {
		return nil, err
	}
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "natter", Subsystem: "msgevent", Name: name, Help: help}, []string{"subject"})
	}
	m := &eventMetrics{
		published: vec("published_total", "Message events JetStream acknowledged."),
		dropped:   vec("dropped_total", "Message events dropped because the buffer was full."),
		failed:    vec("failed_total", "Message events not acknowledged after retries."),
	}
	for _, c := range []**prometheus.CounterVec{&m.published, &m.dropped, &m.failed} {
		if *c, err = metrics.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	p := &Publisher{js: js, ch: make(chan pending, cfg.Buffer), cfg: cfg, log: log, m: m}
	go p.run(ctx)
	return p, nil
}

// maxBatchBytes bounds the messages' content in one batch event, well under
// NATS's default 1 MiB payload: a transaction of 128 long texts becomes several.
const maxBatchBytes = 256 << 10

// Sent publishes the messages of one transaction (msgstore calls it after each
// commit): a lone message as a MessageSent with the id "sent:<conv>:<seq>",
// several as one MessagesSent per maxBatchBytes of content, with the id of its
// first message and its count ("sent:<conv>:<seq>+<n>"). One event per
// transaction instead of per message divides JetStream's work (the publish,
// its acknowledgement, and each consumer's delivery and ack) by the batch size.
// A retried send that publishes its message again alone is then not
// deduplicated against the batch: consumers take a message twice in stride
// (push claims each push, the index is idempotent).
func (p *Publisher) Sent(batch []msgstore.Stored) {
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+len(batch[n].Message.Content) <= maxBatchBytes) {
			size += len(batch[n].Message.Content)
			n++
		}
		chunk := batch[:n]
		batch = batch[n:]
		first := chunk[0].Message
		id := "sent:" + first.ConvID + ":" + strconv.FormatInt(first.Seq, 10)
		if len(chunk) == 1 {
			p.emit(subject.EvtMessageSent, id, sentEvent(chunk[0]))
			continue
		}
		ev := wire.MessagesSent{Messages: make([]wire.MessageSent, len(chunk))}
		for i, st := range chunk {
			ev.Messages[i] = sentEvent(st)
		}
		p.emit(subject.EvtMessageSent, id+"+"+strconv.Itoa(len(chunk)), ev)
	}
}

// sentEvent copies a stored message into its event (the writer goes on with it).
func sentEvent(st msgstore.Stored) wire.MessageSent {
	return wire.MessageSent{Message: *st.Message, Mentions: st.Mentions.Users, MentionAll: st.Mentions.All}
}

// Edited publishes a message's new version.
func (p *Publisher) Edited(m wire.Message) {
	p.emit(subject.EvtMessageEdited, "edited:"+m.ConvID+":"+strconv.FormatInt(m.Seq, 10)+":"+strconv.Itoa(m.Edits), wire.MessageEdited{Message: m})
}

// Recalled publishes a recall.
func (p *Publisher) Recalled(ev wire.MessageRecalled) {
	p.emit(subject.EvtMessageRecalled, "recalled:"+ev.ConvID+":"+strconv.FormatInt(ev.Seq, 10), ev)
}

// pending is an event handed over, encoded on the publisher's goroutine (the
// message writer's time is the send path's).
type pending struct {
	subject, id string
	v           any
}

func (p *Publisher) emit(subj, id string, v any) {
	select {
	case p.ch <- pending{subj, id, v}:
	default:
		p.m.dropped.WithLabelValues(subj).Inc()
	}
}

func (p *Publisher) encode(e pending) *nats.Msg {
	data, err := json.Marshal(e.v)
	if err != nil {
		p.log.Error().Err(err).Str("subject", e.subject).Msg("encode message event")
		return nil
	}
	return &nats.Msg{Subject: e.subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{e.id}}}
}

// run publishes what the buffer holds, a batch at a time, each batch awaited
// before the next, what failed tried again for up to RetryFor.
func (p *Publisher) run(ctx context.Context) {
	batch := make([]*nats.Msg, 0, p.cfg.Batch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case e := <-p.ch:
			if msg := p.encode(e); msg != nil {
				batch = append(batch, msg)
			}
		}
		for len(batch) < p.cfg.Batch {
			select {
			case e := <-p.ch:
				if msg := p.encode(e); msg != nil {
					batch = append(batch, msg)
				}
				continue
			default:
			}
			break
		}
		// Retry what JetStream did not acknowledge until it does, for up to RetryFor:
		// a cluster electing a stream leader after a node died takes seconds.
		// Meanwhile new events wait in the buffer.
		giveUp := time.Now().Add(p.cfg.RetryFor)
		for wait := 250 * time.Millisecond; len(batch) > 0; wait = min(2*wait, 2*time.Second) {
			batch = p.publish(ctx, batch, !time.Now().Before(giveUp))
			if len(batch) == 0 || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
}

// publish sends batch and returns what was not acknowledged (nothing when last:
// that is counted as failed).
func (p *Publisher) publish(ctx context.Context, batch []*nats.Msg, last bool) []*nats.Msg {
	futures := make([]jetstream.PubAckFuture, len(batch))
	var retry []*nats.Msg
	for i, msg := range batch {
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			retry = append(retry, msg)
			continue
		}
		futures[i] = f
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	expired := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		if expired { // a retry that was acknowledged meanwhile is stored once (its id)
			retry = append(retry, batch[i])
			continue
		}
		select {
		case <-f.Ok():
			p.m.published.WithLabelValues(batch[i].Subject).Inc()
		case err := <-f.Err():
			p.log.Debug().Err(err).Str("subject", batch[i].Subject).Msg("message event not acknowledged")
			retry = append(retry, batch[i])
		case <-timeout.C:
			expired = true
			retry = append(retry, batch[i])
		case <-ctx.Done():
			return nil
		}
	}
	if last {
		for _, msg := range retry {
			p.m.failed.WithLabelValues(msg.Subject).Inc()
		}
		if len(retry) > 0 {
			p.log.Warn().Int("events", len(retry)).Msg("message events lost: JetStream did not acknowledge them")
		}
		return nil
	}
	return retry
}
