// Package fntest starts natter's functions in-process on a testenv, for tests of
// the domains and of the edge.
package fntest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/admin"
	"natter/functions/file"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/presence"
	"natter/functions/push"
	"natter/functions/risk"
	"natter/functions/search"
	"natter/functions/worker"
	"natter/shared/auth"
	"natter/shared/blob"
	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/imerr"
	"natter/shared/testenv"
)

// Secret signs tokens in tests.
const Secret = "natter-test-secret-0123456789"

// AuthConfig is the token config functions and edges share in tests.
var AuthConfig = config.Auth{Secret: Secret, AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour, Dev: true}

// AdminAuthConfig is the operator-token config functions and edges share in tests.
var AdminAuthConfig = config.AdminAuth{Secret: "natter-test-admin-secret-0123456789", AccessTTL: 30 * time.Minute, Dev: true}

// OperatorSigner signs and verifies operator tokens as the workers and edges of
// a test do.
func OperatorSigner(tb testing.TB) *auth.Signer {
	tb.Helper()
	s, err := auth.NewOperatorSigner(AdminAuthConfig, AuthConfig)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Options tune the functions under test.
type Options struct {
	// Reads routes history, sync and conv.list (db.Reader); nil: the primary.
	Reads    *db.Reader
	Account  account.Config
	Presence presence.Config
	Message  message.Config
	Group    group.Config
	Push     push.Config
	Admin    admin.Config
	// PushProviders replaces the push providers Push configures, by name.
	PushProviders map[string]push.Provider
	// Metrics, when set, registers the functions' metrics (to read them).
	Metrics prometheus.Registerer
	// Relations, when set, is the workers' send-permission cache (to look at it).
	Relations *friend.Relations
	// S3, when set, gives the file domain a fresh bucket of the Env's S3 server
	// (testenv.Env.S3); without it the file ops answer unavailable.
	S3 bool
	// S3PublicEndpoint, with S3, is the host:port presigned URLs name
	// (S3_PUBLIC_ENDPOINT); empty: the S3 server's own.
	S3PublicEndpoint string
	File             file.Config
	// InFlight bounds the requests handled at once, in all and of one op
	// (endpoint.Config); 0 is the production default.
	InFlight int
	// Banner bans users from the review queue (risk); nil: not available.
	Banner risk.Banner
	// Search configures the search domain (Search.IndexerOff: the test runs
	// the indexer itself).
	Search search.Config
}

// Start serves every domain on e's NATS until tb ends, and returns the signer
// that verifies the tokens they issue.
func Start(tb testing.TB, e *testenv.Env, o Options) *auth.Signer {
	tb.Helper()
	return serve(tb, e, e.NC, o).signer
}

// Worker is one worker process's worth of functions, on a NATS connection of its
// own, so that several serve the same queue groups and one can die alone.
type Worker struct {
	NC     *nats.Conn
	signer *auth.Signer
}

// StartWorker serves every domain on a NATS connection of its own until tb ends
// (or Kill). Workers started on one Env share its database and Redis and split
// the requests between them, as processes do.
func StartWorker(tb testing.TB, e *testenv.Env, o Options) *Worker {
	tb.Helper()
	return serve(tb, e, e.Connect(tb), o)
}

// Signer verifies the tokens the worker issues.
func (w *Worker) Signer() *auth.Signer { return w.signer }

// Kill stops the worker as kill -9 would, as far as NATS and its callers can
// tell: its connection closes without draining, so the requests it holds are
// never answered, and what it was committing is stored but never pushed. (The
// transactions already under way still finish in the test process: a message
// stored without a reply is the case retries must handle.)
func (w *Worker) Kill() { w.NC.Close() }

func serve(tb testing.TB, e *testenv.Env, nc *nats.Conn, o Options) *Worker {
	tb.Helper()
	signer, err := auth.NewSigner(AuthConfig)
	if err != nil {
		tb.Fatal(err)
	}
	o.Account.RefreshTTL = AuthConfig.RefreshTTL
	if o.Admin.ScrapeTargets == nil {
		o.Admin.ScrapeTargets = []string{} // not the default: whatever a dev stack on this machine serves
	}
	if o.Message.Writers == 0 {
		o.Message.Writers = 2 // sends go through group commit, on two shards
	}
	log := zerolog.Nop()
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	scripts, err := db.OpenScripts(ctx, config.MySQL{DSN: e.MySQL.DSN, MaxOpenConns: 8, MaxIdleConns: 8})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = scripts.Close() })
	d := worker.Deps{File: o.File}
	if o.S3 {
		d.S3, _ = e.S3(tb)
		d.S3Bucket = e.S3Conf.Bucket
		pc := e.S3Conf
		pc.PublicEndpoint = o.S3PublicEndpoint
		if d.Presign, err = blob.Presigner(pc); err != nil {
			tb.Fatal(err)
		}
	}
	eps, err := worker.Endpoints(ctx, nil, worker.Deps{
		S3: d.S3, Presign: d.Presign, S3Bucket: d.S3Bucket, File: d.File,
		DB: e.DB, ScriptDB: scripts, Reads: o.Reads, Redis: e.RDB, NC: nc, Signer: signer, IDs: ids.NewGenerator(ids.RandomNode()), Log: log,
		Account: o.Account, Message: o.Message, Group: o.Group, Relations: o.Relations, Presence: o.Presence,
		Push: o.Push, PushProviders: o.PushProviders, Metrics: o.Metrics, Banner: o.Banner, Search: o.Search,
		AdminSigner: OperatorSigner(tb), Admin: o.Admin,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := endpoint.Serve(context.Background(), nc, log, o.Metrics, endpoint.Config{InFlight: o.InFlight, InFlightPerOp: o.InFlight, Timeout: 10 * time.Second}, eps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	return &Worker{NC: nc, signer: signer}
}

// User registers username (password "password-123") and logs in on device; it
// returns the caller identity the edge would derive from the access token, and the
// tokens.
func User(tb testing.TB, e *testenv.Env, username, device string) (endpoint.Caller, account.Tokens) {
	tb.Helper()
	ctx := context.Background()
	if _, err := endpoint.Call[account.RegisterResp](ctx, e.NC, "account.register", endpoint.Caller{},
		account.RegisterReq{Username: username, Password: "password-123"}); err != nil {
		tb.Fatalf("register %s: %v", username, err)
	}
	return Login(tb, e, username, device)
}

// Login logs username in on device.
func Login(tb testing.TB, e *testenv.Env, username, device string) (endpoint.Caller, account.Tokens) {
	tb.Helper()
	t, err := endpoint.Call[account.Tokens](context.Background(), e.NC, "account.login", endpoint.Caller{},
		account.LoginReq{Username: username, Password: "password-123", DeviceID: device})
	if err != nil {
		tb.Fatalf("login %s: %v", username, err)
	}
	return endpoint.Caller{UserID: t.UserID, DeviceID: device, SessionID: t.SessionID}, t
}

var seedHash = sync.OnceValue(func() string { return account.HashPassword("password-123") })

// SeedUsers inserts n users named prefix0..prefix<n-1> (password "password-123")
// with batched INSERTs, far faster than n register calls, and returns their ids.
func SeedUsers(tb testing.TB, e *testenv.Env, prefix string, n int) []int64 {
	tb.Helper()
	ids := make([]int64, 0, n)
	for start := 0; start < n; start += 1000 {
		end := min(start+1000, n)
		q := "INSERT INTO users (username, password_hash, nickname) VALUES "
		args := make([]any, 0, 3*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				q += ","
			}
			q += "(?, ?, ?)"
			name := fmt.Sprintf("%s%d", prefix, i)
			args = append(args, name, seedHash(), name)
		}
		if _, err := e.DB.Exec(q, args...); err != nil {
			tb.Fatalf("seed users: %v", err)
		}
	}
	rows, err := e.DB.Query("SELECT id FROM users WHERE username LIKE ? ORDER BY id", prefix+"%")
	if err != nil {
		tb.Fatalf("seeded ids: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != n {
		tb.Fatalf("seeded %d users, found %d with prefix %q", n, len(ids), prefix)
	}
	return ids
}

// Befriend makes a and b friends through friend.request and friend.respond.
func Befriend(tb testing.TB, e *testenv.Env, a, b endpoint.Caller) {
	tb.Helper()
	ctx := context.Background()
	r, err := endpoint.Call[friend.RequestResp](ctx, e.NC, "friend.request", a, friend.RequestReq{To: b.UserID})
	if err != nil {
		tb.Fatalf("friend.request: %v", err)
	}
	if r.Status != friend.StatusPending {
		return
	}
	yes := true
	if _, err := endpoint.Call[json.RawMessage](ctx, e.NC, "friend.respond", b, friend.RespondReq{RequestID: r.RequestID, Accept: &yes}); err != nil {
		tb.Fatalf("friend.respond: %v", err)
	}
}

// Call sends req to op as c through e's NATS (30 s timeout), as the edge would.
func Call[Resp any](tb testing.TB, e *testenv.Env, op string, c endpoint.Caller, req any) (Resp, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return endpoint.Call[Resp](ctx, e.NC, op, c, req)
}

// Must is Call that fails the test on an error.
func Must[Resp any](tb testing.TB, e *testenv.Env, op string, c endpoint.Caller, req any) Resp {
	tb.Helper()
	r, err := Call[Resp](tb, e, op, c, req)
	if err != nil {
		tb.Fatalf("%s: %v", op, err)
	}
	return r
}

// WantCode fails the test unless err carries code ("" means no error).
func WantCode(tb testing.TB, err error, code imerr.Code) {
	tb.Helper()
	if got := imerr.CodeOf(err); got != code {
		tb.Fatalf("got %v, want %q", err, code)
	}
}

// Operator creates a back-office operator named name with role (password
// "operator-pass-1") and logs it in; it returns the caller an edge would derive
// from its operator token, and the token.
func Operator(tb testing.TB, e *testenv.Env, name, role string) (endpoint.Caller, string) {
	tb.Helper()
	ctx := context.Background()
	if _, err := admin.New(admin.Deps{DB: e.DB}).CreateOperator(ctx, name, "operator-pass-1", role); err != nil {
		tb.Fatalf("create operator %s: %v", name, err)
	}
	r, err := endpoint.Call[admin.LoginResp](ctx, e.NC, "admin.login", endpoint.Caller{ClientIP: "203.0.113.7"},
		admin.LoginReq{Username: name, Password: "operator-pass-1"})
	if err != nil {
		tb.Fatalf("admin.login %s: %v", name, err)
	}
	claims, err := OperatorSigner(tb).Verify(r.Token)
	if err != nil {
		tb.Fatal(err)
	}
	return endpoint.Caller{UserID: claims.UserID, SessionID: claims.SessionID, Role: claims.Role, ClientIP: "203.0.113.7"}, r.Token
}
