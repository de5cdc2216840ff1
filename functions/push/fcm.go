package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// FCMConfig is the Firebase Cloud Messaging provider, HTTP v1 API (env prefix
// PUSH_FCM_).
type FCMConfig struct {
	// Credentials is the path of the service account's JSON key (project_id,
	// client_email, private_key, private_key_id, token_uri): never in the repo.
	Credentials string `env:"CREDENTIALS"`
	Endpoint    string `env:"ENDPOINT" envDefault:"https://fcm.googleapis.com"`
	// CAFile (PEM) replaces the system's roots, for the endpoint and token_uri.
	CAFile string `env:"CA_FILE"`
}

// fcmScope is the OAuth2 scope of the send API.
const fcmScope = "https://www.googleapis.com/auth/firebase.messaging"

// serviceAccount is the part of a service account key FCM needs.
type serviceAccount struct {
	ProjectID    string `json:"project_id"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// FCM sends through FCM's HTTP v1 API, authorised by an OAuth2 access token
// that a JWT signed with the service account's key buys at token_uri (the token
// is cached until shortly before it expires, and bought again after a 401).
type FCM struct {
	url    string
	client *http.Client
	jwt    *jwt.Config
	tctx   context.Context // carries client for the token requests

	mu  sync.Mutex
	src oauth2.TokenSource
}

// NewFCM returns the FCM provider.
func NewFCM(c FCMConfig) (*FCM, error) {
	if c.Credentials == "" {
		return nil, errors.New("push: the fcm provider needs PUSH_FCM_CREDENTIALS (a service account JSON key)")
	}
	b, err := os.ReadFile(c.Credentials)
	if err != nil {
		return nil, fmt.Errorf("push: fcm credentials: %w", err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		return nil, fmt.Errorf("push: fcm credentials: %w", err)
	}
	if sa.ProjectID == "" || sa.ClientEmail == "" || sa.PrivateKey == "" || sa.TokenURI == "" {
		return nil, errors.New("push: fcm credentials lack project_id, client_email, private_key or token_uri")
	}
	client, err := httpClient(c.CAFile, false)
	if err != nil {
		return nil, err
	}
	f := &FCM{
		url:    strings.TrimSuffix(c.Endpoint, "/") + "/v1/projects/" + sa.ProjectID + "/messages:send",
		client: client,
		jwt: &jwt.Config{Email: sa.ClientEmail, PrivateKey: []byte(sa.PrivateKey), PrivateKeyID: sa.PrivateKeyID,
			Scopes: []string{fcmScope}, TokenURL: sa.TokenURI},
		tctx: context.WithValue(context.Background(), oauth2.HTTPClient, client),
	}
	f.src = f.jwt.TokenSource(f.tctx)
	return f, nil
}

func (f *FCM) Name() string { return "fcm" }

func (f *FCM) token() (*oauth2.Token, error) {
	f.mu.Lock()
	src := f.src
	f.mu.Unlock()
	return src.Token()
}

// renew drops the cached access token: the next push buys a new one.
func (f *FCM) renew() {
	f.mu.Lock()
	f.src = f.jwt.TokenSource(f.tctx)
	f.mu.Unlock()
}

type fcmMessage struct {
	Message fcmBody `json:"message"`
}

type fcmBody struct {
	Token        string            `json:"token"`
	Notification *fcmNotification  `json:"notification,omitempty"`
	Data         map[string]string `json:"data"`
	Android      fcmAndroid        `json:"android"`
	APNs         *fcmAPNs          `json:"apns,omitempty"`
}

type fcmNotification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

type fcmAndroid struct {
	CollapseKey  string                 `json:"collapse_key"`
	Priority     string                 `json:"priority"`
	Notification fcmAndroidNotification `json:"notification"`
}

type fcmAndroidNotification struct {
	Tag               string `json:"tag"`
	NotificationCount int64  `json:"notification_count"`
}

type fcmAPNs struct {
	Payload map[string]any `json:"payload"`
}

// fcmError is FCM's error body.
type fcmError struct {
	Error struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Details []struct {
			ErrorCode string `json:"errorCode"`
		} `json:"details"`
	} `json:"error"`
}

// Send answers ErrUnregistered when FCM says UNREGISTERED (or 404 NOT_FOUND);
// 401 drops the access token and is retried; 429 and 5xx are retried; any other
// error is permanent.
func (f *FCM) Send(ctx context.Context, n Notification) error {
	tok, err := f.token()
	if err != nil {
		return fmt.Errorf("fcm: access token: %w", err)
	}
	m := fcmMessage{Message: fcmBody{
		Token:        n.Token,
		Notification: &fcmNotification{Title: n.Title, Body: n.Body},
		Data: map[string]string{"conv_id": n.ConvID, "seq": strconv.FormatInt(n.Seq, 10), "count": strconv.Itoa(n.Count),
			"badge": strconv.FormatInt(n.Badge, 10)},
		Android: fcmAndroid{CollapseKey: n.ConvID, Priority: "high",
			Notification: fcmAndroidNotification{Tag: n.ConvID, NotificationCount: n.Badge}},
		APNs: &fcmAPNs{Payload: map[string]any{"aps": map[string]any{"badge": n.Badge, "thread-id": n.ConvID}}},
	}}
	body, err := json.Marshal(m)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("fcm: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e fcmError
	_ = json.Unmarshal(raw, &e)
	for _, d := range e.Error.Details {
		if d.ErrorCode == "UNREGISTERED" {
			return ErrUnregistered
		}
	}
	err = fmt.Errorf("fcm: HTTP %d %s: %s", resp.StatusCode, e.Error.Status, e.Error.Message)
	switch {
	case resp.StatusCode == http.StatusNotFound && e.Error.Status == "NOT_FOUND":
		return ErrUnregistered
	case resp.StatusCode == http.StatusUnauthorized:
		f.renew()
		return err
	case retryable(resp.StatusCode):
		return err
	default:
		return Permanent(err)
	}
}
