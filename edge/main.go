// Command edge is natter's client-facing process: WebSocket (/ws) and HTTP
// (/api/v1/...) in front of the NATS functions, plus /healthz, /readyz and
// /metrics. The logic lives in natter/edge/gateway; this file only wires it.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"natter/shared/tracing"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"natter/edge/gateway"
	"natter/shared/auth"
	"natter/shared/bus"
	"natter/shared/config"
	"natter/shared/debug"
	"natter/shared/logging"
)

// Config is the edge binary's whole configuration, from the environment.
type Config struct {
	// Addr is where the edge listens for WebSocket and HTTP clients.
	Addr string `env:"EDGE_ADDR" envDefault:":8080"`
	// DebugAddr serves /debug/pprof/ for operators; set but empty turns it off (see
	// loadConfig). Keep it on loopback.
	DebugAddr string `env:"EDGE_DEBUG_ADDR" envDefault:"127.0.0.1:6060"`
	// ShutdownTimeout bounds the whole graceful shutdown.
	ShutdownTimeout time.Duration `env:"EDGE_SHUTDOWN_TIMEOUT" envDefault:"15s"`

	Gateway gateway.Config `envPrefix:"EDGE_"`
	NATS    config.NATS    `envPrefix:"NATS_"`
	Auth    config.Auth    `envPrefix:"AUTH_"`
	Log     config.Log     `envPrefix:"LOG_"`
	// AdminAuth verifies operator tokens; EDGE_ADMIN=false makes a chat-only edge
	// (no /api/v1/admin/..., no console), whose NATS user may then lack
	// im.v1.admin.> (the edge user of nats-config/accounts.conf; console has it).
	AdminAuth config.AdminAuth `envPrefix:"ADMIN_AUTH_"`
	Admin     bool             `env:"EDGE_ADMIN" envDefault:"true"`
	Tracing   config.Tracing
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

// loadConfig parses Config from the environment. env applies an envDefault to a
// variable set but empty too, so EDGE_DEBUG_ADDR= would still get the default:
// here it turns pprof off, as documented.
func loadConfig() (Config, error) {
	cfg, err := config.Parse[Config]()
	if err != nil {
		return cfg, err
	}
	if v, set := os.LookupEnv("EDGE_DEBUG_ADDR"); set && v == "" {
		cfg.DebugAddr = ""
	}
	return cfg, nil
}

func run(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := logging.New(cfg.Log, "edge")
	signer, err := auth.NewSigner(cfg.Auth)
	if err != nil {
		return err
	}
	var adminSigner *auth.Signer
	if cfg.Admin {
		if adminSigner, err = auth.NewOperatorSigner(cfg.AdminAuth, cfg.Auth); err != nil {
			return err
		}
	}
	stopTracing, err := tracing.Setup(ctx, cfg.Tracing, "natter-edge")
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx)
	}()
	nc, err := bus.Connect(cfg.NATS, "edge", log)
	if err != nil {
		return err
	}
	defer nc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw, err := gateway.New(cfg.Gateway, gateway.Deps{NC: nc, Signer: signer, AdminSigner: adminSigner, Log: log, Registry: reg, AccessTTL: cfg.Auth.AccessTTL})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           gw.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // WebSockets clear it when they take the connection over
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	if dbg := debug.Serve(cfg.DebugAddr, debug.Mux(), log); dbg != nil {
		defer dbg.Close()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Str("edge", gw.ID()).Str("nats", nc.ConnectedUrl()).Msg("edge listening")

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}

	// Shutdown, in order, under one hard timeout.
	log.Info().Msg("edge shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	gw.MarkNotReady()
	var errs []error
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := gw.Shutdown(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := drain(sctx, nc); err != nil {
		errs = append(errs, err)
	}
	log.Info().Msg("edge stopped")
	return errors.Join(errs...)
}

// drain drains the NATS connection and waits until it is closed or ctx ends.
func drain(ctx context.Context, nc *nats.Conn) error {
	closed := nc.StatusChanged(nats.CLOSED)
	if err := nc.Drain(); err != nil {
		return fmt.Errorf("nats drain: %w", err)
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("nats drain: %w", ctx.Err())
	}
}
