package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsConfig is the Apple Push Notification service provider with token-based
// authentication (env prefix PUSH_APNS_).
type APNsConfig struct {
	// KeyFile is the path of the .p8 signing key (PKCS#8, P-256) Apple issued,
	// with its KeyID, for the team TeamID: never in the repo.
	KeyFile string `env:"KEY_FILE"`
	KeyID   string `env:"KEY_ID"`
	TeamID  string `env:"TEAM_ID"`
	// Topic is the app's bundle id.
	Topic string `env:"TOPIC"`
	// Endpoint: https://api.sandbox.push.apple.com for development builds.
	Endpoint string `env:"ENDPOINT" envDefault:"https://api.push.apple.com"`
	// CAFile (PEM) replaces the system's roots.
	CAFile string `env:"CA_FILE"`
}

// apnsTokenAge is how long a provider token is used: Apple refuses one older
// than an hour, and one renewed more often than every 20 minutes.
const apnsTokenAge = 50 * time.Minute

// APNs sends over HTTP/2 to Apple, authorised by an ES256 JWT (iss: team, iat,
// header kid) renewed every 50 minutes, or at once after ExpiredProviderToken.
type APNs struct {
	endpoint, topic, keyID, teamID string
	key                            *ecdsa.PrivateKey
	client                         *http.Client
	now                            func() time.Time

	mu       sync.Mutex
	bearer   string
	bearerAt time.Time
}

// NewAPNs returns the APNs provider.
func NewAPNs(c APNsConfig) (*APNs, error) {
	if c.KeyFile == "" || c.KeyID == "" || c.TeamID == "" || c.Topic == "" {
		return nil, errors.New("push: the apns provider needs PUSH_APNS_KEY_FILE, _KEY_ID, _TEAM_ID and _TOPIC")
	}
	pem, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("push: apns key: %w", err)
	}
	key, err := jwt.ParseECPrivateKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("push: apns key: %w", err)
	}
	client, err := httpClient(c.CAFile, true)
	if err != nil {
		return nil, err
	}
	return &APNs{endpoint: strings.TrimSuffix(c.Endpoint, "/"), topic: c.Topic, keyID: c.KeyID, teamID: c.TeamID,
		key: key, client: client, now: time.Now}, nil
}

func (a *APNs) Name() string { return "apns" }

// token returns the provider token, signing a new one when the last is older
// than apnsTokenAge or when stale names the one a request was refused with.
func (a *APNs) token(stale string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.bearer != "" && a.bearer != stale && now.Sub(a.bearerAt) < apnsTokenAge {
		return a.bearer, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.teamID, "iat": now.Unix()})
	t.Header["kid"] = a.keyID
	s, err := t.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("apns: sign provider token: %w", err)
	}
	a.bearer, a.bearerAt = s, now
	return s, nil
}

type apnsAlert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

type apnsAps struct {
	Alert    apnsAlert `json:"alert"`
	Badge    int64     `json:"badge"`
	Sound    string    `json:"sound"`
	ThreadID string    `json:"thread-id"`
}

type apnsPayload struct {
	Aps    apnsAps `json:"aps"`
	ConvID string  `json:"conv_id"`
	Seq    int64   `json:"seq"`
	Count  int     `json:"count"`
}

// Send answers ErrUnregistered on 410 (Unregistered) and on 400 BadDeviceToken or
// DeviceTokenNotForTopic; a 403 ExpiredProviderToken renews the JWT and is
// retried, as are 429 and 5xx; any other error is permanent.
func (a *APNs) Send(ctx context.Context, n Notification) error {
	bearer, err := a.token("")
	if err != nil {
		return err
	}
	body, err := json.Marshal(apnsPayload{
		Aps:    apnsAps{Alert: apnsAlert{Title: n.Title, Body: n.Body}, Badge: n.Badge, Sound: "default", ThreadID: n.ConvID},
		ConvID: n.ConvID, Seq: n.Seq, Count: n.Count,
	})
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint+"/3/device/"+url.PathEscape(n.Token), bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	req.Header.Set("apns-topic", a.topic)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-collapse-id", n.ConvID) // one notification per conversation on the device
	req.Header.Set("apns-expiration", strconv.FormatInt(n.SentAt/1000+24*3600, 10))
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("apns: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(raw, &e)
	err = fmt.Errorf("apns: HTTP %d %s", resp.StatusCode, e.Reason)
	switch {
	case resp.StatusCode == http.StatusGone, e.Reason == "BadDeviceToken", e.Reason == "DeviceTokenNotForTopic", e.Reason == "Unregistered":
		return ErrUnregistered
	case resp.StatusCode == http.StatusForbidden && e.Reason == "ExpiredProviderToken":
		_, _ = a.token(bearer)
		return err
	case retryable(resp.StatusCode):
		return err
	default:
		return Permanent(err)
	}
}
