// Package gate is vigil's inline contract: what a gateway, a proxy or a
// middleware knows of a request before it goes upstream (Request), what
// vigil decides about it (Verdict) and what the client or the gateway is
// told (Response). The adapters (forward-auth, Envoy ext_authz, the proxy,
// the net/http middleware) translate their protocol to and from these types
// and hold no policy of their own; a Checker makes every decision.
package gate

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/policy"
)

// ReservedPrefix begins the names of the headers only vigil sends upstream
// (X-Vigil-Decision, X-Vigil-Risk, X-Vigil-Token-Id, X-Vigil-Shadow):
// adapters remove any a client sent, so the upstream can believe them.
const ReservedPrefix = "X-Vigil-"

// Reserved reports whether a header name begins with ReservedPrefix, in
// any case.
func Reserved(name string) bool {
	return len(name) >= len(ReservedPrefix) && strings.EqualFold(name[:len(ReservedPrefix)], ReservedPrefix)
}

// Headers looks up a request header by name, case-insensitively, and returns
// "" when it is absent. http.Header satisfies it; MapHeaders adapts the
// lower-cased header maps of Envoy's CheckRequest.
type Headers interface {
	Get(name string) string
}

// MapHeaders is a header map with lower-case keys, as Envoy sends them.
type MapHeaders map[string]string

// Get returns the value of the header name in any case.
func (m MapHeaders) Get(name string) string {
	if v, ok := m[name]; ok {
		return v
	}
	return m[strings.ToLower(name)]
}

// Request is what is known of a request before it goes upstream.
type Request struct {
	// Time the request arrived; the zero value means now.
	Time   time.Time
	Method string
	// Scheme is how the client addressed the request: "https" or "http",
	// as the adapter established it (TLS, or a trusted proxy's
	// X-Forwarded-Proto or Envoy's attributes). Empty means https: the
	// external URL a DPoP proof names (htu) is rebuilt from Scheme, Host
	// and the path of URI.
	Scheme string
	Host   string
	// URI is the request target as received: path and query, not decoded.
	URI string
	// ClientIP is the address of the client, as the adapter established it
	// from the connection or from the forwarding headers of a trusted proxy.
	// It may be invalid when nothing trustworthy says.
	ClientIP netip.Addr
	// Header carries the request's headers (credentials, user agent, DPoP
	// proof, request id). Never nil.
	Header Headers
	// Route is the route template if the adapter knows it (a gateway's
	// route name, a mux pattern); empty means derive it from URI.
	Route string
	// RequestID is the gateway's id for the request, if any.
	RequestID string
	// ClientCert is the thumbprint of the client's TLS certificate: the
	// base64url SHA-256 of its DER, as a certificate-bound token's cnf
	// x5t#S256 names it (RFC 8705 §3.1). The adapter establishes it from
	// the TLS connection, Envoy's CheckRequest attributes, or the
	// certificate header of a trusted proxy; "" means none was presented.
	ClientCert string
}

// Kind says how a request presented its credential.
type Kind uint8

const (
	// Anonymous requests carry no credential; they are scored under a key
	// derived from the client address.
	Anonymous Kind = iota
	Bearer         // Authorization: Bearer
	DPoP           // Authorization: DPoP (RFC 9449)
	APIKey         // a configured API-key header or query parameter, or Authorization: Basic
)

var kindNames = [...]string{"anonymous", "bearer", "dpop", "api_key"}

// String returns the kind's name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// RateLimit describes the per-credential limiter that applies while a
// credential is throttled (draft-ietf-httpapi-ratelimit-headers).
type RateLimit struct {
	Limit     int           // requests allowed per Window
	Remaining int           // requests left in the current window
	Reset     time.Duration // until the quota is fully available again
	Window    time.Duration
}

// Verdict is vigil's decision for one request.
type Verdict struct {
	// TokenID is the credential's fingerprint (never the credential).
	TokenID string
	Kind    Kind
	// RequestID identifies the decision; the gateway's id when it sent one.
	RequestID string
	Risk      float64
	// Decided is the level the engine reached; Level is what is enforced.
	// They differ in shadow mode (Level is Allow) and when a throttled
	// credential's request fits its rate limit (Level is Allow, Limited
	// false, RateLimit set).
	Decided policy.Level
	Level   policy.Level
	Shadow  bool
	Reasons []decision.Reason
	// Throttle: the limiter's state; RetryAfter is set when the request is
	// rejected.
	Limited    bool
	RateLimit  RateLimit
	RetryAfter time.Duration
	// Problem is a short machine-readable cause when the request itself is
	// unusable (e.g. "invalid_token"); empty otherwise.
	Problem string
	// DPoPNonce, with a DPoP Problem, is the server nonce the client must
	// put in its next proof (RFC 9449 §8); the response carries it as the
	// DPoP-Nonce header. Empty when nonces are not required.
	DPoPNonce string
}

// Response is what the adapter sends: to the client for a denial, or as
// headers added to the upstream request for an allow.
type Response struct {
	// Status is the HTTP status for the client; 200 means pass upstream.
	Status int
	// Header goes to the client with a denial (Retry-After, RateLimit,
	// WWW-Authenticate, Content-Type) or with an allow's response.
	Header http.Header
	// Upstream headers are added to the request sent upstream on an allow
	// (x-vigil-decision, x-vigil-risk, x-vigil-token-id).
	Upstream http.Header
	Body     []byte
}

// Allowed reports whether the request goes upstream.
func (r *Response) Allowed() bool { return r.Status >= 200 && r.Status < 300 }

// Result is a Checker's answer.
type Result struct {
	Verdict  Verdict
	Response Response
	// Ticket identifies the request for Report, which feeds back what the
	// upstream answered.
	Ticket Ticket
}

// Ticket carries what Report needs to find the request's credential again.
type Ticket struct {
	TokenID string
	Time    time.Time
	// Trust is how far the engine learned from the request (opaque to
	// adapters: they hand the Ticket back as they got it).
	Trust uint8
}

// Outcome is what the upstream answered.
type Outcome struct {
	Status        int
	ResponseBytes int64
}

// Checker decides about requests. Implementations are safe for concurrent
// use.
type Checker interface {
	// Check judges r into res. It overwrites every field of res but reuses
	// the maps of res.Response and the backing array of res.Verdict.Reasons
	// when they are not nil, so an adapter that keeps a Result per request
	// slot allocates nothing for them. Header value slices it puts in the
	// maps are never modified afterwards (a reused map gets new slices), so
	// an adapter may hand them to the request or response it serves. An error means vigil could not
	// decide (it is shutting down, the context ended); adapters then fail
	// open or closed as configured. Malformed requests are not errors: they
	// are scored or answered with a 4xx Response.
	Check(ctx context.Context, r *Request, res *Result) error
	// Report feeds back the upstream's answer to a checked request, so the
	// credential's volume and failure signals see it.
	Report(t Ticket, o Outcome)
}
