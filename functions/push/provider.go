package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Notification is one push to one device: what a provider sends, and what a dead
// letter keeps to send it again.
type Notification struct {
	UserID   int64  `json:"user_id"`
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	Provider string `json:"provider"`
	Token    string `json:"token"`
	Locale   string `json:"locale,omitempty"`

	ConvID string `json:"conv_id"`
	Seq    int64  `json:"seq"`              // the latest message the push stands for
	MsgID  int64  `json:"msg_id,string"`    //
	SentAt int64  `json:"sent_at"`          // unix ms, of that message
	Sender int64  `json:"sender,omitempty"` // left out when Hidden
	// Title and Body are what the device shows: the sender (1:1) or the group's
	// name, and the text; with Hidden, no title and "New message".
	Title  string `json:"title,omitempty"`
	Body   string `json:"body"`
	Hidden bool   `json:"hidden,omitempty"`
	// Count is how many messages of the conversation this push stands for (a
	// burst collapsed into one push); Badge is the user's total unread.
	Count   int   `json:"count"`
	Badge   int64 `json:"badge"`
	Mention bool  `json:"mention,omitempty"` // the push mentions the user
	// Trailing: the push ends a collapse window (it follows an earlier push of
	// the same conversation, and may replace it on the device).
	Trailing bool `json:"trailing,omitempty"`
}

// Provider sends notifications to one push service. Send answers nil once the
// service accepted the push, ErrUnregistered when the token is no longer valid
// (the token is then removed), an error marked Permanent when trying again
// cannot help, and any other error for a failure worth retrying.
type Provider interface {
	Name() string
	Send(ctx context.Context, n Notification) error
}

// ErrUnregistered says the device's token is no longer valid: the app was
// uninstalled, or the token was replaced.
var ErrUnregistered = errors.New("push token no longer valid")

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure no retry can fix (a malformed request, a
// rejected payload): the push goes to the dead letters at once.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// httpStatusError is a provider's answer other than success, with the start of
// its body for the dead letter.
func httpStatusError(provider string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: HTTP %d: %s", provider, resp.StatusCode, body)
}

// retryable reports whether an HTTP status is worth another attempt.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// httpClient is a client for a provider: the system's roots, or those of caFile
// (PEM) when set; with http2Only it speaks HTTP/2 and nothing else (APNs
// requires it).
func httpClient(caFile string, http2Only bool) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("push: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("push: CA file %s holds no certificate", caFile)
		}
		tc.RootCAs = pool
	}
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tc,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if http2Only {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP2(true)
	}
	return &http.Client{Transport: t}, nil
}
