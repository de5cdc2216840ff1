package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"natter/shared/endpoint"
	"natter/shared/op"
	"natter/shared/subject"
	"natter/shared/testenv"
)

// roles are the users of nats-config/accounts.conf, in the order of the
// matrix's columns. ops is commented out there (off by default). console is an
// edge that also serves the back office (im.v1.admin.>); edge serves chat only.
var roles = []string{"edge", "functions", "admin", "ops", "console"}

// matrix is what each user may do on each subject: "p" publish, "s" subscribe,
// "ps" both, "-" neither; one column per role. docs/architecture.md shows it.
var matrix = []struct {
	name, subject string
	may           [5]string
}{
	{"client ops", "im.v1.msg.send", [5]string{"p", "ps", "-", "-", "p"}},
	{"admin ops", "im.v1.admin.users.ban", [5]string{"-", "ps", "-", "-", "p"}},
	{"internal ops", "im.internal.session.connect", [5]string{"p", "s", "-", "-", "p"}},
	{"deliveries", "im.deliver.42", [5]string{"s", "p", "-", "-", "s"}},
	{"events", "im.evt.session.revoked", [5]string{"-", "ps", "s", "s", "-"}},
	{"config events", "im.evt.config.changed", [5]string{"s", "ps", "s", "s", "s"}},
	{"edge inbox", "_INBOX.edge.x.1", [5]string{"s", "-", "-", "-", "-"}},
	{"functions inbox", "_INBOX.functions.x.1", [5]string{"-", "s", "-", "-", "-"}},
	{"admin inbox", "_INBOX.admin.x.1", [5]string{"-", "-", "s", "-", "-"}},
	{"ops inbox", "_INBOX.ops.x.1", [5]string{"-", "-", "-", "s", "-"}},
	{"console inbox", "_INBOX.console.x.1", [5]string{"-", "-", "-", "-", "s"}},
	{"default inbox", "_INBOX.x.1", [5]string{"-", "-", "-", "-", "-"}},
	{"every inbox", "_INBOX.>", [5]string{"-", "-", "-", "-", "-"}},
	{"micro discovery", "$SRV.PING", [5]string{"-", "s", "p", "p", "-"}},
	{"micro stats", "$SRV.STATS.im-message", [5]string{"-", "s", "p", "p", "-"}},
	{"JetStream account info", "$JS.API.INFO", [5]string{"p", "p", "p", "p", "p"}},
	{"stream info", "$JS.API.STREAM.INFO.IM_EVENTS", [5]string{"p", "p", "p", "p", "p"}},
	{"stream list", "$JS.API.STREAM.LIST", [5]string{"-", "p", "p", "p", "-"}},
	{"stream names", "$JS.API.STREAM.NAMES", [5]string{"-", "p", "p", "p", "-"}},
	{"stream get message", "$JS.API.STREAM.MSG.GET.IM_EVENTS", [5]string{"-", "p", "p", "p", "-"}},
	{"stream create", "$JS.API.STREAM.CREATE.IM_EVENTS", [5]string{"-", "p", "-", "p", "-"}},
	{"stream update", "$JS.API.STREAM.UPDATE.IM_EVENTS", [5]string{"-", "p", "-", "p", "-"}},
	{"stream delete", "$JS.API.STREAM.DELETE.IM_EVENTS", [5]string{"-", "-", "-", "p", "-"}},
	{"stream purge", "$JS.API.STREAM.PURGE.IM_EVENTS", [5]string{"-", "-", "-", "p", "-"}},
	{"stream delete message", "$JS.API.STREAM.MSG.DELETE.IM_EVENTS", [5]string{"-", "-", "-", "p", "-"}},
	{"consumer create on revocations", "$JS.API.CONSUMER.CREATE.IM_EVENTS.c1.im.evt.session.revoked", [5]string{"p", "p", "-", "p", "p"}},
	{"consumer create on other events", "$JS.API.CONSUMER.CREATE.IM_EVENTS.c1.im.evt.message.sent", [5]string{"-", "p", "-", "p", "-"}},
	{"consumer create, no filter", "$JS.API.CONSUMER.CREATE.IM_EVENTS", [5]string{"-", "p", "-", "p", "-"}},
	{"durable consumer create", "$JS.API.CONSUMER.DURABLE.CREATE.IM_EVENTS.d1", [5]string{"-", "p", "-", "p", "-"}},
	{"consumer info", "$JS.API.CONSUMER.INFO.IM_EVENTS.c1", [5]string{"p", "p", "p", "p", "p"}},
	{"consumer list", "$JS.API.CONSUMER.LIST.IM_EVENTS", [5]string{"-", "p", "p", "p", "-"}},
	{"consumer names", "$JS.API.CONSUMER.NAMES.IM_EVENTS", [5]string{"-", "p", "p", "p", "-"}},
	{"consumer next", "$JS.API.CONSUMER.MSG.NEXT.IM_EVENTS.c1", [5]string{"p", "p", "-", "p", "p"}},
	{"consumer delete", "$JS.API.CONSUMER.DELETE.IM_EVENTS.c1", [5]string{"-", "p", "-", "p", "-"}},
	{"ack", "$JS.ACK.IM_EVENTS.c1.1.1.1.0.0", [5]string{"-", "p", "-", "p", "-"}},
	{"key-value", "$KV.flags.x", [5]string{"-", "ps", "-", "-", "-"}},
}

// TestPermissions checks each row of the matrix on a server running
// nats-config/dev.conf (the real accounts.conf), where ops is off: it cannot
// connect.
func TestPermissions(t *testing.T) {
	e := testenv.StartNATS(t, testenv.Options{NATSConfig: testenv.RepoFile(t, "nats-config/dev.conf")})
	for i, user := range roles {
		if user != "ops" {
			checkColumn(t, e, user, i)
		}
	}
	t.Setenv(testenv.PasswordVar("ops"), "test-ops")
	if nc, err := nats.Connect(e.NATS.URL, nats.UserInfo("ops", "test-ops")); err == nil {
		nc.Close()
		t.Fatal("ops connected while off")
	}
}

// TestPermissionsOps turns ops on as accounts.conf says (the lines starting
// "#ops ") and checks its column.
func TestPermissionsOps(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"dev.conf", "accounts.conf"} {
		b, err := os.ReadFile(testenv.RepoFile(t, "nats-config/"+f))
		if err != nil {
			t.Fatal(err)
		}
		on := regexp.MustCompile(`(?m)^#ops `).ReplaceAll(b, nil)
		if f == "accounts.conf" && bytes.Equal(on, b) {
			t.Fatal("accounts.conf has no #ops lines")
		}
		if err := os.WriteFile(filepath.Join(dir, f), on, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(testenv.PasswordVar("ops"), "test-ops")
	e := testenv.StartNATS(t, testenv.Options{NATSConfig: filepath.Join(dir, "dev.conf")})
	checkColumn(t, e, "ops", 3)
}

// checkColumn checks what user may do on each subject of the matrix. NATS
// refuses a publish or a subscription asynchronously: the connection's last
// error names it once a round trip is done, and a subscription's own error
// arrives with PermissionErrOnSubscribe.
func checkColumn(t *testing.T, e *testenv.Env, user string, col int) {
	t.Helper()
	nc := e.ConnectAs(t, user, nats.PermissionErrOnSubscribe(true), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	for _, tt := range matrix {
		want := tt.may[col]
		if got := mayPublish(t, nc, tt.subject); got != strings.Contains(want, "p") {
			t.Errorf("%s publish on %s (%s): allowed=%v, want %q", user, tt.subject, tt.name, got, want)
		}
		if got := maySubscribe(t, nc, tt.subject); got != strings.Contains(want, "s") {
			t.Errorf("%s subscribe to %s (%s): allowed=%v, want %q", user, tt.subject, tt.name, got, want)
		}
	}
}

// mayPublish publishes an empty message to subj and tells whether the server
// took it. The server answers a refused publish with an -ERR before the PONG of
// the flush, so the connection's last error names subj by then.
func mayPublish(t *testing.T, nc *nats.Conn, subj string) bool {
	t.Helper()
	before := nc.LastError()
	if err := nc.Publish(subj, nil); err != nil {
		t.Fatalf("publish %s: %v", subj, err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	err := nc.LastError()
	return err == before || !refused(err, "Publish to \""+subj+"\"")
}

// maySubscribe subscribes to subj and tells whether the server took it.
func maySubscribe(t *testing.T, nc *nats.Conn, subj string) bool {
	t.Helper()
	sub, err := nc.SubscribeSync(subj)
	if err != nil {
		t.Fatalf("subscribe %s: %v", subj, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("flush: %v", err)
	}
	_, err = sub.NextMsg(20 * time.Millisecond)
	return !refused(err, "Subscription to \""+subj+"\"")
}

func refused(err error, what string) bool {
	return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), what)
}

// TestRepliesUnderPermissions: with inboxes per user, functions still answer
// the edge's requests (allow_responses), internal ones too, on their own
// subjects only; and every micro service of one worker process answers an
// operator's `nats micro list` on the same reply subject.
func TestRepliesUnderPermissions(t *testing.T) {
	e := testenv.StartNATS(t, testenv.Options{NATSConfig: testenv.RepoFile(t, "nats-config/dev.conf")})
	functions, edge, admin, console := e.ConnectAs(t, "functions"), e.ConnectAs(t, "edge"), e.ConnectAs(t, "admin"), e.ConnectAs(t, "console")
	echo := func(_ context.Context, c endpoint.Caller, r json.RawMessage) (json.RawMessage, error) { return r, nil }
	var eps []endpoint.Endpoint
	for _, s := range op.Services { // one op of each service: one micro service each
		eps = append(eps, endpoint.Handle(op.ByService(s.Name)[0].Name, echo))
	}
	eps = append(eps, endpoint.Handle("session.connect", echo))
	srv, err := endpoint.Serve(context.Background(), functions, zerolog.Nop(), nil, endpoint.Config{}, eps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ep := range eps {
		nc := edge
		if ep.Op.BackOffice() { // the back office's ops: only an edge serving it (console) may call them
			nc = console
		}
		out, err := endpoint.Request(ctx, nc, ep.Op.Name, endpoint.Caller{UserID: 1}, []byte(`{"k":1}`))
		if err != nil || string(out) != `{"k":1}` {
			t.Fatalf("edge request %s: %q, %v", ep.Op.Name, out, err)
		}
	}
	// Not on the client ops' subjects: an edge that routed a client's frame there
	// would find nobody.
	if _, err := edge.RequestWithContext(ctx, subject.Request("session.connect"), nil); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("internal op on %s: %v", subject.Request("session.connect"), err)
	}

	inbox := admin.NewRespInbox()
	sub, err := admin.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.PublishRequest("$SRV.PING", inbox, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < len(op.Services) {
		m, err := sub.NextMsg(2 * time.Second)
		if err != nil {
			t.Fatalf("micro ping: %d of %d services answered: %v", len(seen), len(op.Services), err)
		}
		var p micro.Ping
		if err := json.Unmarshal(m.Data, &p); err != nil {
			t.Fatal(err)
		}
		seen[p.Name] = true
	}
	for _, nc := range []*nats.Conn{functions, edge, admin, console} {
		if err := nc.LastError(); err != nil {
			t.Errorf("%s: %v", nc.Opts.User, err)
		}
	}
}

// TestOperatorReadOnly: what `nats stream info|ls|get` and `nats consumer ls` do
// works as admin; deleting or purging IM_EVENTS fails as admin and as functions,
// and the stream keeps its events.
func TestOperatorReadOnly(t *testing.T) {
	e := testenv.StartNATS(t, testenv.Options{NATSConfig: testenv.RepoFile(t, "nats-config/dev.conf")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.NC.Publish(subject.EvtSessionRevoked, []byte(`{"session_id":"s1"}`)); err != nil {
		t.Fatal(err)
	}
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	admin, err := jetstream.New(e.ConnectAs(t, "admin", quiet))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := admin.Stream(ctx, subject.EventStream)
	if err != nil {
		t.Fatalf("admin: stream info: %v", err)
	}
	waitMsgs := time.Now().Add(5 * time.Second)
	for stream.CachedInfo().State.Msgs == 0 && time.Now().Before(waitMsgs) {
		time.Sleep(10 * time.Millisecond)
		if _, err := stream.Info(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := stream.GetMsg(ctx, 1); err != nil || m.Subject != subject.EvtSessionRevoked {
		t.Fatalf("admin: get message 1: %+v, %v", m, err)
	}
	names := admin.StreamNames(ctx)
	for range names.Name() {
	}
	if err := names.Err(); err != nil {
		t.Fatalf("admin: stream names: %v", err)
	}
	consumers := stream.ListConsumers(ctx)
	for range consumers.Info() {
	}
	if err := consumers.Err(); err != nil {
		t.Fatalf("admin: consumer list: %v", err)
	}

	functions, err := jetstream.New(e.ConnectAs(t, "functions", quiet))
	if err != nil {
		t.Fatal(err)
	}
	for who, js := range map[string]jetstream.JetStream{"admin": admin, "functions": functions} {
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if err := js.DeleteStream(short, subject.EventStream); err == nil {
			t.Errorf("%s deleted the stream", who)
		}
		if s, err := js.Stream(short, subject.EventStream); err == nil {
			if err := s.Purge(short); err == nil {
				t.Errorf("%s purged the stream", who)
			}
		}
		cancel()
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream after the attempts: %+v, %v", info, err)
	}
}
