package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"natter/edge/gateway"
	"natter/shared/auth"
	"natter/shared/bus"
	"natter/shared/config"
	"natter/shared/imerr"
	"natter/shared/subject"
	"natter/shared/testenv"
	"natter/shared/wire"
)

// revoke publishes a session.revoked event the way the account domain does.
func revoke(t *testing.T, uid int64, sid string, at time.Time) {
	t.Helper()
	js, err := jetstream.New(env.NC)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(map[string]any{"user_id": uid, "session_id": sid, "at": at.UnixMilli()})
	if _, err := js.Publish(context.Background(), subject.EvtSessionRevoked, data); err != nil {
		t.Fatalf("publish revocation: %v", err)
	}
}

func TestSessionRevocation(t *testing.T) {
	f := newFixture(t, nil)
	uid := newUser()
	// Session ids are unique in real life; the event stream is shared by this package.
	revoked, kept, stale := "rev-a-"+strconv.FormatInt(uid, 10), "rev-b-"+strconv.FormatInt(uid, 10), "rev-c-"+strconv.FormatInt(uid, 10)
	status := func(f *fixture, sid string) int {
		s, _, _ := f.httpDo(t, "POST", "/api/v1/msg.send", f.token(t, uid, sid), "{}", nil)
		return s
	}
	if s := status(f, revoked); s != http.StatusOK {
		t.Fatalf("before revocation: %d", s)
	}

	// Live: an edge that is running applies the event within moments.
	revoke(t, uid, stale, time.Now().Add(-2*time.Hour)) // older than any token: ignored
	revoke(t, uid, revoked, time.Now())
	waitFor(t, "revocation applied", func() bool { return status(f, revoked) == http.StatusUnauthorized })
	if s := status(f, kept); s != http.StatusOK {
		t.Fatalf("another session of the user: %d", s)
	}
	if s := status(f, stale); s != http.StatusOK {
		t.Fatalf("revocation older than the token lifetime still applied: %d", s)
	}
	hdr := map[string]string{}
	for k, v := range wsHeaders {
		hdr[k] = v
	}
	if s, _, body := f.httpDo(t, "GET", "/ws", f.token(t, uid, revoked), "", hdr); s != http.StatusUnauthorized || errorCode(t, body) != imerr.Unauthorized {
		t.Fatalf("upgrade with a revoked session: %d %s", s, body)
	}

	// Replay: an edge started later learns it from the stream.
	later := newFixture(t, nil)
	waitFor(t, "revocation replayed", func() bool { return status(later, revoked) == http.StatusUnauthorized })
	if s := status(later, kept); s != http.StatusOK {
		t.Fatalf("replay refused another session: %d", s)
	}
}

// lossFixture is an edge on a NATS server of its own, to lose its stream; the
// edge reaches NATS through a proxy that can cut it off.
type lossFixture struct {
	*fixture
	ns    *testenv.Env
	proxy *proxy
	uid   int64
}

func newLossFixture(t *testing.T) *lossFixture {
	t.Helper()
	ns := testenv.StartNATS(t, testenv.Options{})
	p := startProxy(t, strings.TrimPrefix(ns.NATS.URL, "nats://"))
	nc, err := nats.Connect("nats://"+p.addr(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	signer, err := auth.NewSigner(config.Auth{Secret: testSecret, AccessTTL: time.Hour, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{ID: "edge-loss", HTTPUserLimit: -1},
		gateway.Deps{NC: nc, Signer: signer, Log: zerolog.Nop(), AccessTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{gw: gw, srv: httptest.NewServer(gw.Handler()), nc: nc, signer: signer}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		f.srv.Close()
	})
	return &lossFixture{fixture: f, ns: ns, proxy: p, uid: newUser()}
}

// proxy forwards TCP connections to a server; cut drops them without a word
// from the server, as a network partition does.
type proxy struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	refused bool // cut: new connections are closed at once
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { _ = ln.Close(); p.cut(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			refused := p.refused
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if refused || err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection; while off, it refuses new ones.
func (p *proxy) cut(off bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = off
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (f *lossFixture) ready(t *testing.T) bool {
	s, _, _ := f.httpDo(t, "GET", "/readyz", "", "", nil)
	return s == http.StatusOK
}

// refused tells whether the edge refuses a token of session sid.
func (f *lossFixture) refused(t *testing.T, sid string) bool {
	s, _, _ := f.httpDo(t, "POST", "/api/v1/msg.send", f.token(t, f.uid, sid), "{}", nil)
	return s == http.StatusUnauthorized
}

// revoke publishes the revocation of sid through nc, as the account domain does.
func (f *lossFixture) revoke(t *testing.T, nc *nats.Conn, sid string) {
	t.Helper()
	data, _ := json.Marshal(wire.SessionRevoked{UserID: f.uid, SessionID: sid, At: time.Now().UnixMilli()})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject.EvtSessionRevoked, data); err != nil {
		t.Fatalf("publish revocation: %v", err)
	}
}

// before has the edge learn a few revocations, so that its consumer is past
// the first sequences when the stream goes.
func (f *lossFixture) before(t *testing.T) {
	t.Helper()
	waitFor(t, "ready", func() bool { return f.ready(t) })
	for _, sid := range []string{"old-1", "old-2", "old-3"} {
		f.revoke(t, f.ns.NC, sid)
	}
	waitFor(t, "revocations applied", func() bool { return f.refused(t, "old-3") })
}

// after checks that the edge follows the new stream from its first event and
// kept what it had learnt before.
func (f *lossFixture) after(t *testing.T, nc *nats.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, nc); err != nil { // as a worker does at start
		t.Fatal(err)
	}
	f.revoke(t, nc, "new-1") // sequence 1 of the new stream
	waitFor(t, "revocation in the new stream applied", func() bool { return f.refused(t, "new-1") })
	waitFor(t, "ready again", func() bool { return f.ready(t) })
	if !f.refused(t, "old-1") {
		t.Fatal("a revocation learnt before the loss was forgotten")
	}
	if f.refused(t, "other") {
		t.Fatal("a session never revoked is refused")
	}
}

// TestRevocationsAfterStreamLoss: an edge whose event stream is deleted says it
// is not ready while it cannot follow revocations, and once the stream is back
// (a worker re-creates it at start) it follows the new one from its first
// event.
func TestRevocationsAfterStreamLoss(t *testing.T) {
	f := newLossFixture(t)
	f.before(t)
	js, err := jetstream.New(f.ns.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, subject.EventStream); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "not ready without the stream", func() bool { return !f.ready(t) })
	f.after(t, f.ns.NC)
}

// TestRevocationsAfterNATSLostItsStore: NATS restarts on an empty store and a
// worker declares the stream again.
func TestRevocationsAfterNATSLostItsStore(t *testing.T) {
	f := newLossFixture(t)
	f.before(t)
	f.ns.RestartNATS(t, true)
	nc, err := nats.Connect(f.ns.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f.after(t, nc)
}

// TestRevocationsAfterPartition: the stream is deleted and created again while
// the edge is cut off from NATS, so that the edge hears of no deletion and its
// consumer comes back after the reconnect on the new stream, without an error:
// the edge must see that the stream is not the one it followed, rather than
// resume at its old sequence, past the new stream's first events.
func TestRevocationsAfterPartition(t *testing.T) {
	f := newLossFixture(t)
	f.before(t)
	f.proxy.cut(true)
	waitFor(t, "not ready while cut off", func() bool { return !f.ready(t) })
	js, err := jetstream.New(f.ns.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, subject.EventStream); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, f.ns.NC); err != nil {
		t.Fatal(err)
	}
	f.revoke(t, f.ns.NC, "new-1")
	f.proxy.cut(false)
	waitFor(t, "revocation in the new stream applied", func() bool { return f.refused(t, "new-1") })
	waitFor(t, "ready again", func() bool { return f.ready(t) })
}
