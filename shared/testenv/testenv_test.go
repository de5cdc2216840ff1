package testenv

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestStart(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	var n int
	if err := e.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != 0 {
		t.Fatalf("fresh users table: n=%d err=%v", n, err)
	}
	if err := e.RDB.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.FlushRedis(t)
	if e.RDB.Exists(ctx, "k").Val() != 0 {
		t.Fatal("flush kept key")
	}
	if err := e.NC.Publish("x", nil); err != nil {
		t.Fatal(err)
	}
}

func TestReadCommitted(t *testing.T) {
	e := Start(t)
	var name, level string
	for _, v := range []string{"transaction_isolation", "tx_isolation"} {
		if err := e.DB.QueryRow("SELECT @@" + v).Scan(&level); err == nil {
			name = v
			break
		}
	}
	if level != "READ-COMMITTED" {
		t.Fatalf("@@%s = %q, want READ-COMMITTED on every pooled connection", name, level)
	}
}

// TestNATSConfig: a server on the repository's dev.conf lets each user in with
// its password and no one without.
func TestNATSConfig(t *testing.T) {
	e := StartNATS(t, Options{NATSConfig: RepoFile(t, "nats-config/dev.conf")})
	for _, user := range []string{"edge", "functions", "admin"} {
		if nc := e.ConnectAs(t, user); !nc.IsConnected() {
			t.Fatalf("%s not connected", user)
		}
	}
	if nc, err := nats.Connect(e.NATS.URL); err == nil {
		nc.Close()
		t.Fatal("connected without credentials")
	}
	if got := e.NATS.User; got != "functions" || e.NC.Opts.User != "functions" {
		t.Fatalf("NC connects as %q", got)
	}
}
