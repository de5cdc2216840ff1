// Package testenv gives tests real services with clean state: a private in-process
// NATS server (JetStream on a temp dir), a private redis-server process (so FLUSHALL
// in one package cannot hurt another), a fresh migrated MySQL database on the server
// at MYSQL_DSN, and a fresh bucket on the S3 server at S3_ENDPOINT. `go tool task
// test` starts MySQL/MariaDB and the S3 server when they are not already listening.
package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/minio/minio-go/v7"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"natter/shared/blob"
	"natter/shared/bus"
	"natter/shared/cache"
	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/ids"
)

// Options choose how an Env is set up; the zero value is what Start uses.
type Options struct {
	// NATSConfig is a nats-server config file for the private server, e.g.
	// RepoFile(tb, "nats-config/dev.conf"): its accounts, users and permissions
	// apply. The Env's own listen address, store dir and no monitoring port
	// override the file's. Passwords come from NATS_<USER>_PASSWORD, as in
	// production; New sets test values for the four users of
	// nats-config/accounts.conf when they are unset. NC then connects as the
	// functions user, and ConnectAs as any user.
	NATSConfig string
	// RedisCluster starts a private 3-master Redis Cluster instead of one
	// redis-server; RDB is then a cluster client. NATTER_TEST_REDIS=cluster turns it
	// on for every Env, to run whole packages against a cluster.
	RedisCluster bool
	// MySQLReplica starts a private MariaDB primary and a replica following it
	// instead of using the server at MYSQL_DSN: DB is the primary, Replica the
	// replica's config. Tests skip when the machine has no mariadbd.
	MySQLReplica bool
}

// Env is one set of private services.
type Env struct {
	NATS  config.NATS
	MySQL config.MySQL
	// Replica is the replica of MySQL (Options.MySQLReplica), else zero.
	Replica config.MySQL
	Redis   config.Redis
	S3Conf  config.S3

	NC  *nats.Conn
	DB  *sql.DB
	RDB redis.UniversalClient

	dir       string
	accounts  bool // the NATS server runs a config with users
	ns        *natsserver.Server
	nsOpts    *natsserver.Options
	redisCmd  *exec.Cmd
	redisCmds []*exec.Cmd // a Redis Cluster's nodes (Options.RedisCluster)
	mysqlCmds []*exec.Cmd // a private primary and replica (Options.MySQLReplica)
	dbName    string
	rootDSN   string

	s3Once sync.Once
	s3     *minio.Client
	s3Err  error
}

// Start returns an Env for one test (or benchmark) and closes it when tb ends.
func Start(tb testing.TB) *Env {
	tb.Helper()
	e, err := New(context.Background())
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(e.Close)
	return e
}

// StartWith is Start with options.
func StartWith(tb testing.TB, o Options) *Env {
	tb.Helper()
	e, err := NewWith(context.Background(), o)
	if errors.Is(err, ErrNoMariaDB) {
		tb.Skipf("testenv: %v: a private primary and replica need MariaDB's server binaries", err)
	}
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(e.Close)
	return e
}

// StartNATS starts only the private NATS server of an Env (with natter's
// streams), for tests that need neither Redis nor a database.
func StartNATS(tb testing.TB, o Options) *Env {
	tb.Helper()
	e, err := newEnv(o)
	if err == nil {
		err = e.startNATS(o.NATSConfig)
	}
	if err != nil {
		e.Close()
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(e.Close)
	return e
}

// New starts an Env; Close releases it. TestMain users call it directly.
func New(ctx context.Context) (*Env, error) { return NewWith(ctx, Options{}) }

// NewWith is New with options.
func NewWith(ctx context.Context, o Options) (_ *Env, err error) {
	e, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // e, not the result, which a failed return has set to nil
			e.Close()
		}
	}()
	if err = e.startNATS(o.NATSConfig); err != nil {
		return nil, err
	}
	if o.RedisCluster || os.Getenv("NATTER_TEST_REDIS") == "cluster" {
		err = e.startRedisCluster(ctx, 3)
	} else {
		err = e.startRedis(ctx)
	}
	if err != nil {
		return nil, err
	}
	if o.MySQLReplica {
		err = e.startReplicated(ctx)
	} else {
		err = e.createDB(ctx)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func newEnv(o Options) (*Env, error) {
	dir, err := os.MkdirTemp("", "natter-testenv-")
	if err != nil {
		return nil, err
	}
	return &Env{dir: dir, accounts: o.NATSConfig != ""}, nil
}

// Test passwords of the users of nats-config/accounts.conf, used when the
// environment does not set them (`go tool task test` sets its dev defaults).
var testPasswords = map[string]string{
	"edge": "test-edge", "console": "test-console", "functions": "test-functions", "admin": "test-admin", "sys": "test-sys",
}

// PasswordVar is the environment variable nats-config/accounts.conf reads the
// password of user from.
func PasswordVar(user string) string { return "NATS_" + strings.ToUpper(user) + "_PASSWORD" }

func (e *Env) startNATS(conf string) error {
	opts := &natsserver.Options{
		// Enough for load-style tests; production servers set their own.
		MaxPayload: 8 << 20,
	}
	if conf != "" {
		for u, pw := range testPasswords {
			if _, set := os.LookupEnv(PasswordVar(u)); !set {
				if err := os.Setenv(PasswordVar(u), pw); err != nil {
					return err
				}
			}
		}
		var err error
		if opts, err = natsserver.ProcessConfigFile(conf); err != nil {
			return fmt.Errorf("nats config: %w", err)
		}
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.JetStream, opts.StoreDir = true, e.dir+"/nats"
	opts.NoLog, opts.NoSigs = true, true
	e.nsOpts = opts.Clone()
	ns, err := runNATS(opts)
	if err != nil {
		return err
	}
	e.ns = ns
	e.NATS = e.NATSAs("functions")
	if e.accounts {
		e.NC, err = bus.Connect(e.NATS, "natter-testenv", zerolog.Nop())
	} else {
		e.NC, err = nats.Connect(ns.ClientURL())
	}
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bus.EnsureStreams(ctx, e.NC)
}

func runNATS(opts *natsserver.Options) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server not ready")
	}
	return ns, nil
}

// RestartNATS stops the private NATS server and starts it again on the same
// address; with wipe, on an empty JetStream store, as a server restarted without
// its disk: every stream is lost. Connections reconnect on their own (at their
// ReconnectWait); nothing declares the streams again (a worker does at start:
// bus.EnsureStreams).
func (e *Env) RestartNATS(tb testing.TB, wipe bool) {
	tb.Helper()
	opts := e.nsOpts.Clone()
	opts.Port = e.ns.Addr().(*net.TCPAddr).Port
	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	if wipe {
		if err := os.RemoveAll(opts.StoreDir); err != nil {
			tb.Fatal(err)
		}
	}
	ns, err := runNATS(opts)
	if err != nil {
		tb.Fatalf("testenv: restart nats: %v", err)
	}
	e.ns = ns
}

// startRedis runs a private redis-server without persistence; only when none is on
// PATH does it fall back to REDIS_ADDR (and then tests must not FLUSHALL).
func (e *Env) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not on PATH: run the tests with `go tool task test`, which installs it")
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", e.dir, "--logfile", e.dir+"/redis.log")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	e.redisCmd = cmd
	e.Redis = config.Redis{Addr: "127.0.0.1:" + strconv.Itoa(port), PoolSize: 32}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rdb, err := cache.Open(ctx, e.Redis)
		if err == nil {
			e.RDB = rdb
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *Env) createDB(ctx context.Context) error {
	root := os.Getenv("MYSQL_DSN")
	if root == "" {
		root = "root@tcp(127.0.0.1:3306)/"
	}
	mc, err := mysql.ParseDSN(root)
	if err != nil {
		return fmt.Errorf("MYSQL_DSN: %w", err)
	}
	e.dbName = "natter_t_" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(ids.Token(6)))
	mc.DBName = e.dbName
	dsn := mc.FormatDSN()
	if err := db.CreateDatabase(ctx, dsn); err != nil {
		return fmt.Errorf("%w (is MySQL/MariaDB running? `go tool task test` starts it)", err)
	}
	mc.DBName = ""
	e.rootDSN = mc.FormatDSN()
	e.MySQL = config.MySQL{DSN: dsn, MaxOpenConns: 32, MaxIdleConns: 32}
	d, err := db.Open(ctx, e.MySQL)
	if err != nil {
		return err
	}
	e.DB = d
	return db.Migrate(ctx, d)
}

// S3 returns a client and config for a fresh bucket on the S3 server at
// S3_ENDPOINT (default 127.0.0.1:7070), failing the test if none answers.
func (e *Env) S3(tb testing.TB) (*minio.Client, config.S3) {
	tb.Helper()
	e.s3Once.Do(func() {
		c, err := config.Parse[struct {
			S3 config.S3 `envPrefix:"S3_"`
		}]()
		if err != nil {
			e.s3Err = err
			return
		}
		e.S3Conf = c.S3
		e.S3Conf.Bucket = "natter-t-" + strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(ids.Token(6)))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.s3, e.s3Err = blob.Open(ctx, e.S3Conf)
	})
	if e.s3Err != nil {
		tb.Fatalf("testenv: s3 (`go tool task test` starts the S3 server): %v", e.s3Err)
	}
	return e.s3, e.S3Conf
}

// FlushRedis wipes the private Redis, as a restart without persistence would.
func (e *Env) FlushRedis(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	var err error
	if cc, ok := e.RDB.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
	} else {
		err = e.RDB.FlushAll(ctx).Err()
	}
	if err != nil {
		tb.Fatalf("flushall: %v", err)
	}
}

// Close stops everything New started and drops the database and bucket.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.s3 != nil {
		for obj := range e.s3.ListObjects(ctx, e.S3Conf.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err == nil {
				_ = e.s3.RemoveObject(ctx, e.S3Conf.Bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = e.s3.RemoveBucket(ctx, e.S3Conf.Bucket)
	}
	if e.DB != nil {
		_, _ = e.DB.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+e.dbName+"`")
		_ = e.DB.Close()
	}
	if e.RDB != nil {
		_ = e.RDB.Close()
	}
	for _, cmd := range append(append(e.redisCmds, e.redisCmd), e.mysqlCmds...) {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	if e.NC != nil {
		e.NC.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// Connect opens another NATS connection to the Env's server (closed with tb);
// with a NATSConfig, as the functions user.
func (e *Env) Connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	if e.accounts {
		return e.ConnectAs(tb, "functions")
	}
	nc, err := nats.Connect(e.NATS.URL)
	if err != nil {
		tb.Fatalf("nats connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// NATSAs is how a process connects to the Env's server as user (its password
// from PasswordVar); on a server without a NATSConfig, just the URL.
func (e *Env) NATSAs(user string) config.NATS {
	c := config.NATS{URL: e.ns.ClientURL()}
	if e.accounts {
		c.User, c.Pass = user, os.Getenv(PasswordVar(user))
	}
	return c
}

// ConnectAs connects to the Env's server as user, with the user's inbox prefix
// as bus.Connect sets it, then opts (closed with tb).
func (e *Env) ConnectAs(tb testing.TB, user string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	c := e.NATSAs(user)
	opts = append([]nats.Option{nats.UserInfo(c.User, c.Pass), nats.CustomInboxPrefix(bus.InboxPrefix(user))}, opts...)
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		tb.Fatalf("nats connect as %s: %v", user, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// RepoFile is the path of a file of the repository (rel, slash-separated, from
// its root), found from the test's working directory.
func RepoFile(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module natter\n") {
			return filepath.Join(dir, filepath.FromSlash(rel))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("testenv: no natter go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// freePorts returns n distinct free ports: all are held open until each is known,
// so that the kernel cannot hand the same one out twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
