package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"natter/shared/endpoint"
	"natter/shared/op"
	"natter/shared/subject"
	"natter/shared/testenv"
)

// roles are the users of nats-config/accounts.conf the matrix covers.
var roles = []string{"edge", "functions", "admin"}

// matrix is what each user may do on each subject family: "p" publish, "s"
// subscribe, "ps" both, "-" neither. The users are in the order of roles.
var matrix = []struct {
	name, subject string
	may           []string
}{
	{"requests", "im.v1.msg.send", []string{"p", "ps", "-"}},
	{"internal ops", "im.internal.session.connect", []string{"p", "s", "-"}},
	{"deliveries", "im.deliver.42", []string{"s", "p", "-"}},
	{"events", "im.evt.session.revoked", []string{"-", "ps", "s"}},
	{"config events", "im.evt.config.changed", []string{"s", "ps", "s"}},
	{"edge inbox", "_INBOX.edge.x.1", []string{"s", "-", "-"}},
	{"functions inbox", "_INBOX.functions.x.1", []string{"-", "s", "-"}},
	{"admin inbox", "_INBOX.admin.x.1", []string{"-", "-", "s"}},
	{"default inbox", "_INBOX.x.1", []string{"-", "-", "-"}},
	{"every inbox", "_INBOX.>", []string{"-", "-", "-"}},
	{"micro discovery", "$SRV.PING", []string{"-", "s", "p"}},
	{"micro stats", "$SRV.STATS.im-message", []string{"-", "s", "p"}},
}

// TestPermissions checks each row of the matrix on a server running
// nats-config/dev.conf (the real accounts.conf). NATS refuses a publish or a
// subscription asynchronously: the connection's last error names it after a
// round trip, and a subscription's own error arrives with PermissionErrOnSubscribe.
func TestPermissions(t *testing.T) {
	e := testenv.StartNATS(t, testenv.Options{NATSConfig: testenv.RepoFile(t, "nats-config/dev.conf")})
	checkMatrix(t, e, roles, matrix)
}

func checkMatrix(t *testing.T, e *testenv.Env, users []string, rows []struct {
	name, subject string
	may           []string
}) {
	t.Helper()
	for i, user := range users {
		nc := e.ConnectAs(t, user, nats.PermissionErrOnSubscribe(true), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		for _, tt := range rows {
			want := tt.may[i]
			if got := mayPublish(t, nc, tt.subject); got != strings.Contains(want, "p") {
				t.Errorf("%s publish on %s (%s): allowed=%v, want %q", user, tt.subject, tt.name, got, want)
			}
			if got := maySubscribe(t, nc, tt.subject); got != strings.Contains(want, "s") {
				t.Errorf("%s subscribe to %s (%s): allowed=%v, want %q", user, tt.subject, tt.name, got, want)
			}
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
	functions, edge, admin := e.ConnectAs(t, "functions"), e.ConnectAs(t, "edge"), e.ConnectAs(t, "admin")
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
		out, err := endpoint.Request(ctx, edge, ep.Op.Name, endpoint.Caller{UserID: 1}, []byte(`{"k":1}`))
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
	for _, nc := range []*nats.Conn{functions, edge, admin} {
		if err := nc.LastError(); err != nil {
			t.Errorf("%s: %v", nc.Opts.User, err)
		}
	}
}
