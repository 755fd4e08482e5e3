package action

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook event types.
const (
	EventRevoke  = "credential.revoke"
	EventRotate  = "credential.rotate"
	EventDormant = "credential.dormant"
)

func validEventType(t string) bool {
	return t == EventRevoke || t == EventRotate || t == EventDormant
}

// MinWebhookSecret is the shortest webhook signing key accepted.
const MinWebhookSecret = 16

// SignatureHeader carries a webhook's signature.
const SignatureHeader = "Vigil-Signature"

// DefaultTolerance is VerifySignature's tolerance when given none.
const DefaultTolerance = 5 * time.Minute

// Signature verification errors.
var (
	ErrBadSignature   = errors.New("action: webhook signature does not match")
	ErrStaleSignature = errors.New("action: webhook signature timestamp outside tolerance")
)

// WebhookOptions configure a Webhook; zero values mean defaults.
type WebhookOptions struct {
	// URL receives the events: https, or http to a loopback host.
	URL string
	// Secret is the HMAC-SHA256 signing key, at least MinWebhookSecret
	// bytes. It is copied.
	Secret []byte
	// HTTPClient, default one that follows no redirects.
	HTTPClient *http.Client
	// Timeout bounds each send (default 5s).
	Timeout time.Duration
	// Now stamps signatures (default time.Now).
	Now func() time.Time
}

// Webhook posts signed events to a receiver that rotates or retires
// credentials. It is safe for concurrent use.
type Webhook struct {
	url     string
	secret  []byte
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

// NewWebhook validates o and returns a Webhook.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	if _, err := checkURL("action: webhook: url", o.URL); err != nil {
		return nil, err
	}
	if len(o.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("action: webhook: secret is %d bytes, at least %d", len(o.Secret), MinWebhookSecret)
	}
	if o.Timeout < 0 {
		return nil, errors.New("action: webhook: timeout is negative")
	}
	w := &Webhook{url: o.URL, secret: bytes.Clone(o.Secret), client: o.HTTPClient, timeout: o.Timeout, now: o.Now}
	if w.client == nil {
		w.client = defaultHTTPClient()
	}
	if w.timeout == 0 {
		w.timeout = 5 * time.Second
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Event is what a webhook tells its receiver. It names the credential by
// token id only.
type Event struct {
	ID       string    `json:"id"` // the action id, also the Idempotency-Key
	Type     string    `json:"type"`
	TokenID  string    `json:"token_id"`
	ClientID string    `json:"client_id"`
	Subject  string    `json:"subject"`
	JTI      string    `json:"jti"`
	Reason   string    `json:"reason"`
	Rule     string    `json:"rule"`
	By       string    `json:"by"`
	Time     time.Time `json:"time"`
}

// Send posts ev as JSON, signed in the Vigil-Signature header
// ("t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>"), with
// ev.ID as Idempotency-Key. A 2xx answer is success; errors are
// *HTTPError (retryable for 408, 429 and 5xx) or network errors
// (retryable), see IsRetryable.
func (w *Webhook) Send(ctx context.Context, ev Event) error {
	switch {
	case ev.ID == "":
		return errors.New("action: webhook: event id is empty")
	case !validEventType(ev.Type):
		return fmt.Errorf("action: webhook: event type %q: want %s, %s or %s", ev.Type, EventRevoke, EventRotate, EventDormant)
	case ev.TokenID == "":
		return errors.New("action: webhook: token_id is empty")
	}
	now := w.now()
	if ev.Time.IsZero() {
		ev.Time = now
	}
	ev.Time = ev.Time.UTC()
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("action: webhook: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("action: webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", ev.ID)
	req.Header.Set(SignatureHeader, Sign(w.secret, now, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("action: webhook: %w", err)
	}
	defer resp.Body.Close()
	rb, rerr := readBody(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	if rerr != nil {
		rb = nil
	}
	return fmt.Errorf("action: webhook: %w", statusError(resp, rb, nil, now))
}

// Sign returns the Vigil-Signature header value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a Vigil-Signature header against body, for
// receivers: one of its v1 signatures (several are allowed, for key
// rotation) must match, compared in constant time, and its timestamp must
// be within tolerance of now (DefaultTolerance when tolerance <= 0).
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrBadSignature)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: two timestamps", ErrBadSignature)
			}
			ts = v
		case "v1":
			if s, err := hex.DecodeString(v); err == nil && len(s) == sha256.Size {
				sigs = append(sigs, s)
			}
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts != strconv.FormatInt(t, 10) {
		return fmt.Errorf("%w: missing or malformed timestamp", ErrBadSignature)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1 signature", ErrBadSignature)
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s old", ErrStaleSignature, d.Truncate(time.Second))
	}
	return nil
}
