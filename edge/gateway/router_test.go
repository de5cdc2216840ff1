package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
