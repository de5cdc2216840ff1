package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"natter/shared/config"
	"natter/shared/testenv"
)

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("EDGE_ADDR", "127.0.0.1:9999")
	t.Setenv("EDGE_ID", "edge-7")
	t.Setenv("EDGE_HEARTBEAT_TIMEOUT", "45s")
	t.Setenv("EDGE_RATE_LIMIT", "20")
	t.Setenv("NATS_URL", "nats://nats:4222")
	t.Setenv("AUTH_ACCESS_TTL", "5m")
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Gateway
	switch {
	case cfg.Addr != "127.0.0.1:9999", cfg.ShutdownTimeout != 15*time.Second:
		t.Fatalf("process settings: %+v", cfg)
	case g.ID != "edge-7", g.HeartbeatTimeout != 45*time.Second, g.HeartbeatInterval != 30*time.Second,
		g.RateLimit != 20, g.RateBurst != 100, g.RequestTimeout != 10*time.Second, g.Parallel != 8:
		t.Fatalf("gateway settings: %+v", g)
	case cfg.NATS.URL != "nats://nats:4222", cfg.Auth.AccessTTL != 5*time.Minute, cfg.Log.Level != "info":
		t.Fatalf("shared blocks: %+v %+v %+v", cfg.NATS, cfg.Auth, cfg.Log)
	}
}

func TestDebugAddr(t *testing.T) {
	const key = "EDGE_DEBUG_ADDR"
	tests := []struct {
		name  string
		value *string // nil: unset
		want  string
	}{
		{"unset: the default", nil, config.Defaults[Config]().DebugAddr},
		{"empty: off", new(""), ""},
		{"set", new("127.0.0.1:7777"), "127.0.0.1:7777"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(key, "") // restores the outer value afterwards
			if tt.value == nil {
				if err := os.Unsetenv(key); err != nil {
					t.Fatal(err)
				}
			} else {
				t.Setenv(key, *tt.value)
			}
			cfg, err := loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.DebugAddr != tt.want {
				t.Fatalf("DebugAddr %q, want %q", cfg.DebugAddr, tt.want)
			}
		})
	}
	if config.Defaults[Config]().DebugAddr == "" {
		t.Fatal("no default debug address: the unset case proves nothing")
	}
}

// TestComposeFile: compose.yaml's edge service sets only settings the edge reads,
// and its container port is the one EDGE_ADDR listens on.
func TestComposeFile(t *testing.T) {
	var cfg Config
	testenv.CheckComposeEnv(t, "edge", &cfg)
	svc := testenv.Compose(t)["edge"]
	addr := svc.Environment["EDGE_ADDR"]
	_, port, _ := strings.Cut(addr, ":")
	for _, p := range svc.Ports {
		if !strings.HasSuffix(p, ":"+port) {
			t.Errorf("edge publishes %s, but EDGE_ADDR is %s", p, addr)
		}
	}
	if len(svc.Ports) == 0 {
		t.Error("the edge publishes no port")
	}
}
