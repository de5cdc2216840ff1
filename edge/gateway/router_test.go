package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"natter/shared/op"
)

func TestRouter(t *testing.T) {
	rt := &router{}
	for _, p := range []string{
		"PUT /api/v1/social/friends/{user_id}/remark",
		"PUT /api/v1/social/friends/request/{request_id}", // ServeMux refuses this pair
		"GET /api/v1/users/{user_id}",
		"GET /api/v1/users/me/privacy",
		"POST /api/v1/users/register",
		"POST /api/v1/{op...}",
	} {
		if err := rt.add(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Pattern", p)
			w.Header().Set("Values", r.PathValue("user_id")+"|"+r.PathValue("request_id")+"|"+r.PathValue("op"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		method, path   string
		pattern, value string // "" pattern: 404
	}{
		{"PUT", "/api/v1/social/friends/request/remark", "PUT /api/v1/social/friends/request/{request_id}", "|remark|"},
		{"PUT", "/api/v1/social/friends/7/remark", "PUT /api/v1/social/friends/{user_id}/remark", "7||"},
		{"PUT", "/api/v1/social/friends/request/9", "PUT /api/v1/social/friends/request/{request_id}", "|9|"},
		{"GET", "/api/v1/users/me/privacy", "GET /api/v1/users/me/privacy", "||"},
		{"GET", "/api/v1/users/42", "GET /api/v1/users/{user_id}", "42||"},
		{"HEAD", "/api/v1/users/42", "GET /api/v1/users/{user_id}", "42||"},
		{"GET", "/api/v1/users/a%2Fb", "GET /api/v1/users/{user_id}", "a/b||"},
		{"POST", "/api/v1/users/register", "POST /api/v1/users/register", "||"},
		{"POST", "/api/v1/msg.send", "POST /api/v1/{op...}", "||msg.send"},
		{"POST", "/api/v1/users/42", "POST /api/v1/{op...}", "||users/42"},
		{"GET", "/api/v1/msg.send", "", ""},
		{"GET", "/api/v1/users/", "", ""},
		{"GET", "/api/v1/users/42/", "", ""},
		{"DELETE", "/api/v1/users/42", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			rt.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if got := w.Header().Get("Pattern"); got != tt.pattern {
				t.Fatalf("matched %q, want %q (status %d)", got, tt.pattern, w.Code)
			}
			if tt.pattern == "" {
				if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"not_found"`) {
					t.Fatalf("miss: %d %s", w.Code, w.Body)
				}
				return
			}
			if got := w.Header().Get("Values"); got != tt.value {
				t.Fatalf("values %q, want %q", got, tt.value)
			}
		})
	}

	for _, bad := range []string{
		"GET /api/v1/users/{id}",  // same shape as {user_id}
		"GET /api/v1/{x...}/tail", // rest not last
		"GET api/v1/x",            // relative
		"/api/v1/x",               // no method
	} {
		if err := rt.add(bad, nil); err == nil {
			t.Errorf("add(%q) accepted", bad)
		}
	}
}

// FuzzRouter: any method and path, escapes and all, is routed without a panic,
// and a match is a route of that method whose literal segments are the path's
// (a wildcard never matches an empty segment).
func FuzzRouter(f *testing.F) {
	rt := &router{}
	type hit struct{ pattern string }
	var last *hit
	for _, o := range op.All {
		for _, r := range o.Routes {
			p := r.Method + " " + r.Path
			if err := rt.add(p, func(http.ResponseWriter, *http.Request) { last = &hit{p} }); err != nil {
				f.Fatal(err)
			}
		}
	}
	if err := rt.add("POST /api/v1/{op...}", func(http.ResponseWriter, *http.Request) { last = &hit{"POST /api/v1/{op...}"} }); err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "/api/v1/users/42")
	f.Add("GET", "/api/v1/users/lookup")
	f.Add("PUT", "/api/v1/social/friends/request/remark")
	f.Add("POST", "/api/v1/msg.send")
	f.Add("GET", "/api/v1/users/%2F%2e%2e/x")
	f.Add("DELETE", "/api/v1/social/conversations/d:1:2")
	f.Fuzz(func(t *testing.T, method, path string) {
		req, err := http.NewRequest(method, "http://edge"+"/"+strings.TrimPrefix(path, "/"), nil)
		if err != nil {
			return
		}
		last = nil
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, req)
		if last == nil {
			if w.Code != http.StatusNotFound {
				t.Fatalf("%s %s: no route but %d", method, path, w.Code)
			}
			return
		}
		m, pattern, _ := strings.Cut(last.pattern, " ")
		if m != req.Method && !(m == http.MethodGet && req.Method == http.MethodHead) {
			t.Fatalf("%s %s routed to %s", method, path, last.pattern)
		}
		segs, _ := parseSegments(pattern)
		parts := strings.Split(strings.TrimPrefix(req.URL.EscapedPath(), "/"), "/")
		for i, s := range segs {
			if s.kind == segRest {
				return
			}
			if i >= len(parts) {
				t.Fatalf("%s %s routed to %s: too few segments", method, path, last.pattern)
			}
			p, _ := url.PathUnescape(parts[i])
			if (s.kind == segLiteral && p != s.text) || (s.kind == segWild && p == "") {
				t.Fatalf("%s %s routed to %s: segment %d is %q", method, path, last.pattern, i, p)
			}
		}
		if len(parts) != len(segs) {
			t.Fatalf("%s %s routed to %s: %d segments for %d", method, path, last.pattern, len(parts), len(segs))
		}
	})
}
