// Package fntest starts natter's functions in-process on a testenv, for tests of
// the domains and of the edge.
package fntest

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/message"
	"natter/functions/worker"
	"natter/shared/auth"
	"natter/shared/config"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/testenv"
)

// Secret signs tokens in tests.
const Secret = "natter-test-secret-0123456789"

// AuthConfig is the token config functions and edges share in tests.
var AuthConfig = config.Auth{Secret: Secret, AccessTTL: 15 * time.Minute, RefreshTTL: 24 * time.Hour}

// Options tune the functions under test.
type Options struct {
	Account   account.Config
	Message   message.Config
	Instances int
}

// Start serves every domain on e's NATS until tb ends, and returns the signer
// that verifies the tokens they issue.
func Start(tb testing.TB, e *testenv.Env, o Options) *auth.Signer {
	tb.Helper()
	signer, err := auth.NewSigner(AuthConfig)
	if err != nil {
		tb.Fatal(err)
	}
	o.Account.RefreshTTL = AuthConfig.RefreshTTL
	log := zerolog.Nop()
	if testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	eps, err := worker.Endpoints(ctx, nil, worker.Deps{
		DB: e.DB, Redis: e.RDB, NC: e.NC, Signer: signer, IDs: ids.NewGenerator(ids.RandomNode()), Log: log,
		Account: o.Account, Message: o.Message,
	})
	if err != nil {
		tb.Fatal(err)
	}
	inst := o.Instances
	if inst == 0 {
		inst = 8
	}
	srv, err := endpoint.Serve(context.Background(), e.NC, log, nil, endpoint.Config{Instances: inst, Timeout: 10 * time.Second}, eps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Stop() })
	return signer
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
