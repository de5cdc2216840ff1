// Command functions is the worker: it hosts all or a chosen subset of natter's
// domains as NATS micro services. Run more processes to scale; each registers in
// the same queue groups. `functions migrate` applies the schema and exits;
// `functions push-replay` sends the offline pushes of the dead-letter stream
// again and exits; `functions admin-create <username> <role>` adds a back-office
// operator (the password from ADMIN_PASSWORD, else standard input) and exits;
// `functions reindex` rebuilds the message search index from the messages table
// and exits.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	runtimedebug "runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"natter/shared/tracing"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"natter/functions/account"
	"natter/functions/admin"
	"natter/functions/file"
	"natter/functions/friend"
	"natter/functions/group"
	"natter/functions/message"
	"natter/functions/msgevent"
	"natter/functions/presence"
	"natter/functions/push"
	"natter/functions/search"
	"natter/functions/worker"
	"natter/shared/auth"
	"natter/shared/blob"
	"natter/shared/bus"
	"natter/shared/cache"
	"natter/shared/config"
	"natter/shared/db"
	"natter/shared/debug"
	"natter/shared/endpoint"
	"natter/shared/ids"
	"natter/shared/logging"
)

// Config is the worker's whole configuration, from the environment.
type Config struct {
	NATS      config.NATS      `envPrefix:"NATS_"`
	MySQL     config.MySQL     `envPrefix:"MYSQL_"`
	Redis     config.Redis     `envPrefix:"REDIS_"`
	Auth      config.Auth      `envPrefix:"AUTH_"`
	Admin     admin.Config     `envPrefix:"ADMIN_"`
	AdminAuth config.AdminAuth `envPrefix:"ADMIN_AUTH_"`
	Log       config.Log       `envPrefix:"LOG_"`
	Endpoint  endpoint.Config  `envPrefix:"ENDPOINT_"`
	Account   account.Config   `envPrefix:"ACCOUNT_"`
	Message   message.Config   `envPrefix:"MESSAGE_"`
	Group     group.Config     `envPrefix:"GROUP_"`
	Friend    friend.Config    `envPrefix:"FRIEND_"`
	MsgEvent  msgevent.Config  `envPrefix:"MSGEVENT_"`
	Presence  presence.Config  `envPrefix:"PRESENCE_"`
	File      file.Config      `envPrefix:"FILE_"`
	S3        config.S3        `envPrefix:"S3_"`
	Push      push.Config      `envPrefix:"PUSH_"`
	Search    search.Config    `envPrefix:"SEARCH_"`
	Tracing   config.Tracing

	// Functions lists the domains to host (comma-separated); empty hosts all.
	Functions []string `env:"FUNCTIONS" envSeparator:","`
	// NodeID makes message ids unique across workers; -1 picks one at random.
	NodeID      int64  `env:"NODE_ID" envDefault:"-1"`
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:9101"`
	// Migrate applies pending migrations at start (`functions migrate` does only that).
	Migrate bool `env:"MIGRATE" envDefault:"false"`
}

// workerGOGC is the worker's GC target unless GOGC is set. Its live heap is a few
// MB and every message allocates, so at Go's default of 100 it collected thirteen
// times a second at 5,760 direct msgs/s, and on a busy box each collection's
// stop-the-world waits for every thread. 400 (five times fewer collections) for a
// few tens of MB more heap; see docs/benchmarks.md.
const workerGOGC = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		runtimedebug.SetGCPercent(workerGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Parse[Config]()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := logging.New(cfg.Log, "functions")
	switch {
	case len(os.Args) > 1 && os.Args[1] == "migrate":
		err = migrate(ctx, cfg)
	case len(os.Args) > 1 && os.Args[1] == "push-replay":
		err = pushReplay(ctx, cfg, log)
	case len(os.Args) > 1 && os.Args[1] == "admin-create":
		err = adminCreate(ctx, cfg, log, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "reindex":
		err = reindex(ctx, cfg, log, os.Args[2:])
	default:
		err = run(ctx, cfg, log)
	}
	if err != nil {
		log.Error().Err(err).Msg("exit")
		os.Exit(1)
	}
}

func migrate(ctx context.Context, cfg Config) error {
	if err := db.CreateDatabase(ctx, cfg.MySQL.DSN); err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer d.Close()
	return db.Migrate(ctx, d)
}

// ensureBucket creates the files bucket if it is missing, retrying every 10 s
// while the S3 server does not answer.
func ensureBucket(ctx context.Context, mc *minio.Client, c config.S3, log zerolog.Logger) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := blob.EnsureBucket(cctx, mc, c)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn().Err(err).Msg("S3 unreachable: file ops fail until it answers")
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// pushReplay sends again the dead letters of offline push that no replay took
// yet, with the providers the environment configures, and prints what it did.
func pushReplay(ctx context.Context, cfg Config, log zerolog.Logger) error {
	d, err := db.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer d.Close()
	rdb, err := cache.Open(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	nc, err := bus.Connect(cfg.NATS, "natter-push-replay", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.EnsureStreams(ctx, nc); err != nil {
		return err
	}
	s, err := push.New(push.Deps{DB: d, Redis: rdb, NC: nc, Log: log, Config: cfg.Push})
	if err != nil {
		return err
	}
	res, err := s.Replay(ctx)
	fmt.Printf("replayed: %d sent, %d unregistered (token removed), %d failed again (new dead letters)\n", res.Sent, res.Unregistered, res.Failed)
	return err
}

// reindex rebuilds the message search index from the messages table (the
// truth; the stream keeps a week at most): from scratch, or with -keep over
// what it holds. Running workers may go on indexing meanwhile.
func reindex(ctx context.Context, cfg Config, log zerolog.Logger, args []string) error {
	fresh := !slices.Contains(args, "-keep")
	d, err := db.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer d.Close()
	s, err := search.New(search.Deps{DB: d, Log: log, Config: cfg.Search})
	if err != nil {
		return err
	}
	start := time.Now()
	last := start
	n, err := s.Rebuild(ctx, fresh, func(n int) {
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			fmt.Printf("reindex: %d messages, %.0f/s\n", n, float64(n)/time.Since(start).Seconds())
		}
	})
	fmt.Printf("reindexed: %d messages in %s\n", n, time.Since(start).Round(time.Millisecond))
	return err
}

func run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	if cfg.Migrate {
		if err := migrate(ctx, cfg); err != nil {
			return err
		}
	}
	signer, err := auth.NewSigner(cfg.Auth)
	if err != nil {
		return err
	}
	adminSigner, err := auth.NewOperatorSigner(cfg.AdminAuth, cfg.Auth)
	if err != nil {
		return err
	}
	// Before the database and Redis are opened: they are wrapped only when tracing is on.
	stopTracing, err := tracing.Setup(ctx, cfg.Tracing, "natter-functions")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	d, err := db.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer d.Close()
	// The group-commit writers send each batch as one multi-statement script.
	scripts, err := db.OpenScripts(ctx, config.MySQL{DSN: cfg.MySQL.DSN,
		MaxOpenConns: 2 * max(cfg.Message.Writers, 1), MaxIdleConns: 2 * max(cfg.Message.Writers, 1)})
	if err != nil {
		return err
	}
	defer scripts.Close()
	var replica *sql.DB
	if cfg.MySQL.ReplicaDSN != "" {
		if replica, err = db.Open(ctx, config.MySQL{DSN: cfg.MySQL.ReplicaDSN,
			MaxOpenConns: cfg.MySQL.MaxOpenConns, MaxIdleConns: cfg.MySQL.MaxIdleConns}); err != nil {
			return fmt.Errorf("replica: %w", err)
		}
		defer replica.Close()
	}
	reads, err := db.NewReader(ctx, d, replica, cfg.MySQL.ReplicaWait)
	if err != nil {
		return err
	}
	rdb, err := cache.Open(ctx, cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	nc, err := bus.Connect(cfg.NATS, "natter-functions", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.EnsureStreams(ctx, nc); err != nil {
		return err
	}
	// A stream deleted by hand would stay gone (and every edge not ready) until a
	// worker restarts: every worker puts it back within a minute.
	go bus.KeepStreams(ctx, nc, time.Minute, log)
	node := cfg.NodeID
	if node < 0 {
		node = ids.RandomNode()
	}
	cfg.Account.RefreshTTL = cfg.Auth.RefreshTTL
	// Background work (group-commit writers, fan-out) must outlive the signal: the
	// requests still draining at shutdown need it. It stops after the drain.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Only the file domain talks to S3. An S3 server that does not answer at
	// start must not stop messages: the file ops fail (unavailable) until it does.
	var s3, presign *minio.Client
	if len(cfg.Functions) == 0 || slices.Contains(cfg.Functions, "file") {
		if s3, err = blob.New(cfg.S3); err != nil {
			return err
		}
		if presign, err = blob.Presigner(cfg.S3); err != nil {
			return err
		}
		go ensureBucket(bg, s3, cfg.S3, log)
	}
	eps, err := worker.Endpoints(bg, cfg.Functions, worker.Deps{
		S3: s3, Presign: presign, S3Bucket: cfg.S3.Bucket, File: cfg.File,
		DB: d, ScriptDB: scripts, Reads: reads, Redis: rdb, NC: nc, Signer: signer, IDs: ids.NewGenerator(node), Log: log, Metrics: reg,
		AdminSigner: adminSigner, Admin: cfg.Admin,
		Account: cfg.Account, Message: cfg.Message, Group: cfg.Group, Friend: cfg.Friend, MsgEvent: cfg.MsgEvent, Presence: cfg.Presence,
		Push: cfg.Push, Search: cfg.Search,
	})
	if err != nil {
		return err
	}

	// Requests run under their own context so that shutdown drains them instead of
	// cancelling them mid-transaction.
	srv, err := endpoint.Serve(bg, nc, log, reg, cfg.Endpoint, eps)
	if err != nil {
		return err
	}
	// The metrics address is loopback by default: it also serves /debug/pprof/.
	mux := debug.Mux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	hs := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("metrics server")
		}
	}()
	log.Info().Str("functions", strings.Join(cfg.Functions, ",")).Int("in_flight", cfg.Endpoint.InFlight).
		Int("endpoints", len(eps)).Str("metrics", cfg.MetricsAddr).Msg("worker ready")

	<-ctx.Done()
	log.Info().Msg("shutting down")
	// Order: stop taking requests and let in-flight ones finish (micro drains the
	// subscriptions), flush NATS, then close stores (deferred), all under a deadline.
	done := make(chan error, 1)
	go func() {
		err := srv.Stop()
		if derr := nc.Drain(); derr != nil && err == nil {
			err = derr
		}
		for !nc.IsClosed() { // Drain is asynchronous; in-flight handlers finish first
			time.Sleep(10 * time.Millisecond)
		}
		done <- err
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	select {
	case err := <-done:
		return err
	case <-sctx.Done():
		return errors.New("shutdown timed out")
	}
}

// adminCreate adds an operator: `functions admin-create <username> [role]`
// (role superadmin unless given), the password from ADMIN_PASSWORD or the first
// line of standard input. `go tool task admin:create` makes the first superadmin.
func adminCreate(ctx context.Context, cfg Config, log zerolog.Logger, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("usage: functions admin-create <username> [superadmin|operator|auditor] (password: ADMIN_PASSWORD or stdin)")
	}
	role := "superadmin"
	if len(args) == 2 {
		role = args[1]
	}
	password := os.Getenv("ADMIN_PASSWORD")
	if password == "" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if err := migrate(ctx, cfg); err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.MySQL)
	if err != nil {
		return err
	}
	defer d.Close()
	o, err := admin.New(admin.Deps{DB: d, Log: log}).CreateOperator(ctx, args[0], password, role)
	if err != nil {
		return err
	}
	if err := admin.AuditCreated(ctx, d, o); err != nil {
		return err
	}
	fmt.Printf("operator %q (%s) created with id %d: log in at /admin\n", o.Username, o.Role, o.ID)
	return nil
}
