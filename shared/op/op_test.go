package op

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	name := regexp.MustCompile(`^[a-z]+(\.[a-z]+)+$`)
	routes := map[string]string{}
	for _, o := range All {
		if !name.MatchString(o.Name) {
			t.Errorf("op %q: name must be lower-case dotted words", o.Name)
		}
		if o.Service == "" {
			t.Errorf("op %q: no service", o.Name)
		}
		if o.Access == Internal && len(o.Routes) > 0 {
			t.Errorf("op %q: internal ops must not have HTTP routes", o.Name)
		}
		for _, r := range o.Routes {
			k := r.Method + " " + r.Path
			if prev, dup := routes[k]; dup {
				t.Errorf("route %s used by %s and %s", k, prev, o.Name)
			}
			routes[k] = o.Name
		}
	}
	if got := Must("msg.send").Subject(); got != "im.v1.msg.send" {
		t.Fatalf("subject = %q", got)
	}
	if got := Must("session.connect").Subject(); got != "im.internal.session.connect" {
		t.Fatalf("internal op's subject = %q", got)
	}
	if got := Must("account.profile.get").Endpoint(); got != "account_profile_get" {
		t.Fatalf("endpoint = %q", got)
	}
}

// TestDocumented keeps docs/protocol.md in step with the table: every op is named
// there.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range All {
		if !strings.Contains(string(doc), o.Name) {
			t.Errorf("op %s is not in docs/protocol.md", o.Name)
		}
	}
}
