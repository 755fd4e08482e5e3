package action

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client authentication methods (RFC 6749 §2.3.1, RFC 8414 names).
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
)

// ErrNotConfigured is returned by a call whose endpoint was not given.
var ErrNotConfigured = errors.New("action: endpoint not configured")

// OAuthOptions configure an OAuth client. The zero value of every field
// but the URLs and ClientID means its default.
type OAuthOptions struct {
	// RevocationURL (RFC 7009) and IntrospectionURL (RFC 7662); at least
	// one. https, or http to a loopback host.
	RevocationURL, IntrospectionURL string
	// ClientID and ClientSecret authenticate vigil to the authorization
	// server. Without a secret, client_id alone is sent in the form (a
	// public client).
	ClientID     string
	ClientSecret string
	// AuthMethod: ClientSecretBasic (default) or ClientSecretPost.
	AuthMethod string
	// HTTPClient, default one that follows no redirects.
	HTTPClient *http.Client
	// Timeout bounds each call (default 5s).
	Timeout time.Duration
}

func (o *OAuthOptions) validate() error {
	if o.RevocationURL == "" && o.IntrospectionURL == "" {
		return errors.New("action: oauth: neither revocation_url nor introspection_url is set")
	}
	if o.RevocationURL != "" {
		if _, err := checkURL("action: oauth: revocation_url", o.RevocationURL); err != nil {
			return err
		}
	}
	if o.IntrospectionURL != "" {
		if _, err := checkURL("action: oauth: introspection_url", o.IntrospectionURL); err != nil {
			return err
		}
	}
	switch {
	case o.ClientID == "":
		return errors.New("action: oauth: client_id is empty")
	case o.AuthMethod != "" && o.AuthMethod != ClientSecretBasic && o.AuthMethod != ClientSecretPost:
		return fmt.Errorf("action: oauth: auth_method %q: want %s or %s", o.AuthMethod, ClientSecretBasic, ClientSecretPost)
	case o.Timeout < 0:
		return errors.New("action: oauth: timeout is negative")
	}
	return nil
}

// OAuth revokes (RFC 7009) and introspects (RFC 7662) tokens at an
// authorization server. It is safe for concurrent use.
type OAuth struct {
	o OAuthOptions
}

// NewOAuth validates o and returns a client.
func NewOAuth(o OAuthOptions) (*OAuth, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.AuthMethod == "" {
		o.AuthMethod = ClientSecretBasic
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	return &OAuth{o: o}, nil
}

// Revoke asks the authorization server to revoke token (RFC 7009). hint is
// the optional token_type_hint ("access_token", "refresh_token"). A 200
// answer means revoked, also for a token the server does not know.
// Errors are *HTTPError for an answer (retryable for 408, 429 and 5xx,
// with the server's Retry-After) or a network error (retryable); see
// IsRetryable. Revoke does not keep token; the request body holding it is
// zeroed once sent.
func (c *OAuth) Revoke(ctx context.Context, token []byte, hint string) error {
	if c.o.RevocationURL == "" {
		return fmt.Errorf("action: revoke: %w", ErrNotConfigured)
	}
	if len(token) == 0 {
		return errors.New("action: revoke: empty token")
	}
	extra := ""
	if hint != "" {
		extra = "&token_type_hint=" + url.QueryEscape(hint)
	}
	resp, body, err := c.post(ctx, c.o.RevocationURL, token, extra)
	if err != nil {
		return fmt.Errorf("action: revoke: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("action: revoke: %w", statusError(resp, body, token, time.Now()))
	}
	return nil
}

// Introspect asks the authorization server about token (RFC 7662).
// Errors are as Revoke's, plus a malformed answer (naming the field).
func (c *OAuth) Introspect(ctx context.Context, token []byte) (Introspection, error) {
	if c.o.IntrospectionURL == "" {
		return Introspection{}, fmt.Errorf("action: introspect: %w", ErrNotConfigured)
	}
	if len(token) == 0 {
		return Introspection{}, errors.New("action: introspect: empty token")
	}
	resp, body, err := c.post(ctx, c.o.IntrospectionURL, token, "")
	if err != nil {
		return Introspection{}, fmt.Errorf("action: introspect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Introspection{}, fmt.Errorf("action: introspect: %w", statusError(resp, body, token, time.Now()))
	}
	in, err := decodeIntrospection(body)
	if err != nil {
		return Introspection{}, fmt.Errorf("action: introspect: %w", err)
	}
	return in, nil
}

// post sends token=<token><extra> with client authentication and reads
// the answer.
func (c *OAuth) post(ctx context.Context, endpoint string, token []byte, extra string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	form := make([]byte, 0, 6+3*len(token)+len(extra)+64)
	form = append(form, "token="...)
	form = appendForm(form, token)
	form = append(form, extra...)
	basic := c.o.AuthMethod == ClientSecretBasic && c.o.ClientSecret != ""
	if !basic {
		form = append(form, "&client_id="...)
		form = appendForm(form, []byte(c.o.ClientID))
		if c.o.ClientSecret != "" {
			form = append(form, "&client_secret="...)
			form = appendForm(form, []byte(c.o.ClientSecret))
		}
	}
	body := &wipingBody{b: form}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = int64(len(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
		cred := url.QueryEscape(c.o.ClientID) + ":" + url.QueryEscape(c.o.ClientSecret)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, nil, Permanent(fmt.Errorf("HTTP %d: redirects are not followed", resp.StatusCode))
	}
	return resp, b, nil
}

// Introspection is an RFC 7662 answer. An inactive token carries nothing
// but Active false, whatever else the server sent.
type Introspection struct {
	Active    bool
	Scope     []string
	ClientID  string
	Username  string
	TokenType string
	Subject   string
	Issuer    string
	JTI       string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	// CNF is the confirmation (RFC 7800): a DPoP key thumbprint (RFC 9449)
	// or a certificate thumbprint (RFC 8705).
	CNF struct{ JKT, X5TS256 string }
}

// maxNumericDate is 9999-12-31T23:59:59Z.
const maxNumericDate = 253402300799

// decodeIntrospection reads an introspection response. Members of the
// wrong type are errors naming them; null is absence; unknown members are
// ignored.
func decodeIntrospection(b []byte) (Introspection, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Introspection{}, fmt.Errorf("introspection: invalid JSON at byte %d", se.Offset)
		}
		return Introspection{}, errors.New("introspection: response is not a JSON object")
	}
	var in Introspection
	raw, ok := m["active"]
	if !ok || isNull(raw) {
		return Introspection{}, errors.New(`introspection: field "active" is missing`)
	}
	if err := json.Unmarshal(raw, &in.Active); err != nil {
		return Introspection{}, errors.New(`introspection: field "active": want true or false`)
	}
	if !in.Active {
		return Introspection{}, nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"client_id", &in.ClientID}, {"username", &in.Username}, {"token_type", &in.TokenType},
		{"sub", &in.Subject}, {"iss", &in.Issuer}, {"jti", &in.JTI},
	} {
		if err := decodeString(m, f.name, f.dst); err != nil {
			return Introspection{}, err
		}
	}
	var scope string
	if err := decodeString(m, "scope", &scope); err != nil {
		return Introspection{}, err
	}
	in.Scope = strings.Fields(scope)
	if raw, ok := m["aud"]; ok && !isNull(raw) {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			in.Audience = []string{one}
		} else if err := json.Unmarshal(raw, &in.Audience); err != nil {
			return Introspection{}, errors.New(`introspection: field "aud": want a string or an array of strings`)
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &in.Expiry}, {"iat", &in.IssuedAt}, {"nbf", &in.NotBefore}} {
		if err := decodeDate(m, f.name, f.dst); err != nil {
			return Introspection{}, err
		}
	}
	if raw, ok := m["cnf"]; ok && !isNull(raw) {
		var cnf map[string]json.RawMessage
		if err := json.Unmarshal(raw, &cnf); err != nil {
			return Introspection{}, errors.New(`introspection: field "cnf": want an object`)
		}
		if err := decodeString(cnf, "jkt", &in.CNF.JKT); err != nil {
			return Introspection{}, fmt.Errorf(`introspection: field "cnf": %w`, err)
		}
		if err := decodeString(cnf, "x5t#S256", &in.CNF.X5TS256); err != nil {
			return Introspection{}, fmt.Errorf(`introspection: field "cnf": %w`, err)
		}
	}
	return in, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func decodeString(m map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("introspection: field %q: want a string", name)
	}
	return nil
}

func decodeDate(m map[string]json.RawMessage, name string, dst *time.Time) error {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("introspection: field %q: want a number of seconds", name)
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return fmt.Errorf("introspection: field %q: out of range", name)
	}
	sec := math.Floor(f)
	*dst = time.Unix(int64(sec), int64((f-sec)*1e9)).UTC()
	return nil
}
