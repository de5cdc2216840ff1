package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// ComposeService is what compose.yaml says of one service: the tests of each binary
// hold it against their config structs so that the file cannot drift from the code.
type ComposeService struct {
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
}

// Compose reads compose.yaml at the repository root (YAML merge keys resolved).
func Compose(tb testing.TB) map[string]ComposeService {
	tb.Helper()
	b, err := os.ReadFile(RepoFile(tb, "compose.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Services map[string]ComposeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("compose.yaml: %v", err)
	}
	return f.Services
}

// CheckComposeEnv fails the test for each environment name that compose.yaml gives
// service but cfg (a binary's config struct, parsed with caarlos0/env) does not read:
// such a setting would be silently ignored. Names in extra are read elsewhere (e.g.
// GOGC by the runtime).
func CheckComposeEnv(tb testing.TB, service string, cfg any, extra ...string) {
	tb.Helper()
	svc, ok := Compose(tb)[service]
	if !ok {
		tb.Fatalf("compose.yaml has no service %q", service)
	}
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	known := slices.Clone(extra)
	for _, p := range params {
		known = append(known, p.Key)
	}
	for name := range svc.Environment {
		if !slices.Contains(known, name) {
			tb.Errorf("compose.yaml service %s sets %s, which its binary does not read", service, name)
		}
	}
	if len(svc.Environment) == 0 {
		tb.Errorf("compose.yaml service %s sets no environment", service)
	}
}

// ComposeMounts returns the host side of service's bind mounts ("./x" volumes).
func ComposeMounts(tb testing.TB, service string) []string {
	tb.Helper()
	var out []string
	for _, v := range Compose(tb)[service].Volumes {
		if host, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(host, "./") {
			out = append(out, host)
		}
	}
	return out
}
