package push

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"natter/shared/bus"
	"natter/shared/convid"
	"natter/shared/subject"
	"natter/shared/wire"
)

// Durable consumer names.
const (
	MessageConsumer = "push"        // IM_MESSAGES, im.evt.message.sent
	TokenConsumer   = "push-tokens" // IM_EVENTS, im.evt.session.revoked
)

// consumeMessages runs the durable consumer of message events. A new consumer
// starts at new events (deploying push does not push a week of history); an
// existing one resumes where its acknowledgements stopped.
func (s *Service) consumeMessages(ctx context.Context) error {
	return s.supervise(ctx, subject.MessageStream, jetstream.ConsumerConfig{
		Durable: MessageConsumer, FilterSubject: subject.EvtMessageSent, DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.cfg.AckWait, MaxAckPending: s.cfg.MaxAckPending, MaxDeliver: -1,
	}, s.handleMessage)
}

// consumeRevocations removes the push tokens of every session that ends.
func (s *Service) consumeRevocations(ctx context.Context) error {
	return s.supervise(ctx, subject.EventStream, jetstream.ConsumerConfig{
		Durable: TokenConsumer, FilterSubject: subject.EvtSessionRevoked, DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.cfg.AckWait, MaxAckPending: s.cfg.MaxAckPending, MaxDeliver: -1,
	}, s.handleRevoked)
}

// supervise creates (or finds) the durable consumer cc on stream, then hands
// each message to handle on a goroutine of its own (the consumer's
// MaxAckPending bounds how many) until ctx ends. A consumer lost meanwhile (the
// stream re-created, heartbeats missing) is created again, every second until
// that works.
func (s *Service) supervise(ctx context.Context, stream string, cc jetstream.ConsumerConfig, handle func(context.Context, jetstream.Msg)) error {
	if err := bus.Consume(ctx, s.nc, stream, cc, cc.MaxAckPending, func(m jetstream.Msg) { go handle(ctx, m) }, s.log); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	return nil
}

// handleMessage pushes the messages of one event (one, or several stored in one
// transaction) and acknowledges it once every recipient's push is sent, refused
// for good (token removed) or dead-lettered. A failure before that (database,
// Redis) asks JetStream to redeliver it: the claims keep the pushes already sent
// from going twice. A worker stopping (ctx) leaves it unacknowledged, for
// another worker after AckWait.
func (s *Service) handleMessage(ctx context.Context, m jetstream.Msg) {
	evs, err := wire.DecodeSent(m.Data())
	if err != nil {
		s.log.Error().Err(err).Msg("push: undecodable message event")
		_ = m.Term()
		return
	}
	stop := keepAlive(ctx, m, s.cfg.AckWait)
	err = s.processAll(ctx, evs)
	stop()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn().Err(err).Str("conv", evs[0].ConvID).Int64("seq", evs[0].Seq).Int("messages", len(evs)).Msg("push: event will be redelivered")
		_ = m.NakWithDelay(s.cfg.Backoff)
		return
	}
	// A plain ack, not one the server confirms: should it be lost, the event
	// comes again and the claims keep its pushes from going twice, while
	// waiting for a confirmation would cost a round trip to NATS per event.
	if err := m.Ack(); err != nil && ctx.Err() == nil {
		s.log.Debug().Err(err).Msg("push: ack")
	}
}

// keepAlive tells JetStream, every third of ackWait, that m is still being
// worked on, until the returned func is called. A timer, not a goroutine: most
// events are done long before it first fires.
func keepAlive(ctx context.Context, m jetstream.Msg, ackWait time.Duration) func() {
	every := max(ackWait/3, 100*time.Millisecond)
	k := &alive{}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t = time.AfterFunc(every, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.done || ctx.Err() != nil {
			return
		}
		_ = m.InProgress()
		k.t.Reset(every)
	})
	return func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.done = true
		k.t.Stop()
	}
}

// alive is keepAlive's timer and whether it was stopped.
type alive struct {
	mu   sync.Mutex
	t    *time.Timer
	done bool
}

func (s *Service) handleRevoked(ctx context.Context, m jetstream.Msg) {
	var ev wire.SessionRevoked
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		_ = m.Term()
		return
	}
	if err := s.removeSession(ctx, ev.UserID, ev.SessionID); err != nil {
		if ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("push: session tokens")
			_ = m.NakWithDelay(s.cfg.Backoff)
		}
		return
	}
	_ = m.Ack()
}

// processAll decides and sends the pushes of an event's messages, one after
// another, with the presence of every 1:1 peer asked at once. It returns the
// first error, after trying every message.
func (s *Service) processAll(ctx context.Context, evs []wire.MessageSent) error {
	online, err := s.peersOnline(ctx, evs)
	if err != nil {
		return err
	}
	var first error
	for i := range evs {
		if err := s.process(ctx, &evs[i], online); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// peersOnline tells which 1:1 peers of the messages are online on some device
// (and not idle on every one, unless OnlineWhenAway), in one Redis round trip.
// Most 1:1 messages reach such a peer: whatever else holds (a deleted account, a
// block), that peer gets no push, so the database is spared the recipients
// query. Such a peer counts as online whether or not they have push tokens.
func (s *Service) peersOnline(ctx context.Context, evs []wire.MessageSent) (map[int64]bool, error) {
	var peers []int64
	for i := range evs {
		if peer, ok := s.directPeer(&evs[i].Message); ok && !slices.Contains(peers, peer) {
			peers = append(peers, peer)
		}
	}
	if len(peers) == 0 {
		return nil, nil
	}
	st, err := s.presence.Statuses(ctx, peers)
	if err != nil {
		return nil, err
	}
	online := make(map[int64]bool, len(peers))
	for _, peer := range peers {
		if p := st[peer]; p.Online && (!p.Away || s.cfg.OnlineWhenAway) {
			online[peer] = true
		}
	}
	return online, nil
}

// directPeer is the recipient of a fresh 1:1 message that may be pushed.
func (s *Service) directPeer(msg *wire.Message) (int64, bool) {
	if msg.Type == wire.TypeSystem || s.now().Sub(time.UnixMilli(msg.SentAt)) > s.cfg.MaxAge {
		return 0, false
	}
	cid, err := convid.Parse(msg.ConvID)
	if err != nil || cid.Kind != convid.Direct || !cid.Has(msg.Sender) {
		return 0, false
	}
	return cid.Peer(msg.Sender), true
}

// process decides and sends the pushes of one message; online holds the 1:1
// peers known to be online (peersOnline).
func (s *Service) process(ctx context.Context, ev *wire.MessageSent, online map[int64]bool) error {
	msg := &ev.Message
	if msg.Type == wire.TypeSystem {
		s.m.decisions.WithLabelValues("system").Inc() // group changes are not pushed
		return nil
	}
	cid, err := convid.Parse(msg.ConvID)
	if err != nil {
		s.log.Error().Err(err).Int64("seq", msg.Seq).Msg("push: message event of no conversation, skipped")
		return nil // acknowledged: it would fail the same way every time
	}
	if age := s.now().Sub(time.UnixMilli(msg.SentAt)); age > s.cfg.MaxAge {
		s.m.decisions.WithLabelValues("stale").Inc()
		return nil
	}
	if cid.Kind == convid.Direct && cid.Has(msg.Sender) && online[cid.Peer(msg.Sender)] {
		s.m.decisions.WithLabelValues(VerdictOnline).Inc()
		return nil
	}
	ts, err := s.targets(ctx, msg, nil)
	if err != nil {
		return err
	}
	if ts, err = s.decide(ctx, msg, ev.Mentions, ts, true); err != nil || len(ts) == 0 {
		return err
	}
	leads, err := s.collapse(ctx, msg, ts)
	if err != nil || len(leads) == 0 {
		return err
	}
	return s.pushAll(ctx, msg, leads, ev)
}

// pushAll builds each lead's notifications (titles, badges) and sends them,
// in parallel; it returns once all are sent or dead-lettered, with the first
// error that should make the event come again.
func (s *Service) pushAll(ctx context.Context, msg *wire.Message, leads []lead, ev *wire.MessageSent) error {
	users := make([]int64, len(leads))
	for i, l := range leads {
		users[i] = l.t.user
	}
	badges, err := s.badges(ctx, users)
	if err != nil {
		return err
	}
	var names *names
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, l := range leads {
		if !l.t.hide && names == nil {
			if names, err = s.loadNames(ctx, msg); err != nil {
				return err
			}
		}
		for _, d := range l.t.devices {
			p := s.byPlatform[d.platform]
			if p == nil {
				continue // a platform no longer configured
			}
			n := Notification{UserID: l.t.user, DeviceID: d.id, Platform: d.platform, Provider: p.Name(), Token: d.token, Locale: d.locale,
				ConvID: msg.ConvID, Seq: msg.Seq, MsgID: msg.ID, SentAt: msg.SentAt, Count: l.count, Badge: badges[l.t.user],
				Mention: l.t.r.Mentioned, Hidden: l.t.hide, Trailing: l.trailing}
			n.Title, n.Body = text(msg, names, l.count, l.t.hide)
			if !l.t.hide {
				n.Sender = msg.Sender
			}
			select {
			case s.senders <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return ctx.Err()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-s.senders }()
				if err := s.send(ctx, p, n, ev); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return first
}

// claimKey marks a push of one message to one device as sent (or being sent).
func claimKey(n Notification) string {
	return "push:sent:" + n.ConvID + ":" + strconv.FormatInt(n.Seq, 10) + ":" + strconv.FormatInt(n.UserID, 10) + ":" + n.DeviceID
}

// send claims the push, then calls the provider up to Attempts times with
// backoff. The claim comes first, so that an event redelivered after a crash
// finds it and pushes nothing twice; the price is that a crash between the claim
// and the provider's answer loses that push rather than doubling it (a worker
// stopping releases the claims of pushes whose call had not started, or had
// failed and waits to try again). A push that
// failed Attempts times, or for good, is a dead letter; a token the provider
// calls invalid is removed. It returns an error only when the event should come
// again (the claim or the dead letter could not be written; the claim is then
// released).
func (s *Service) send(ctx context.Context, p Provider, n Notification, ev *wire.MessageSent) error {
	key := claimKey(n)
	ok, err := s.rdb.SetNX(ctx, key, 1, s.cfg.MaxAge+time.Minute).Result()
	if err != nil {
		return fmt.Errorf("push claim: %w", err)
	}
	if !ok {
		s.m.sends.WithLabelValues(p.Name(), "duplicate").Inc()
		return nil
	}
	s.m.lag.WithLabelValues(p.Name()).Observe(s.now().Sub(time.UnixMilli(n.SentAt)).Seconds())
	attempts, err := s.attempt(ctx, p, n)
	switch {
	case err == nil:
		s.m.sends.WithLabelValues(p.Name(), "ok").Inc()
		return nil
	case ctx.Err() != nil:
		// Stopping: the event is not acknowledged and comes again. Unless a
		// provider call was cut short (the provider may have taken it: the push
		// is lost rather than doubled), the claim goes, so that it is retried.
		if !errors.Is(err, errCutShort) {
			s.rdb.Del(context.WithoutCancel(ctx), key)
		}
		return nil
	case errors.Is(err, ErrUnregistered):
		s.m.sends.WithLabelValues(p.Name(), "unregistered").Inc()
		if err := s.removeToken(ctx, n); err != nil {
			s.log.Warn().Err(err).Msg("push: remove token")
		}
		return nil
	}
	s.m.sends.WithLabelValues(p.Name(), "dead").Inc()
	if derr := s.deadLetter(ctx, DeadLetter{Notification: n, Error: err.Error(), Attempts: attempts, At: s.now().UnixMilli(), Event: ev}); derr != nil {
		s.rdb.Del(context.WithoutCancel(ctx), key)
		return derr
	}
	return nil
}

// errCutShort marks a provider call that ctx's end interrupted.
var errCutShort = errors.New("provider call cut short")

// attempt calls the provider until it succeeds, fails for good or Attempts
// calls failed, waiting Backoff, 2×Backoff, ... between them. It returns the
// calls made and the last error (wrapping errCutShort when ctx ended during a
// call).
func (s *Service) attempt(ctx context.Context, p Provider, n Notification) (int, error) {
	var err error
	for i := 1; ; i++ {
		if ctx.Err() != nil {
			return i - 1, ctx.Err()
		}
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err = p.Send(cctx, n)
		cancel()
		if err != nil && ctx.Err() != nil {
			return i, fmt.Errorf("%w: %w", errCutShort, err)
		}
		if err == nil || errors.Is(err, ErrUnregistered) || IsPermanent(err) || i >= s.cfg.Attempts {
			return i, err
		}
		select {
		case <-ctx.Done():
			return i, err
		case <-time.After(s.cfg.Backoff << (i - 1)):
		}
	}
}

// names are the sender's and the group's, for titles.
type names struct{ sender, group string }

func (s *Service) loadNames(ctx context.Context, msg *wire.Message) (*names, error) {
	var n names
	if err := s.db.QueryRowContext(ctx, "SELECT nickname FROM users WHERE id = ?", msg.Sender).Scan(&n.sender); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("push names: %w", err)
	}
	if cid, err := convid.Parse(msg.ConvID); err == nil && cid.Kind == convid.Group {
		if err := s.db.QueryRowContext(ctx, "SELECT name FROM chat_groups WHERE id = ?", cid.Group).Scan(&n.group); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("push names: %w", err)
		}
	}
	return &n, nil
}

// previewRunes bounds the text a push shows.
const previewRunes = 120

// text is a push's title and body: the sender (1:1) or the group, and the text
// (in a group prefixed by the sender), with the count of a collapsed burst; with
// hide, no title and "New message" or "3 new messages".
func text(msg *wire.Message, n *names, count int, hide bool) (title, body string) {
	if hide || n == nil {
		if count > 1 {
			return "", strconv.Itoa(count) + " new messages"
		}
		return "", "New message"
	}
	var c struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(msg.Content, &c)
	body = c.Text
	if body == "" {
		body = "New message"
	}
	if utf8.RuneCountInString(body) > previewRunes {
		r := []rune(body)
		body = string(r[:previewRunes]) + "…"
	}
	title = n.sender
	if n.group != "" {
		title = n.group
		body = n.sender + ": " + body
	}
	if count > 1 {
		body += " (" + strconv.Itoa(count) + " new messages)"
	}
	return title, body
}

// loadMessage reads a stored message for a collapsed push (content null once
// recalled).
func (s *Service) loadMessage(ctx context.Context, conv string, seq int64) (*wire.Message, error) {
	m := &wire.Message{ConvID: conv, Seq: seq}
	var (
		content    []byte
		sent       time.Time
		recalledBy int64
	)
	err := s.db.QueryRowContext(ctx, "SELECT id, sender_id, kind, content, created_at, recalled_by FROM messages WHERE conv_id = ? AND seq = ?", conv, seq).
		Scan(&m.ID, &m.Sender, &m.Type, &content, &sent, &recalledBy)
	if err != nil {
		return nil, fmt.Errorf("load message: %w", err)
	}
	m.SentAt = sent.UnixMilli()
	if recalledBy == 0 {
		m.Content = content
	}
	return m, nil
}
