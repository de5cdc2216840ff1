package main

import (
	"os"
	"strings"
	"testing"

	"natter/shared/testenv"
)

// TestComposeFile: compose.yaml's worker and migration services set only settings
// the worker reads; the files it mounts exist; its NATS services run the cluster
// configs in nats-config/cluster, the same files `go tool task test:cluster` starts.
func TestComposeFile(t *testing.T) {
	var cfg Config
	testenv.CheckComposeEnv(t, "functions", &cfg)
	testenv.CheckComposeEnv(t, "migrate", &cfg)

	services := testenv.Compose(t)
	for name := range services {
		for _, host := range testenv.ComposeMounts(t, name) {
			if _, err := os.Stat(testenv.RepoFile(t, strings.TrimPrefix(host, "./"))); err != nil {
				t.Errorf("compose.yaml service %s mounts %s: %v", name, host, err)
			}
		}
	}
	chaos, err := os.ReadFile(testenv.RepoFile(t, "scripts/chaos.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(chaos), `"$ROOT/nats-config/cluster/n$n.conf"`) {
		t.Error("scripts/chaos.sh no longer starts the cluster from nats-config/cluster/n$n.conf")
	}
	for _, n := range []string{"1", "2", "3"} {
		svc, ok := services["nats"+n]
		if !ok {
			t.Errorf("compose.yaml has no nats%s", n)
			continue
		}
		want := "/etc/nats/cluster/n" + n + ".conf"
		if !strings.Contains(strings.Join(svc.Command, " "), want) {
			t.Errorf("nats%s runs %v, want the config %s (nats-config/cluster/n%s.conf)", n, svc.Command, want, n)
		}
		if _, err := os.Stat(testenv.RepoFile(t, "nats-config/cluster/n"+n+".conf")); err != nil {
			t.Error(err)
		}
	}
}
