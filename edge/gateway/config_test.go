package gateway

import (
	"testing"
	"time"

	"natter/shared/config"
)

func TestConfigWithDefaults(t *testing.T) {
	def := config.Defaults[Config]()
	tests := []struct {
		name string
		in   Config
		want func(Config) Config // from def, the fields the input keeps
	}{
		{"zero: every envDefault", Config{}, func(c Config) Config { return c }},
		{"set fields stay", Config{ID: "edge-7", HeartbeatTimeout: 45 * time.Second, SendQueue: 4},
			func(c Config) Config {
				c.ID, c.HeartbeatTimeout, c.SendQueue = "edge-7", 45*time.Second, 4
				return c
			}},
		{"negative (off) stays", Config{RateLimit: -1, HTTPUserLimit: -1, HTTPPublicLimit: -1, WriteDelay: -1, WriteDelayAbove: -1, QueueTimeout: -1},
			func(c Config) Config {
				c.RateLimit, c.HTTPUserLimit, c.HTTPPublicLimit, c.WriteDelay, c.WriteDelayAbove, c.QueueTimeout = -1, -1, -1, -1, -1, -1
				return c
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults()
			want := tt.want(def)
			if tt.in.ID == "" {
				if !saneID(got.ID) {
					t.Fatalf("random id %q is not a sane edge id", got.ID)
				}
				want.ID = got.ID
			}
			if got != want {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	if def.HeartbeatTimeout == 0 || def.SendQueue == 0 || def.QueueBytes != 2<<20 || def.QueueMax != 8<<20 || def.ID != "" {
		t.Fatalf("envDefault tags not read: %+v", def)
	}
}
