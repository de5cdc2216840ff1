package client

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOffline is what a Session answers while it has no connection: the request
// was not sent, so it may be sent again once the session is back.
var ErrOffline = errors.New("offline: no connection")

// Backoff spaces redials: attempt n waits a random time in [d/2, d] with
// d = min(Max, Min·2ⁿ) ("equal jitter"), so clients that lost the same edge do
// not all come back in the same millisecond, and none waits longer than Max.
type Backoff struct {
	Min, Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 100 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = max(5*time.Second, b.Min)
	}
	return b
}

// Delay is how long to wait before attempt n (0 for the first retry).
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 30 && b.Min<<n < b.Max {
		d = b.Min << n
	}
	return d/2 + rand.N(d/2+1)
}

// SessionOptions configure Connect.
type SessionOptions struct {
	// Options are each connection's (Token, OnPush, Pushes, Dialer); URL is
	// ignored when URLs is set.
	Options
	// URLs are the edges, dialled in turn: the first connection goes to URLs[0],
	// a redial to the next one (an edge that went away is not tried first).
	URLs []string
	// Backoff spaces redials (zero: 100 ms doubling to 5 s).
	Backoff Backoff
	// DialTimeout bounds one dial, upgrade included (0: 10 s).
	DialTimeout time.Duration
	// OnConnect runs after each connection opens (n = 0 for the first, then 1,
	// 2, ...) on the session's goroutine, before it watches the connection: the
	// place to resume (msg.sync from the client's cursors). It may call c.
	OnConnect func(c *Client, n int)
	// OnDrop is told when a connection ends without Close, with why.
	OnDrop func(err error)
}

// Session is a WebSocket session that outlives its connections: when one drops
// (an edge restarting or dying) it dials again with jittered exponential backoff
// until Close, over the edges in turn. A close code in the 3500s ("do not
// reconnect as is": kicked, frame too large) or a refused upgrade with a 4xx
// other than 429 ends it for good (Err says why). Requests made while it has no
// connection fail at once with ErrOffline; those in flight when a connection
// drops fail with "connection closed". Resending is the caller's choice.
type Session struct {
	o      SessionOptions
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the redial loop has ended

	mu      sync.Mutex
	cur     *Client // nil while offline
	err     error   // why the session ended for good
	dropped int64   // pushes dropped by connections already gone

	reconnects   atomic.Int64
	dialFailures atomic.Int64
	offline      atomic.Int64 // nanoseconds without a connection, between the first connection and Close
	maxOffline   atomic.Int64
}

// Connect opens a session's first connection (failing like Dial) and keeps it
// connected until Close or ctx ends.
func Connect(ctx context.Context, o SessionOptions) (*Session, error) {
	if len(o.URLs) == 0 {
		o.URLs = []string{o.URL}
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	s := &Session{o: o, done: make(chan struct{})}
	c, err := s.dial(ctx, 0)
	if err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, s.cancel)
	s.cur = c
	if o.OnConnect != nil {
		o.OnConnect(c, 0)
	}
	go func() {
		defer stop()
		s.loop(c)
	}()
	return s, nil
}

func (s *Session) dial(ctx context.Context, edge int) (*Client, error) {
	o := s.o.Options
	o.URL = s.o.URLs[edge%len(s.o.URLs)]
	dctx, cancel := context.WithTimeout(ctx, s.o.DialTimeout)
	defer cancel()
	return Dial(dctx, o)
}

// loop watches the connection and redials when it drops.
func (s *Session) loop(c *Client) {
	defer close(s.done)
	edge := 0
	for n := 1; ; n++ {
		select {
		case <-c.Done():
		case <-s.ctx.Done():
			_ = c.Close()
			<-c.Done()
			s.swap(c, nil)
			return
		}
		lost := time.Now()
		s.swap(c, nil)
		if s.o.OnDrop != nil {
			s.o.OnDrop(c.CloseErr())
		}
		if code := c.CloseCode(); code >= 3500 && code < 4000 {
			s.end(c.CloseErr())
			return
		}
		var err error
		for attempt := 0; ; attempt++ {
			select {
			case <-time.After(s.o.Backoff.Delay(attempt)):
			case <-s.ctx.Done():
				s.addOffline(time.Since(lost))
				return
			}
			edge++
			if c, err = s.dial(s.ctx, edge); err == nil {
				break
			}
			s.dialFailures.Add(1)
			if permanent(err) {
				s.addOffline(time.Since(lost))
				s.end(err)
				return
			}
		}
		s.addOffline(time.Since(lost))
		s.reconnects.Add(1)
		s.swap(nil, c)
		if s.o.OnConnect != nil {
			s.o.OnConnect(c, n)
		}
	}
}

// permanent tells a refusal that redialing cannot fix (a bad or revoked token, a
// ban, the device limit) from an outage.
func permanent(err error) bool {
	var de *DialError
	return errors.As(err, &de) && de.Status >= 400 && de.Status < 500 && de.Status != http.StatusTooManyRequests
}

func (s *Session) swap(old, c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old != nil {
		s.dropped += old.Dropped.Load()
	}
	s.cur = c
}

func (s *Session) end(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *Session) addOffline(d time.Duration) {
	s.offline.Add(int64(d))
	for {
		m := s.maxOffline.Load()
		if int64(d) <= m || s.maxOffline.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// Current is the open connection, or nil while offline.
func (s *Session) Current() *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		select {
		case <-s.cur.Done():
			return nil
		default:
		}
	}
	return s.cur
}

// Go is Client.Go on the current connection; ErrOffline when there is none (the
// frame was not sent).
func (s *Session) Go(op string, data []byte, done func(json.RawMessage, error)) error {
	c := s.Current()
	if c == nil {
		return ErrOffline
	}
	if err := c.Go(op, data, done); err != nil {
		select {
		case <-c.Done():
			return ErrOffline
		default:
			return err
		}
	}
	return nil
}

// Call is Client.Call on the current connection; ErrOffline when there is none.
func (s *Session) Call(ctx context.Context, op string, data, out any) error {
	c := s.Current()
	if c == nil {
		return ErrOffline
	}
	return c.Call(ctx, op, data, out)
}

// Reconnects counts connections after the first.
func (s *Session) Reconnects() int64 { return s.reconnects.Load() }

// DialFailures counts redials that failed.
func (s *Session) DialFailures() int64 { return s.dialFailures.Load() }

// Offline is the time spent without a connection since the first one, and the
// longest single stretch of it (a stretch still going on is not counted).
func (s *Session) Offline() (total, longest time.Duration) {
	return time.Duration(s.offline.Load()), time.Duration(s.maxOffline.Load())
}

// Dropped counts pushes dropped because the push channel was full, over every
// connection.
func (s *Session) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.dropped
	if s.cur != nil {
		n += s.cur.Dropped.Load()
	}
	return n
}

// Err is why the session stopped redialing (nil while it still does, and after
// Close).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session: the connection is closed and no redial follows.
func (s *Session) Close() error {
	s.cancel()
	<-s.done
	return nil
}
