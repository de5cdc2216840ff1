// Package client is a small Go client of natter's protocol (docs/protocol.md): a
// WebSocket session with concurrent request/reply and a push channel, plus HTTP
// helpers. The load generator drives natter through it, and the end-to-end tests
// use it as a real client would.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"natter/shared/imerr"
	"natter/shared/wire"
)

// Push is a frame the server sent on its own.
type Push struct {
	Event string
	Data  json.RawMessage
	At    time.Time // when the client read it
}

// Options configure Dial.
type Options struct {
	URL      string // ws://host:port/ws
	Token    string
	Platform string
	// Pushes is the capacity of the push channel (0: 1024); when it is full the
	// oldest waiting push is kept and new ones are counted in Dropped. A load run
	// holding thousands of idle sessions sets it small: the buffer is allocated
	// up front.
	Pushes int
	// Dialer lets a load run pick its source address; nil uses the default.
	Dialer gws.Dialer
	// OnPush, when set, sees every push first, on the connection's read goroutine
	// and with the time the frame was read; event and data are valid only during
	// the call. Returning true consumes the push; false sends it on to Pushes. The
	// load generator reads its measurements here without decoding or queueing.
	OnPush func(event, data []byte, at time.Time) bool
}

// Client is one WebSocket session.
type Client struct {
	gws.BuiltinEventHandler
	sock    *gws.Conn
	pushes  chan Push
	closed  chan struct{}
	closeMu sync.Mutex
	err     error

	onPush  func(event, data []byte, at time.Time) bool
	mu      sync.Mutex
	pending map[string]waiter
	nextID  atomic.Uint64
	Dropped atomic.Int64
}

// waiter is a request waiting for its reply: a Call blocked on ch, or a Go
// callback.
type waiter struct {
	ch chan frame
	fn func(json.RawMessage, error)
}

type frame struct {
	ID    string          `json:"id"`
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *imerr.Error    `json:"error"`
	Event string          `json:"event"`
}

// DialError is a refused upgrade: the HTTP status and the error the edge gave.
type DialError struct {
	Status int
	Err    *imerr.Error
}

func (e *DialError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dial: HTTP %d: %v", e.Status, e.Err)
	}
	return fmt.Sprintf("dial: HTTP %d", e.Status)
}

func (e *DialError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// Dial opens a session and starts reading.
func Dial(ctx context.Context, o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	q := u.Query()
	if o.Token != "" {
		q.Set("token", o.Token)
	}
	if o.Platform != "" {
		q.Set("platform", o.Platform)
	}
	u.RawQuery = q.Encode()
	capacity := o.Pushes
	if capacity <= 0 {
		capacity = 1024
	}
	c := &Client{pushes: make(chan Push, capacity), closed: make(chan struct{}), pending: map[string]waiter{}, onPush: o.OnPush}
	opt := &gws.ClientOption{Addr: u.String(), RequestHeader: http.Header{}, NewDialer: func() (gws.Dialer, error) {
		if o.Dialer != nil {
			return o.Dialer, nil
		}
		return &deadlineDialer{ctx: ctx}, nil
	}}
	sock, resp, err := gws.NewClient(c, opt)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			de := &DialError{Status: resp.StatusCode}
			if resp.Body != nil {
				var body struct{ Error *imerr.Error }
				if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body) == nil {
					de.Err = body.Error
				}
			}
			return nil, de
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c.sock = sock
	go sock.ReadLoop()
	return c, nil
}

// OnMessage routes a frame to its caller or the push channel.
func (c *Client) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	at := time.Now()
	b := m.Bytes()
	if ev, data, ok := splitPush(b); ok {
		if c.onPush != nil && c.onPush(ev, data, at) {
			return
		}
		c.queuePush(Push{Event: string(ev), Data: bytes.Clone(data), At: at})
		return
	}
	f, ok := splitReplyOK(b)
	if !ok {
		if err := json.Unmarshal(b, &f); err != nil {
			return
		}
	}
	if f.Event != "" {
		if c.onPush != nil && c.onPush([]byte(f.Event), f.Data, at) {
			return
		}
		c.queuePush(Push{Event: f.Event, Data: bytes.Clone(f.Data), At: at})
		return
	}
	c.mu.Lock()
	w, found := c.pending[f.ID]
	delete(c.pending, f.ID)
	c.mu.Unlock()
	if !found {
		return
	}
	if w.fn != nil {
		if !f.OK {
			w.fn(nil, replyError(f))
			return
		}
		w.fn(f.Data, nil) // valid during the call only
		return
	}
	f.Data = bytes.Clone(f.Data)
	w.ch <- f
}

func (c *Client) queuePush(p Push) {
	select {
	case c.pushes <- p:
	default:
		c.Dropped.Add(1)
	}
}

// splitPush recognises the edge's push encoding, {"event":"E","data":...},
// without decoding it.
func splitPush(b []byte) (event, data []byte, ok bool) {
	const head = `{"event":"`
	if !bytes.HasPrefix(b, []byte(head)) || b[len(b)-1] != '}' {
		return nil, nil, false
	}
	rest := b[len(head):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, nil, false
	}
	event, rest = rest[:end], rest[end+1:]
	const mid = `,"data":`
	if !bytes.HasPrefix(rest, []byte(mid)) {
		return nil, nil, false
	}
	return event, rest[len(mid) : len(rest)-1], true
}

// splitReplyOK recognises the edge's success reply, {"id":"X","ok":true[,"data":...]}
// (wire.AppendReplyOK), without decoding it; anything else takes the JSON path.
func splitReplyOK(b []byte) (frame, bool) {
	const head = `{"id":"`
	if !bytes.HasPrefix(b, []byte(head)) || b[len(b)-1] != '}' {
		return frame{}, false
	}
	rest := b[len(head):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return frame{}, false
	}
	id, rest := rest[:end], rest[end+1:]
	const ok, data = `,"ok":true`, `,"data":`
	if !bytes.HasPrefix(rest, []byte(ok)) {
		return frame{}, false
	}
	rest = rest[len(ok):]
	f := frame{ID: string(id), OK: true}
	switch {
	case len(rest) == 1:
	case bytes.HasPrefix(rest, []byte(data)):
		f.Data = rest[len(data) : len(rest)-1]
	default:
		return frame{}, false
	}
	return f, true
}

func replyError(f frame) error {
	if f.Error == nil {
		return errors.New("error reply without error")
	}
	return f.Error
}

// OnClose records why the session ended and fails the Go callbacks still waiting.
func (c *Client) OnClose(_ *gws.Conn, err error) {
	c.closeMu.Lock()
	c.err = err
	c.closeMu.Unlock()
	close(c.closed)
	c.mu.Lock()
	var fns []func(json.RawMessage, error)
	for id, w := range c.pending {
		if w.fn != nil {
			fns = append(fns, w.fn)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn(nil, fmt.Errorf("connection closed: %w", err))
	}
}

// Call sends op with data and decodes the reply's data into out (when not nil). An
// error reply comes back as *imerr.Error.
func (c *Client) Call(ctx context.Context, op string, data, out any) error {
	raw, err := c.CallRaw(ctx, op, data)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// CallRaw is Call returning the reply's data undecoded.
func (c *Client) CallRaw(ctx context.Context, op string, data any) (json.RawMessage, error) {
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, err
		}
		raw = b
	}
	id := c.newID()
	b, err := json.Marshal(wire.Request{ID: id, Op: op, Data: raw})
	if err != nil {
		return nil, err
	}
	ch := make(chan frame, 1)
	c.mu.Lock()
	c.pending[id] = waiter{ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.sock.WriteMessage(gws.OpcodeText, b); err != nil {
		return nil, fmt.Errorf("%s: write: %w", op, err)
	}
	select {
	case f := <-ch:
		if !f.OK {
			return nil, replyError(f) // *imerr.Error, as documented on Call
		}
		return f.Data, nil
	case <-c.closed:
		return nil, fmt.Errorf("%s: connection closed: %w", op, c.CloseErr())
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

func (c *Client) newID() string { return strconv.FormatUint(c.nextID.Add(1), 36) }

// Go sends op with data (already JSON, or nil) without waiting: done is called
// once with the reply's data (valid only during the call) or an error, on the
// connection's read goroutine, so it must not block. A session that closes fails
// its waiting callbacks. There is no timeout: the edge answers every request
// within its own request timeout. The frame is built by appending, not by
// encoding/json: this is the load generator's send path.
func (c *Client) Go(op string, data []byte, done func(json.RawMessage, error)) error {
	id := c.newID()
	b := make([]byte, 0, len(id)+len(op)+len(data)+32)
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"op":`...)
	b = strconv.AppendQuote(b, op)
	if len(data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	b = append(b, '}')
	c.mu.Lock()
	c.pending[id] = waiter{fn: done}
	c.mu.Unlock()
	if err := c.sock.WriteMessage(gws.OpcodeText, b); err != nil {
		c.mu.Lock()
		_, still := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if !still { // OnClose already failed it
			return nil
		}
		return fmt.Errorf("%s: write: %w", op, err)
	}
	return nil
}

// InFlight is how many requests wait for their reply.
func (c *Client) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// WriteRaw sends a frame as is (for tests of bad input).
func (c *Client) WriteRaw(b []byte) error { return c.sock.WriteMessage(gws.OpcodeText, b) }

// Pushes delivers pushes in the order the server sent them.
func (c *Client) Pushes() <-chan Push { return c.pushes }

// Done is closed when the session ends.
func (c *Client) Done() <-chan struct{} { return c.closed }

// CloseErr is why the session ended (a *gws.CloseError for a close frame).
func (c *Client) CloseErr() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.err
}

// CloseCode is the close code the server sent, or 0.
func (c *Client) CloseCode() uint16 {
	var ce *gws.CloseError
	if errors.As(c.CloseErr(), &ce) {
		return ce.Code
	}
	return 0
}

// Close ends the session with a normal close.
func (c *Client) Close() error {
	_ = c.sock.WriteClose(1000, nil)
	return c.sock.NetConn().Close()
}

// NextPush waits for the next push with the given event (skipping others).
func (c *Client) NextPush(ctx context.Context, event string) (Push, error) {
	for {
		select {
		case p := <-c.pushes:
			if event == "" || p.Event == event {
				return p, nil
			}
		case <-c.closed:
			return Push{}, fmt.Errorf("waiting for %s: connection closed: %w", event, c.CloseErr())
		case <-ctx.Done():
			return Push{}, fmt.Errorf("waiting for %s: %w", event, ctx.Err())
		}
	}
}

// HTTP calls base+path with an optional bearer token and JSON body, decoding a
// success into out. An error status comes back as *imerr.Error.
func HTTP(ctx context.Context, base, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error *imerr.Error }
		if json.Unmarshal(b, &e) == nil && e.Error != nil {
			return e.Error
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Tokens is what login answers.
type Tokens struct {
	UserID       int64  `json:"user_id"`
	SessionID    string `json:"session_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// Login logs username in on device over HTTP.
func Login(ctx context.Context, base, username, password, device string) (Tokens, error) {
	var t Tokens
	err := HTTP(ctx, base, http.MethodPost, "/api/v1/users/login", "", map[string]string{
		"username": username, "password": password, "device_id": device}, &t)
	return t, err
}

// Register creates an account over HTTP and returns its user id.
func Register(ctx context.Context, base, username, password string) (int64, error) {
	var r struct {
		UserID int64 `json:"user_id"`
	}
	err := HTTP(ctx, base, http.MethodPost, "/api/v1/users/register", "", map[string]string{
		"username": username, "password": password}, &r)
	return r.UserID, err
}
