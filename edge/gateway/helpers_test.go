package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// env is shared by the package's tests; each test gets its own NATS connections,
// gateway and stub functions, and its own user ids.
var env *testenv.Env

func TestMain(m *testing.M) {
	e, err := testenv.New(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	os.Exit(code)
}

const (
	testSecret = "edge-test-secret-0123456789"
	bannedUser = 666 // session.connect and session.check refuse this user
	// endedSession is a session that session.check finds ended (logged out while
	// the edge did not hear of it).
	endedSession = "ended-session"
	slowOp       = "msg.sync"
	failingOp    = "account.logout"
	absentOp     = "account.devices" // no stub serves it
	bigOp        = "msg.history"     // answers as many bytes as asked for
)

var (
	blobMu sync.Mutex
	blobs  = map[int]string{}
)

// blob returns n bytes of text, made once per n.
func blob(n int) string {
	blobMu.Lock()
	defer blobMu.Unlock()
	b, ok := blobs[n]
	if !ok {
		b = strings.Repeat("x", n)
		blobs[n] = b
	}
	return b
}

var lastUser atomic.Int64

// newUser returns a user id no other test uses.
func newUser() int64 { return 10_000 + lastUser.Add(1) }

// echo is what the stub functions answer: who called, and the data they got.
type echo struct {
	User    int64           `json:"user"`
	Device  string          `json:"device"`
	Session string          `json:"session"`
	Role    string          `json:"role"`
	Conn    string          `json:"conn"`
	Req     string          `json:"req"`
	Data    json.RawMessage `json:"data"`
}

type connectCall struct {
	Caller endpoint.Caller
	Req    wire.ConnectReq
}

type disconnectCall struct {
	Caller endpoint.Caller
	ConnID string
}

// stub stands in for the functions the edge talks to.
type stub struct {
	connects    chan connectCall
	disconnects chan disconnectCall
	touches     chan wire.TouchReq
	checks      atomic.Int64 // session.check calls
	big         atomic.Int64 // bigOp calls that asked for reply_bytes
	slowNow     atomic.Int32 // slowOp calls running
	slowMax     atomic.Int32 // the most slowOp calls that ran at once
	// groups answers session.connect's groups for a user (uid → func() []int64);
	// none: no groups.
	groups      sync.Map
	groupsCalls atomic.Int64 // session.groups calls
}

func startStub(t testing.TB) *stub {
	t.Helper()
	s := &stub{connects: make(chan connectCall, 256), disconnects: make(chan disconnectCall, 256), touches: make(chan wire.TouchReq, 256)}
	echoFn := func(_ context.Context, c endpoint.Caller, data json.RawMessage) (echo, error) {
		return echo{User: c.UserID, Device: c.DeviceID, Session: c.SessionID, Role: c.Role, Conn: c.ConnID, Req: c.RequestID, Data: data}, nil
	}
	eps := []endpoint.Endpoint{
		endpoint.Handle("session.connect", func(_ context.Context, c endpoint.Caller, r wire.ConnectReq) (wire.ConnectResp, error) {
			s.connects <- connectCall{c, r}
			if c.UserID == bannedUser {
				return wire.ConnectResp{}, imerr.New(imerr.Forbidden, "user banned")
			}
			resp := wire.ConnectResp{Devices: 1}
			if fn, ok := s.groups.Load(c.UserID); ok {
				resp.Groups = fn.(func() []int64)()
			}
			return resp, nil
		}),
		endpoint.Handle("session.groups", func(_ context.Context, _ endpoint.Caller, r wire.GroupsReq) (wire.GroupsResp, error) {
			s.groupsCalls.Add(1)
			resp := wire.GroupsResp{Groups: map[int64][]int64{}}
			for _, u := range r.UserIDs {
				if fn, ok := s.groups.Load(u); ok {
					resp.Groups[u] = fn.(func() []int64)()
				}
			}
			return resp, nil
		}),
		endpoint.Handle("session.disconnect", func(_ context.Context, c endpoint.Caller, r wire.DisconnectReq) (struct{}, error) {
			s.disconnects <- disconnectCall{c, r.ConnID}
			return struct{}{}, nil
		}),
		endpoint.Handle("session.touch", func(_ context.Context, _ endpoint.Caller, r wire.TouchReq) (struct{}, error) {
			s.touches <- r
			return struct{}{}, nil
		}),
		endpoint.Handle("session.check", func(_ context.Context, c endpoint.Caller, _ struct{}) (wire.SessionCheck, error) {
			s.checks.Add(1)
			switch {
			case c.UserID == bannedUser:
				return wire.SessionCheck{}, imerr.New(imerr.Forbidden, "account banned")
			case c.SessionID == endedSession:
				return wire.SessionCheck{}, imerr.New(imerr.Unauthorized, "session ended: log in again")
			}
			return wire.SessionCheck{Live: true}, nil
		}),
		endpoint.Handle("msg.send", echoFn),
		endpoint.Handle("account.login", echoFn),
		endpoint.Handle("account.register", echoFn),
		endpoint.Handle("account.profile.get", echoFn),
		endpoint.Handle("account.profile.update", echoFn),
		// Answers {"blob":"xx..."} of about reply_bytes bytes when asked, else echoes.
		endpoint.Handle(bigOp, func(ctx context.Context, c endpoint.Caller, data json.RawMessage) (any, error) {
			var r struct {
				ReplyBytes int `json:"reply_bytes"`
			}
			if _ = json.Unmarshal(data, &r); r.ReplyBytes > 0 {
				s.big.Add(1)
				return map[string]string{"blob": blob(r.ReplyBytes)}, nil
			}
			return echoFn(ctx, c, data)
		}),
		endpoint.Handle(slowOp, func(ctx context.Context, c endpoint.Caller, data json.RawMessage) (echo, error) {
			var r struct {
				SleepMS int `json:"sleep_ms"`
			}
			_ = json.Unmarshal(data, &r)
			n := s.slowNow.Add(1)
			defer s.slowNow.Add(-1)
			for m := s.slowMax.Load(); n > m && !s.slowMax.CompareAndSwap(m, n); m = s.slowMax.Load() {
			}
			select {
			case <-time.After(time.Duration(r.SleepMS) * time.Millisecond):
			case <-ctx.Done():
			}
			return echoFn(ctx, c, data)
		}),
		endpoint.Handle(failingOp, func(context.Context, endpoint.Caller, json.RawMessage) (struct{}, error) {
			return struct{}{}, imerr.New(imerr.Conflict, "already logged out")
		}),
	}
	nc := env.Connect(t)
	srv, err := endpoint.Serve(context.Background(), nc, zerolog.Nop(), nil, endpoint.Config{}, eps)
	if err != nil {
		t.Fatalf("serve stubs: %v", err)
	}
	// The server has the subscriptions once a round trip on their connection is done.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Stop()
		// The next test's requests must not be routed to these queue members.
		_ = nc.Flush()
	})
	return s
}

// nextDisconnect waits for a session.disconnect call.
func (s *stub) nextDisconnect(t *testing.T) disconnectCall {
	t.Helper()
	select {
	case d := <-s.disconnects:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no session.disconnect call")
		return disconnectCall{}
	}
}

// fixture is one gateway behind an httptest server, with stub functions.
type fixture struct {
	gw     *gateway.Gateway
	srv    *httptest.Server
	nc     *nats.Conn // the gateway's own connection
	reg    *prometheus.Registry
	signer *auth.Signer
	stub   *stub
}

func newFixture(t testing.TB, tune func(*gateway.Config)) *fixture {
	t.Helper()
	f := &fixture{stub: startStub(t), nc: env.Connect(t), reg: prometheus.NewRegistry()}
	var err error
	if f.signer, err = auth.NewSigner(config.Auth{Secret: testSecret, AccessTTL: time.Hour, Dev: true}); err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{ID: "edge-t"}
	if tune != nil {
		tune(&cfg)
	}
	f.gw, err = gateway.New(cfg, gateway.Deps{NC: f.nc, Signer: f.signer, Log: zerolog.Nop(), Registry: f.reg})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	f.srv = httptest.NewServer(f.gw.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		f.srv.Close()
	})
	return f
}

// token issues an access token for user uid in session sid.
func (f *fixture) token(t testing.TB, uid int64, sid string) string {
	t.Helper()
	tok, _, err := f.signer.Issue(auth.Claims{UserID: uid, SessionID: sid, DeviceID: "dev-" + sid, Role: "user"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws?" + query
}

// client is a real gws WebSocket client that collects what the edge sends.
type client struct {
	gws.BuiltinEventHandler
	sock     *gws.Conn
	frames   chan []byte
	closed   chan struct{}
	closeErr error
	closedAt time.Time    // when the connection closed (read after closed)
	pings    atomic.Int32 // pings received from the edge
	pongs    atomic.Int32 // pongs received from the edge
	silent   bool         // does not answer pings
}

func (c *client) OnMessage(_ *gws.Conn, m *gws.Message) {
	c.frames <- bytes.Clone(m.Bytes())
	_ = m.Close()
}

func (c *client) OnClose(_ *gws.Conn, err error) {
	c.closeErr, c.closedAt = err, time.Now()
	close(c.closed)
}

func (c *client) OnPong(*gws.Conn, []byte) { c.pongs.Add(1) }

func (c *client) OnPing(s *gws.Conn, p []byte) {
	c.pings.Add(1)
	if !c.silent {
		_ = s.WritePong(p)
	}
}

type dialConfig struct {
	opt    *gws.ClientOption
	c      *client
	noRead bool
	keep   bool
}

type dialOpt func(*dialConfig)

func withHeader(k, v string) dialOpt {
	return func(d *dialConfig) { d.opt.RequestHeader.Set(k, v) }
}

// silent makes a client that does not answer pings.
func silent(d *dialConfig) { d.c.silent = true }

// noRead leaves the client's read loop unstarted: a client that stops reading.
func noRead(d *dialConfig) { d.noRead = true }

// keepOpen leaves the connection open when the test ends (the caller closes it).
func keepOpen(d *dialConfig) { d.keep = true }

// dialQuery connects with the given URL query and starts reading (unless noRead).
func (f *fixture) dialQuery(t testing.TB, query string, opts ...dialOpt) *client {
	t.Helper()
	d := &dialConfig{
		opt: &gws.ClientOption{Addr: f.wsURL(query), RequestHeader: http.Header{}},
		c:   &client{frames: make(chan []byte, 1024), closed: make(chan struct{})},
	}
	for _, opt := range opts {
		opt(d)
	}
	sock, resp, err := gws.NewClient(d.c, d.opt)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	d.c.sock = sock
	if !d.noRead {
		go sock.ReadLoop()
	}
	if !d.keep {
		t.Cleanup(func() { _ = sock.NetConn().Close() })
	}
	return d.c
}

// dial connects as user uid in session sid.
func (f *fixture) dial(t testing.TB, uid int64, sid string, opts ...dialOpt) *client {
	t.Helper()
	return f.dialQuery(t, "token="+f.token(t, uid, sid), opts...)
}

func (c *client) sendRaw(t *testing.T, frame string) {
	t.Helper()
	if err := c.sock.WriteString(frame); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (c *client) send(t *testing.T, id, op string, data any) {
	t.Helper()
	req := wire.Request{ID: id, Op: op}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		req.Data = b
	}
	b, _ := json.Marshal(req)
	c.sendRaw(t, string(b))
}

// next returns the next frame the edge sent.
func (c *client) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-c.frames:
		return b
	case <-c.closed:
		select { // frames read before the close frame come first
		case b := <-c.frames:
			return b
		default:
		}
		t.Fatalf("connection closed while waiting for a frame: %v", c.closeErr)
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5s")
	}
	return nil
}

// reply returns the next frame as a reply.
func (c *client) reply(t *testing.T) wire.Reply {
	t.Helper()
	b := c.next(t)
	var r wire.Reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %s: %v", b, err)
	}
	return r
}

// call sends a request and returns its reply; nothing else may be in flight.
func (c *client) call(t *testing.T, id, op string, data any) wire.Reply {
	t.Helper()
	c.send(t, id, op, data)
	r := c.reply(t)
	if r.ID != id {
		t.Fatalf("reply id %q, want %q", r.ID, id)
	}
	return r
}

// connID asks the echo stub who this connection is.
func (c *client) connID(t *testing.T) string {
	t.Helper()
	r := c.call(t, "whoami", "msg.send", nil)
	var e echo
	if err := json.Unmarshal(r.Data, &e); err != nil || e.Conn == "" {
		t.Fatalf("whoami: %s %v", r.Data, err)
	}
	return e.Conn
}

// closeCode waits for the edge to close the connection and returns the close code.
func (c *client) closeCode(t *testing.T) uint16 {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed within 5s")
	}
	var ce *gws.CloseError
	if !errors.As(c.closeErr, &ce) {
		t.Fatalf("closed without a close frame: %v", c.closeErr)
	}
	return ce.Code
}

func (c *client) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds or 5s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second) // generous: the suite runs packages in parallel on two cores
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric returns the value of the series name{labels} (0 if absent).
func (f *fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// publish sends a delivery message to user uid.
func publish(t *testing.T, uid int64, data string, hdr map[string]string) {
	t.Helper()
	publishTo(t, subject.Deliver(uid), data, hdr)
}

// publishTo sends a delivery message on subj (a user's or a group's).
func publishTo(t *testing.T, subj, data string, hdr map[string]string) {
	t.Helper()
	msg := nats.NewMsg(subj)
	msg.Data = []byte(data)
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	if err := env.NC.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
}

// httpDo sends an HTTP request to the fixture and returns status, headers and body.
func (f *fixture) httpDo(t *testing.T, method, path, token, body string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.Bytes()
}

// errorCode decodes {"error":{"code":...}}.
func errorCode(t *testing.T, body []byte) imerr.Code {
	t.Helper()
	var e struct {
		Error *imerr.Error `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Error.Code
}

// startReading starts the read loop of a client dialled with noRead.
func (c *client) startReading() { go c.sock.ReadLoop() }
