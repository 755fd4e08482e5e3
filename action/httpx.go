package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody is the most of a response body read, for any endpoint.
const maxBody = 64 << 10

// maxDescription bounds the error_description kept from a response.
const maxDescription = 256

// redacted replaces a raw credential wherever one could be echoed.
const redacted = "[REDACTED]"

// HTTPError is an endpoint's answer other than success.
type HTTPError struct {
	Status int
	// Code and Description are the RFC 6749 §5.2 "error" and
	// "error_description" of a JSON error body, when there is one. They
	// are cut to printable ASCII and scrubbed of the credential sent.
	Code, Description string
	// Retryable: 408, 429 and 5xx answers, worth sending again later.
	Retryable bool
	// RetryAfter is the server's Retry-After, when given (0 otherwise).
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying. A Denier returns it for a
// request that can never succeed (any other Denier error is retried).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsRetryable reports whether err may go away if the same call is made
// again later: a retryable HTTPError, a network error, or a timeout. A
// cancelled context, an error marked Permanent and any other error are not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var p permanentError
	if errors.As(err, &p) {
		return false
	}
	var h *HTTPError
	if errors.As(err, &h) {
		return h.Retryable
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue)
}

// retryableStatus reports whether an HTTP status is worth retrying.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// checkURL validates an endpoint: absolute, https, or http to a loopback
// host (tests, sidecars); no user info (credentials have their own
// fields, and a URL lands in error messages).
func checkURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: not a URL", field)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%s: %q has no host", field, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s: user info in the URL is not allowed (set the credentials in their own fields)", field)
	case u.Fragment != "":
		return nil, fmt.Errorf("%s: %q has a fragment", field, raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("%s: %q: https is required (http only to a loopback host)", field, raw)
	default:
		return nil, fmt.Errorf("%s: %q: scheme must be https", field, raw)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultHTTPClient follows no redirects: a POST carrying a credential is
// never re-sent to a location the server names.
func defaultHTTPClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// wipingBody is a request body holding a credential: it zeroes its bytes
// when the transport closes it (or the sender does, whichever is first),
// and serializes that with the transport's reads.
type wipingBody struct {
	mu     sync.Mutex
	b      []byte
	off    int
	closed bool
}

func (w *wipingBody) Read(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.off >= len(w.b) {
		return 0, io.EOF
	}
	n := copy(p, w.b[w.off:])
	w.off += n
	return n, nil
}

func (w *wipingBody) Close() error {
	w.mu.Lock()
	clear(w.b)
	w.closed = true
	w.mu.Unlock()
	return nil
}

// appendForm appends b form-urlencoded (application/x-www-form-urlencoded:
// unreserved bytes as they are, space as '+', the rest %XX) without
// making a string of it.
func appendForm(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// readBody reads at most maxBody bytes of a response, reporting a longer one.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("response body over %d KiB", maxBody>>10)
	}
	return b, nil
}

// statusError makes the HTTPError for a non-success answer. token, if
// given, is scrubbed from what the server wrote.
func statusError(resp *http.Response, body, token []byte, now time.Time) *HTTPError {
	e := &HTTPError{Status: resp.StatusCode, Retryable: retryableStatus(resp.StatusCode)}
	if e.Retryable {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	var eb struct {
		Error       any `json:"error"`
		Description any `json:"error_description"`
	}
	if json.Unmarshal(body, &eb) == nil {
		if s, ok := eb.Error.(string); ok {
			e.Code = cleanText(s, token)
		}
		if s, ok := eb.Description.(string); ok {
			e.Description = cleanText(s, token)
		}
	}
	return e
}

// cleanText keeps the printable ASCII of s (RFC 6749's error and
// error_description alphabet), at most maxDescription bytes, with token
// replaced wherever it was echoed.
func cleanText(s string, token []byte) string {
	b := make([]byte, 0, min(len(s), 2*maxDescription))
	for i := 0; i < len(s) && len(b) < 2*maxDescription; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	out := scrub(string(b), token)
	if len(out) > maxDescription {
		out = out[:maxDescription]
	}
	return out
}

// scrub replaces every occurrence of token in s.
func scrub(s string, token []byte) string {
	if len(token) == 0 || !strings.Contains(s, string(token)) {
		return s
	}
	return strings.ReplaceAll(s, string(token), redacted)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
