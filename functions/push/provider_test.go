package push_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"natter/functions/push"
)

var note = push.Notification{UserID: 7, DeviceID: "phone-1", Platform: "ios", Token: "device-token-1", Locale: "en-US",
	ConvID: "g:3", Seq: 42, MsgID: 99, SentAt: 1795766400000, Sender: 5, Title: "crew", Body: "alice: hi", Count: 2, Badge: 5}

// caFile writes the certificate of a TLS test server where a provider's
// CA_FILE can name it: the provider builds its real TLS client.
func caFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhook: the body is the notification, signed with HMAC-SHA256 over
// "<timestamp>.<body>"; 410 means the token is gone, 5xx is retried, other 4xx
// are permanent.
func TestWebhook(t *testing.T) {
	const secret = "webhook-test-secret"
	var mu sync.Mutex
	status := http.StatusOK
	var got push.Notification
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get(push.HeaderTimestamp)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Errorf("timestamp %q", ts)
		}
		if sig := r.Header.Get(push.HeaderSignature); sig != push.Sign(secret, ts, body) || !strings.HasPrefix(sig, "sha256=") {
			t.Errorf("signature %q", sig)
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s", r.Method, r.Header.Get("Content-Type"))
		}
		mu.Lock()
		defer mu.Unlock()
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	wh, err := push.NewWebhook(push.WebhookConfig{URL: srv.URL + "/hook", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status              int
		ok, gone, permanent bool
	}{
		{http.StatusOK, true, false, false},
		{http.StatusAccepted, true, false, false},
		{http.StatusGone, false, true, false},
		{http.StatusInternalServerError, false, false, false},
		{http.StatusTooManyRequests, false, false, false},
		{http.StatusBadRequest, false, false, true},
	}
	for _, tt := range tests {
		mu.Lock()
		status = tt.status
		mu.Unlock()
		err := wh.Send(context.Background(), note)
		if (err == nil) != tt.ok || errors.Is(err, push.ErrUnregistered) != tt.gone || push.IsPermanent(err) != tt.permanent {
			t.Errorf("status %d: %v", tt.status, err)
		}
	}
	if got.Token != note.Token || got.ConvID != note.ConvID || got.Seq != note.Seq || got.Badge != 5 || got.Body != note.Body {
		t.Errorf("received %+v", got)
	}
}

// TestFCM: a service account's key buys an OAuth2 token (a JWT assertion,
// checked with the public key) that authorises the HTTP v1 send, over TLS; the
// request has FCM's shape; UNREGISTERED removes the token; a 401 buys a new
// token; INVALID_ARGUMENT is permanent.
func TestFCM(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tokens, sends := 0, 0
	answer := func(w http.ResponseWriter) {}
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("token request %v %v", r.Form, err)
		}
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(r.Form.Get("assertion"), claims, func(tok *jwt.Token) (any, error) {
			if tok.Method.Alg() != "RS256" || tok.Header["kid"] != "key-1" {
				t.Errorf("assertion header %v", tok.Header)
			}
			return &key.PublicKey, nil
		})
		if err != nil || claims["iss"] != "push@proj-1.iam.example" || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" ||
			claims["aud"] != srv.URL+"/token" {
			t.Errorf("assertion %v: %v", claims, err)
		}
		mu.Lock()
		tokens++
		n := tokens
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"access-`+strconv.Itoa(n)+`","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("POST /v1/projects/proj-1/messages:send", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sends++
		want := "Bearer access-" + strconv.Itoa(tokens)
		reply := answer
		mu.Unlock()
		if got := r.Header.Get("Authorization"); got != want {
			t.Errorf("authorization %q, want %q", got, want)
		}
		var body struct {
			Message struct {
				Token        string            `json:"token"`
				Notification map[string]string `json:"notification"`
				Data         map[string]string `json:"data"`
				Android      struct {
					CollapseKey  string `json:"collapse_key"`
					Notification struct {
						Count int64 `json:"notification_count"`
					} `json:"notification"`
				} `json:"android"`
			} `json:"message"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Error(err)
		}
		m := body.Message
		if m.Token != note.Token || m.Notification["title"] != "crew" || m.Notification["body"] != "alice: hi" || m.Data["conv_id"] != "g:3" ||
			m.Data["seq"] != "42" || m.Data["badge"] != "5" || m.Android.CollapseKey != "g:3" || m.Android.Notification.Count != 5 {
			t.Errorf("message %+v", m)
		}
		reply(w)
	})
	srv = httptest.NewTLSServer(mux)
	defer srv.Close()
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "proj-1", "client_email": "push@proj-1.iam.example",
		"private_key_id": "key-1", "private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"token_uri": srv.URL + "/token"})
	creds := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(creds, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := push.NewFCM(push.FCMConfig{Credentials: creds, Endpoint: srv.URL, CAFile: caFile(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
	fcmError := func(status int, code, detail string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"error":{"code":`+strconv.Itoa(status)+`,"status":"`+code+`","message":"x","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"`+detail+`"}]}}`)
		}
	}
	tests := []struct {
		name                string
		answer              func(http.ResponseWriter)
		ok, gone, permanent bool
		tokens              int // access tokens bought after the call
	}{
		{"ok", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"name":"projects/proj-1/messages/1"}`) }, true, false, false, 1},
		{"cached token", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"name":"projects/proj-1/messages/2"}`) }, true, false, false, 1},
		{"unregistered", fcmError(404, "NOT_FOUND", "UNREGISTERED"), false, true, false, 1},
		{"expired access token", fcmError(401, "UNAUTHENTICATED", ""), false, false, false, 1},
		{"a new token after 401", func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{}`) }, true, false, false, 2},
		{"unavailable", fcmError(503, "UNAVAILABLE", "UNAVAILABLE"), false, false, false, 2},
		{"invalid argument", fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), false, false, true, 2},
	}
	for _, tt := range tests {
		mu.Lock()
		answer = tt.answer
		mu.Unlock()
		err := f.Send(context.Background(), note)
		if (err == nil) != tt.ok || errors.Is(err, push.ErrUnregistered) != tt.gone || push.IsPermanent(err) != tt.permanent {
			t.Errorf("%s: %v", tt.name, err)
		}
		mu.Lock()
		if tokens != tt.tokens {
			t.Errorf("%s: %d access tokens bought, want %d", tt.name, tokens, tt.tokens)
		}
		mu.Unlock()
	}
	if sends != len(tests) {
		t.Errorf("%d sends", sends)
	}
}

// TestAPNs: HTTP/2 over TLS to /3/device/<token>, authorised by an ES256 JWT
// (kid, iss, iat; checked with the public key) reused across pushes; Apple's
// headers and payload; 410 and BadDeviceToken mean the token is gone;
// ExpiredProviderToken signs a new JWT; 5xx is retried; other 4xx are permanent.
func TestAPNs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "AuthKey_KEY1.p8")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bearers []string
	status, reason := 200, ""
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", r.Proto)
		}
		if r.URL.Path != "/3/device/"+note.Token || r.Method != http.MethodPost {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "bearer ")
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(bearer, claims, func(tok *jwt.Token) (any, error) {
			if tok.Method.Alg() != "ES256" || tok.Header["kid"] != "KEY1" {
				t.Errorf("jwt header %v", tok.Header)
			}
			return &key.PublicKey, nil
		})
		if !ok || err != nil || claims["iss"] != "TEAM1" || claims["iat"] == nil {
			t.Errorf("authorization %v %v: %v", ok, claims, err)
		}
		if r.Header.Get("apns-topic") != "com.example.natter" || r.Header.Get("apns-push-type") != "alert" ||
			r.Header.Get("apns-priority") != "10" || r.Header.Get("apns-collapse-id") != "g:3" || r.Header.Get("apns-expiration") == "" {
			t.Errorf("headers %v", r.Header)
		}
		var body struct {
			Aps struct {
				Alert    map[string]string `json:"alert"`
				Badge    int64             `json:"badge"`
				ThreadID string            `json:"thread-id"`
			} `json:"aps"`
			ConvID string `json:"conv_id"`
			Seq    int64  `json:"seq"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Aps.Alert["title"] != "crew" || body.Aps.Alert["body"] != "alice: hi" ||
			body.Aps.Badge != 5 || body.Aps.ThreadID != "g:3" || body.ConvID != "g:3" || body.Seq != 42 {
			t.Errorf("payload %+v (%v)", body, err)
		}
		mu.Lock()
		defer mu.Unlock()
		bearers = append(bearers, bearer)
		w.Header().Set("apns-id", "id-1")
		w.WriteHeader(status)
		if reason != "" {
			_, _ = io.WriteString(w, `{"reason":"`+reason+`"}`)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	a, err := push.NewAPNs(push.APNsConfig{KeyFile: keyFile, KeyID: "KEY1", TeamID: "TEAM1", Topic: "com.example.natter",
		Endpoint: srv.URL, CAFile: caFile(t, srv)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status              int
		reason              string
		ok, gone, permanent bool
		newJWT              bool // the call after this one carries another JWT
	}{
		{200, "", true, false, false, false},
		{410, "Unregistered", false, true, false, false},
		{400, "BadDeviceToken", false, true, false, false},
		{403, "ExpiredProviderToken", false, false, false, true},
		{503, "ServiceUnavailable", false, false, false, false},
		{429, "TooManyRequests", false, false, false, false},
		{400, "PayloadTooLarge", false, false, true, false},
		{200, "", true, false, false, false},
	}
	for i, tt := range tests {
		mu.Lock()
		status, reason = tt.status, tt.reason
		mu.Unlock()
		err := a.Send(context.Background(), note)
		if (err == nil) != tt.ok || errors.Is(err, push.ErrUnregistered) != tt.gone || push.IsPermanent(err) != tt.permanent {
			t.Errorf("%d %s: %v", tt.status, tt.reason, err)
		}
		if i > 0 {
			mu.Lock()
			changed := bearers[i] != bearers[i-1]
			mu.Unlock()
			if want := tests[i-1].newJWT; changed != want {
				t.Errorf("call %d: new JWT %v, want %v", i, changed, want)
			}
		}
	}
}
