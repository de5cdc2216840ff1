package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// WebhookConfig is the webhook provider (env prefix PUSH_WEBHOOK_): every push
// is POSTed as JSON to URL, signed with Secret.
type WebhookConfig struct {
	URL    string `env:"URL"`
	Secret string `env:"SECRET"`
	// CAFile (PEM) replaces the system's roots for an https URL.
	CAFile string `env:"CA_FILE"`
}

// Webhook headers: the Unix time of the request in seconds, and
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). A receiver
// recomputes the signature over the raw body and refuses stale timestamps.
const (
	HeaderTimestamp = "X-Natter-Timestamp"
	HeaderSignature = "X-Natter-Signature"
)

// Webhook POSTs notifications to a URL of the operator's own push gateway.
type Webhook struct {
	url, secret string
	client      *http.Client
	now         func() time.Time
}

// NewWebhook returns the webhook provider.
func NewWebhook(c WebhookConfig) (*Webhook, error) {
	if c.URL == "" || c.Secret == "" {
		return nil, errors.New("push: the webhook provider needs PUSH_WEBHOOK_URL and PUSH_WEBHOOK_SECRET")
	}
	client, err := httpClient(c.CAFile, false)
	if err != nil {
		return nil, err
	}
	return &Webhook{url: c.URL, secret: c.Secret, client: client, now: time.Now}, nil
}

func (w *Webhook) Name() string { return "webhook" }

// Sign is the signature of body sent at ts (Unix seconds).
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send answers ErrUnregistered on 410 Gone, a permanent error on any other 4xx
// but 408 and 429, and a retryable one otherwise.
func (w *Webhook) Send(ctx context.Context, n Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return Permanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	case resp.StatusCode == http.StatusGone:
		return ErrUnregistered
	case retryable(resp.StatusCode):
		return httpStatusError("webhook", resp)
	default:
		return Permanent(httpStatusError("webhook", resp))
	}
}

// Log is the development provider: it logs each push and always succeeds.
type Log struct{ log zerolog.Logger }

// NewLog returns the log provider.
func NewLog(log zerolog.Logger) *Log { return &Log{log: log} }

func (l *Log) Name() string { return "log" }

func (l *Log) Send(_ context.Context, n Notification) error {
	l.log.Info().Int64("user", n.UserID).Str("device", n.DeviceID).Str("platform", n.Platform).
		Str("conv", n.ConvID).Int64("seq", n.Seq).Int("count", n.Count).Int64("badge", n.Badge).
		Str("title", n.Title).Str("body", n.Body).Msg("push")
	return nil
}
