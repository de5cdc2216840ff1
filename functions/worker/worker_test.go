package worker_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"natter/functions/message"
	"natter/functions/worker"
	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
	"natter/shared/wire"
)

// TestRegistry ties the three lists together: the op table (shared/op) is the
// truth, each domain serves exactly the ops the table gives its service, and
// docs/protocol.md has a section of its own for every op and every push.
func TestRegistry(t *testing.T) {
	// Building the endpoints runs the same check the worker makes at start-up.
	eps, err := worker.Endpoints(context.Background(), nil, worker.Deps{Message: message.Config{Writers: -1}})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, ep := range eps {
		served[ep.Op.Name]++
	}
	for _, o := range op.All {
		if served[o.Name] != 1 {
			t.Errorf("%s is served %d times", o.Name, served[o.Name])
		}
	}
	if len(eps) != len(op.All) {
		t.Errorf("%d endpoints for %d ops", len(eps), len(op.All))
	}
	for _, s := range op.Services {
		if len(op.ByService(s.Name)) == 0 {
			t.Errorf("service %s has no ops", s.Name)
		}
	}

	ops, pushes := docSections(t)
	for _, o := range op.All {
		if ops[o.Name] != 1 {
			t.Errorf("docs/protocol.md: op %s has %d sections (want one \"### %s\" heading)", o.Name, ops[o.Name], o.Name)
		}
	}
	for _, ev := range wire.Events {
		if pushes[ev] != 1 {
			t.Errorf("docs/protocol.md: push %s has %d sections (want one \"### %s (push)\" heading)", ev, pushes[ev], ev)
		}
	}
	for name := range ops {
		if _, ok := op.Lookup(name); !ok && name != "ping" { // ping: the edge's own op
			t.Errorf("docs/protocol.md documents op %s, which the table lacks", name)
		}
	}
	for name := range pushes {
		if !slices.Contains(wire.Events, name) {
			t.Errorf("docs/protocol.md documents push %s, which wire.Events lacks", name)
		}
	}
}

// TestCheck: a domain missing a handler, serving one twice or serving another
// service's op is refused.
func TestCheck(t *testing.T) {
	h := func(context.Context, endpoint.Caller, struct{}) (struct{}, error) { return struct{}{}, nil }
	conv, _ := op.ServiceOf("conv")
	var all []endpoint.Endpoint
	for _, o := range op.ByService(conv.Name) {
		all = append(all, endpoint.Handle(o.Name, h))
	}
	tests := []struct {
		name string
		eps  []endpoint.Endpoint
		want string
	}{
		{"complete", all, ""},
		{"missing", all[1:], "no handler for " + all[0].Op.Name},
		{"twice", append(all[:len(all):len(all)], endpoint.Handle(all[0].Op.Name, h)), "2 handlers for " + all[0].Op.Name},
		{"wrong service", append(all[:len(all):len(all)], endpoint.Handle("msg.send", h)), "the op table gives to im-message"},
	}
	for _, tt := range tests {
		err := worker.Check(conv, tt.eps)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// docSections counts the "### <name>" headings of docs/protocol.md by name: ops,
// and pushes ("### msg.new (push)"). An op's heading may add a note in
// parentheses: "### account.login (public)".
func docSections(t *testing.T) (ops, pushes map[string]int) {
	t.Helper()
	b, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile(`(?m)^### ([a-z][a-z0-9_.]*)(?: \(([^)]*)\))?\s*$`)
	ops, pushes = map[string]int{}, map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		if m[2] == "push" {
			pushes[m[1]]++
		} else {
			ops[m[1]]++
		}
	}
	return ops, pushes
}

// FuzzRequests feeds every op's request decoding and validation arbitrary
// bodies: none may panic, and every refusal is a bad_request.
func FuzzRequests(f *testing.F) {
	eps, err := worker.Endpoints(context.Background(), nil, worker.Deps{Message: message.Config{Writers: -1}})
	if err != nil {
		f.Fatal(err)
	}
	for i := range eps {
		f.Add(uint16(i), []byte(`{}`))
	}
	f.Add(uint16(0), []byte(`{"username":"ａｌｉｃｅ","password":"x"}`))
	f.Add(uint16(0), []byte(`{"to":1,"client_msg_id":"a","type":"rich","content":{"text":"x","spans":[{"start":0,"end":1,"style":"link","url":"javascript:x"}]}}`))
	f.Add(uint16(0), []byte(`{"cursors":{"d:1:2":-1},"limit":-5}`))
	f.Fuzz(func(t *testing.T, which uint16, body []byte) {
		ep := eps[int(which)%len(eps)]
		if err := ep.Check(body); err != nil && imerr.CodeOf(err) != imerr.BadRequest {
			t.Fatalf("%s refused %q with %v, want bad_request", ep.Op.Name, body, err)
		}
	})
}
