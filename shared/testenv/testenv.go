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

	"natter/shared/blob"
	"natter/shared/bus"
	"natter/shared/cache"
	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/ids"
)

// Env is one set of private services.
type Env struct {
	NATS   config.NATS
	MySQL  config.MySQL
	Redis  config.Redis
	S3Conf config.S3

	NC  *nats.Conn
	DB  *sql.DB
	RDB *redis.Client

	dir      string
	ns       *natsserver.Server
	redisCmd *exec.Cmd
	dbName   string
	rootDSN  string

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

// New starts an Env; Close releases it. TestMain users call it directly.
func New(ctx context.Context) (e *Env, err error) {
	dir, err := os.MkdirTemp("", "natter-testenv-")
	if err != nil {
		return nil, err
	}
	e = &Env{dir: dir}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err = e.startNATS(); err != nil {
		return nil, err
	}
	if err = e.startRedis(ctx); err != nil {
		return nil, err
	}
	if err = e.createDB(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) startNATS() error {
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  e.dir + "/nats",
		NoLog:     true,
		NoSigs:    true,
		// Enough for load-style tests; production servers set their own.
		MaxPayload: 8 << 20,
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready")
	}
	e.ns = ns
	e.NATS = config.NATS{URL: ns.ClientURL()}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	e.NC = nc
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bus.EnsureStreams(ctx, nc)
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
	if err := e.RDB.FlushAll(context.Background()).Err(); err != nil {
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
	if e.redisCmd != nil && e.redisCmd.Process != nil {
		_ = e.redisCmd.Process.Kill()
		_ = e.redisCmd.Wait()
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

// Connect opens another NATS connection to the Env's server (closed with tb).
func (e *Env) Connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(e.NATS.URL)
	if err != nil {
		tb.Fatalf("nats connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
