package credential

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
)

// Defaults applied to the zero values of Options and JWTOptions.
const (
	DefaultAPIKeyHeader = "X-API-Key"
	DefaultMaxLength    = 4096
	DefaultRefresh      = 15 * time.Minute
	DefaultLeeway       = 30 * time.Second

	// MinRefresh is the shortest JWKS refresh interval accepted, so that a
	// misread setting cannot hammer the identity provider.
	MinRefresh = time.Second
)

// Problem codes of an Error, the error codes of RFC 6750 §3.1; a caller
// answers 401 with them in WWW-Authenticate.
const (
	// ProblemInvalidRequest: the request presents its credential in a
	// malformed or ambiguous way (an Authorization value that is not a
	// scheme and its credentials, no token after the scheme, the same
	// credential twice), or a Basic credential that is malformed.
	ProblemInvalidRequest = "invalid_request"
	// ProblemInvalidToken: the credential itself is malformed (characters
	// outside its syntax, too long) or, with verification on, a JWT that is
	// not valid (signature, expiry, issuer, audience).
	ProblemInvalidToken = "invalid_token"
)

// Sentinels an *Error wraps according to its Problem, for errors.Is.
var (
	ErrInvalidRequest = errors.New(ProblemInvalidRequest)
	ErrInvalidToken   = errors.New(ProblemInvalidToken)
)

// Options configures an Extractor. The zero value means the defaults.
type Options struct {
	// APIKeyHeaders are the request headers that carry an API key, in order
	// of precedence, in any case. nil means {DefaultAPIKeyHeader}; an empty
	// non-nil slice means none.
	APIKeyHeaders []string
	// APIKeyQuery are the query parameters that carry an API key, in order
	// of precedence, matched exactly (query parameter names are
	// case-sensitive). Default none: keys in URLs end up in access logs.
	APIKeyQuery []string
	// MaxLength is the longest credential accepted, in bytes; a longer one
	// is malformed. 0 means DefaultMaxLength.
	MaxLength int
	// JWT configures how JWT access tokens are read.
	JWT JWTOptions
}

// JWTOptions configures how JWT access tokens (bearer or DPoP tokens that
// have the shape of a JWT) are read. The zero value reads their claims
// without verifying them.
type JWTOptions struct {
	// Verify requires a JWT's signature to verify against the JWKS (exactly
	// one of JWKSURL and JWKSFile), and checks exp, nbf and iat with Leeway,
	// and Issuer and Audience when set. A JWT that fails is invalid_token.
	Verify bool
	// JWKSURL is where the JWKS is fetched (https, or http to a loopback
	// address).
	JWKSURL string
	// JWKSFile is a file holding the JWKS.
	JWKSFile string
	// Refresh is the interval between background reloads of the JWKS.
	// 0 means DefaultRefresh; at least MinRefresh.
	Refresh time.Duration
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Audience, when set, must be among the aud claim's values.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat. 0 means
	// DefaultLeeway.
	Leeway time.Duration
	// HTTPClient fetches JWKSURL. nil means a client with a 10 s timeout that
	// refuses redirects from https to http. It is meant for embedding and
	// tests (a private CA, a proxy), not for configuration files.
	HTTPClient *http.Client
}

// Credential is what a request presented. Reuse one Credential per
// goroutine: Extract copies the raw credential into a buffer the Credential
// keeps from one call to the next, so the steady state allocates nothing
// for it. Secret is valid until the next Extract into the same Credential;
// a copy of a Credential shares that buffer.
type Credential struct {
	// Kind says how the credential was presented; Anonymous when there was
	// none (an Authorization scheme other than Bearer, DPoP and Basic is
	// none), or when Extract returned an error. Basic credentials are
	// APIKey: like an API key, they are a long-lived secret the client
	// sends as it is.
	Kind gate.Kind
	// Secret is the raw credential (for Authorization, the token without its
	// scheme: for Basic, the base64 value as sent; for a query parameter,
	// the percent-decoded value). The caller fingerprints it and wipes it
	// (Secret.Wipe). nil for Anonymous.
	Secret event.Secret
	// Source says where the credential came from: "authorization" (Bearer
	// and DPoP), "authorization:basic", "header:x-api-key" (the header name
	// in lower case), "query:api_key". Empty for Anonymous.
	Source string
	// Claims are the JWT's claims; the zero value unless the credential is
	// a bearer or DPoP token that is a JWT.
	Claims Claims

	buf     []byte // backing storage of Secret, kept across calls
	scratch []byte // where a JWT is decoded, kept across calls, wiped after use
}

// Claims are the claims of a JWT access token that vigil uses. Absent
// claims are zero values.
type Claims struct {
	// JWT is true when the token parsed as a JWT.
	JWT bool
	// Verified is true when its signature verified and its times, issuer
	// and audience were checked (JWTOptions.Verify).
	Verified bool
	Subject  string // sub
	ClientID string // client_id, else azp
	JTI      string // jti
	// Scope is the scope claim, space-separated; else the scp claim, an
	// array of strings (joined with spaces) or a string.
	Scope  string
	Issuer string    // iss
	Expiry time.Time // exp
	// JKT is cnf.jkt, the thumbprint of the DPoP key the token is bound to
	// (RFC 9449).
	JKT string
	// X5T is cnf["x5t#S256"], the thumbprint of the client certificate the
	// token is bound to (RFC 8705).
	X5T string
}

// Error is a malformed or invalid credential. Its message names the field
// and what was wrong in fixed words; it never contains the credential or
// any part of the request's value.
type Error struct {
	// Problem is ProblemInvalidRequest or ProblemInvalidToken.
	Problem string
	// Field is where the credential was: "Authorization",
	// "header:x-api-key", "query:api_key".
	Field string
	// Reason says what was wrong.
	Reason string
}

// Error returns "credential: <field>: <reason>".
func (e *Error) Error() string { return "credential: " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalidRequest or ErrInvalidToken according to Problem.
func (e *Error) Unwrap() error {
	if e.Problem == ProblemInvalidToken {
		return ErrInvalidToken
	}
	return ErrInvalidRequest
}

// Reasons of an Error. They are fixed words so that nothing of a request can
// reach a message; TestErrorMessagesAreFixed holds the list to it.
const (
	reasonDuplicate   = "presented more than once"
	reasonAuthSyntax  = "value is not an authentication scheme followed by credentials"
	reasonEmpty       = "credential is empty"
	reasonToken68     = "token has characters outside the token68 syntax of RFC 6750"
	reasonKeyChars    = "credential has characters other than visible ASCII, or a comma"
	reasonEncoding    = "credential is not valid percent-encoding"
	reasonJWTMalform  = "JWT is malformed"
	reasonJWTSig      = "JWT signature does not verify"
	reasonJWTNoKey    = "no key in the JWKS matches the JWT's key id"
	reasonJWTExpired  = "JWT has expired"
	reasonJWTNotYet   = "JWT is not valid yet"
	reasonJWTIssuedAt = "JWT is issued in the future"
	reasonJWTIssuer   = "JWT issuer is not accepted"
	reasonJWTAudience = "JWT audience is not accepted"
	reasonJWTInvalid  = "JWT is not valid"
)

// tooLongReason is the Reason for credentials longer than max bytes.
func tooLongReason(max int) string {
	return "credential is longer than " + strconv.Itoa(max) + " bytes"
}

// sourceBasic is the Source of Basic credentials; sourceRaw of a raw key
// sent as the whole Authorization value.
const (
	sourceBasic = "authorization:basic"
	sourceRaw   = "authorization:raw"
)

// name is a header or query parameter the Extractor looks at, with its
// spellings precomputed so that lookups allocate nothing.
type name struct {
	canonical string // http.Header's key
	lower     string // gate.MapHeaders' key
	given     string // as configured
	field     string // Error.Field
	source    string // Credential.Source
}

// Extractor finds the credential of a request. It is safe for concurrent
// use; Close stops its background JWKS reloads.
type Extractor struct {
	auth          name
	headers       []name
	queries       []name
	maxLen        int
	reasonTooLong string
	jwt           *verifier // nil unless JWTOptions.Verify
}

// New returns an Extractor for o. It validates o and, when JWT verification
// is on, loads the JWKS before returning: a JWKS that cannot be fetched,
// read or parsed, or that holds no key, fails New with an error naming the
// URL or file and the cause. ctx bounds that first load only; the
// background reloads run until Close. log receives JWKS reload failures
// and changes (nil discards them); Extract itself never logs.
func New(ctx context.Context, o Options, log *slog.Logger) (*Extractor, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	x := &Extractor{
		auth: name{
			canonical: "Authorization", lower: "authorization", given: "Authorization",
			field: "Authorization", source: "authorization",
		},
		maxLen: o.MaxLength,
	}
	x.reasonTooLong = tooLongReason(x.maxLen)
	for _, h := range o.APIKeyHeaders {
		l := strings.ToLower(h)
		x.headers = append(x.headers, name{
			canonical: textproto.CanonicalMIMEHeaderKey(h), lower: l, given: h,
			field: "header:" + l, source: "header:" + l,
		})
	}
	for _, q := range o.APIKeyQuery {
		x.queries = append(x.queries, name{given: q, field: "query:" + q, source: "query:" + q})
	}
	if o.JWT.Verify {
		v, err := newVerifier(ctx, &o.JWT, log)
		if err != nil {
			return nil, err
		}
		x.jwt = v
	}
	return x, nil
}

// validate checks o and fills in the defaults.
func (o *Options) validate() error {
	if o.APIKeyHeaders == nil {
		o.APIKeyHeaders = []string{DefaultAPIKeyHeader}
	}
	seen := map[string]bool{}
	for _, h := range o.APIKeyHeaders {
		if !isToken(h) {
			return fmt.Errorf("credential: API-key header %q is not a valid header name", h)
		}
		l := strings.ToLower(h)
		if l == "authorization" {
			return errors.New("credential: Authorization cannot be an API-key header: it is read as Bearer, DPoP or Basic")
		}
		if seen[l] {
			return fmt.Errorf("credential: API-key header %q is listed twice", h)
		}
		seen[l] = true
	}
	clear(seen)
	for _, q := range o.APIKeyQuery {
		if q == "" || strings.ContainsAny(q, "&=#?%+ \t") {
			return fmt.Errorf("credential: API-key query parameter %q is not a plain parameter name", q)
		}
		if seen[q] {
			return fmt.Errorf("credential: API-key query parameter %q is listed twice", q)
		}
		seen[q] = true
	}
	switch {
	case o.MaxLength == 0:
		o.MaxLength = DefaultMaxLength
	case o.MaxLength < 0:
		return fmt.Errorf("credential: max length %d is negative", o.MaxLength)
	}
	return o.JWT.validate()
}

// validate checks j and fills in the defaults.
func (j *JWTOptions) validate() error {
	if !j.Verify {
		// Settings that only mean something when verifying are refused
		// rather than ignored: an issuer that is silently not checked is
		// worse than a configuration error.
		switch {
		case j.JWKSURL != "", j.JWKSFile != "":
			return errors.New("credential: a JWKS is configured but JWT verification is off")
		case j.Issuer != "", j.Audience != "":
			return errors.New("credential: a JWT issuer or audience is configured but JWT verification is off: they would not be checked")
		}
		return nil
	}
	switch {
	case j.JWKSURL == "" && j.JWKSFile == "":
		return errors.New("credential: JWT verification needs a JWKS URL or a JWKS file")
	case j.JWKSURL != "" && j.JWKSFile != "":
		return errors.New("credential: set a JWKS URL or a JWKS file, not both")
	}
	if j.JWKSURL != "" {
		if err := checkJWKSURL(j.JWKSURL); err != nil {
			return err
		}
	}
	switch {
	case j.Refresh == 0:
		j.Refresh = DefaultRefresh
	case j.Refresh < MinRefresh:
		return fmt.Errorf("credential: JWKS refresh interval %s is shorter than %s", j.Refresh, MinRefresh)
	}
	switch {
	case j.Leeway == 0:
		j.Leeway = DefaultLeeway
	case j.Leeway < 0:
		return fmt.Errorf("credential: JWT leeway %s is negative", j.Leeway)
	}
	return nil
}

// checkJWKSURL accepts https URLs, and http ones to a loopback address.
func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("credential: JWKS URL: %w", err)
	}
	if u.User != nil {
		return fmt.Errorf("credential: JWKS URL %s carries user information; it would end up in logs", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && !strings.HasPrefix(h, "127.") && h != "::1" {
			return fmt.Errorf("credential: JWKS URL %s is plain http to a host that is not loopback; keys must come over https", s)
		}
	default:
		return fmt.Errorf("credential: JWKS URL %s: scheme must be https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("credential: JWKS URL %s has no host", s)
	}
	return nil
}

// Close stops the background JWKS reloads and waits for them. Extract may
// still be called afterwards and verifies with the last keys loaded.
func (x *Extractor) Close() error {
	if x.jwt != nil {
		x.jwt.close()
	}
	return nil
}

// Extract finds the credential of a request with headers h and request
// target uri (path and query, undecoded) and stores it in c, overwriting
// all of c but its buffer. The first credential present wins: Authorization,
// then the API-key headers, then the query parameters, in configured order.
// An Authorization header of another scheme than Bearer, DPoP and Basic
// (AWS SigV4, Digest, "Token xyz") holds no credential vigil reads: the
// API-key headers and query parameters are looked at as if it were absent.
//
// No credential at all is not an error: c.Kind is Anonymous. A malformed
// or invalid credential returns an *Error and leaves c Anonymous with a nil
// Secret (the bytes already copied are wiped); the caller scores the
// request under its client address and answers 401.
func (x *Extractor) Extract(h gate.Headers, uri string, c *Credential) error {
	*c = Credential{buf: c.buf, scratch: c.scratch}
	if v, dup := lookup(h, &x.auth); v != "" || dup {
		if dup {
			return x.fail(c, ProblemInvalidRequest, x.auth.field, reasonDuplicate)
		}
		if v = trimOWS(v); v != "" {
			if read, err := x.fromAuthorization(v, c); read {
				return err
			}
		}
	}
	for i := range x.headers {
		n := &x.headers[i]
		v, dup := lookup(h, n)
		if dup {
			return x.fail(c, ProblemInvalidRequest, n.field, reasonDuplicate)
		}
		if v = trimOWS(v); v != "" {
			return x.fromAPIKey(v, n, c)
		}
	}
	if len(x.queries) > 0 {
		return x.fromQuery(uri, c)
	}
	return nil
}

// fail wipes what c holds, leaves it Anonymous and returns the error.
func (x *Extractor) fail(c *Credential, problem, field, reason string) error {
	clear(c.buf)
	*c = Credential{buf: c.buf[:0], scratch: c.scratch}
	return &Error{Problem: problem, Field: field, Reason: reason}
}

// setSecret copies raw into c's buffer and points Secret at it.
func (c *Credential) setSecret(raw string) {
	c.buf = append(c.buf[:0], raw...)
	c.Secret = event.Secret(c.buf)
}

// fromAuthorization reads an Authorization value, trimmed and not empty.
// It reports false, with c left Anonymous, when the value is well-formed
// credentials of a scheme vigil does not read, so that Extract goes on to
// the API-key headers and query parameters.
func (x *Extractor) fromAuthorization(v string, c *Credential) (read bool, _ error) {
	scheme, tok := splitScheme(v)
	var kind gate.Kind
	switch {
	case asciiEqualFold(scheme, "Bearer"):
		kind = gate.Bearer
	case asciiEqualFold(scheme, "DPoP"):
		kind = gate.DPoP
	case asciiEqualFold(scheme, "Basic"):
		return true, x.fromBasic(tok, c)
	default:
		if tok == "" && len(scheme) >= minRawKey && len(scheme) <= x.maxLen && isToken68(scheme) {
			// "Authorization: sk_live_…": a raw API key with no scheme, as
			// some APIs take it. Short bare words ("Negotiate") are not.
			c.setSecret(scheme)
			c.Kind = gate.APIKey
			c.Source = sourceRaw
			return true, nil
		}
		if !isToken(scheme) || tok == "" {
			return true, x.fail(c, ProblemInvalidRequest, x.auth.field, reasonAuthSyntax)
		}
		if reason := checkOtherCredentials(tok); reason != "" {
			return true, x.fail(c, ProblemInvalidRequest, x.auth.field, reason)
		}
		return false, nil
	}
	switch {
	case tok == "":
		return true, x.fail(c, ProblemInvalidRequest, x.auth.field, reasonEmpty)
	case len(tok) > x.maxLen:
		return true, x.fail(c, ProblemInvalidToken, x.auth.field, x.reasonTooLong)
	case !isToken68(tok):
		return true, x.fail(c, ProblemInvalidToken, x.auth.field, reasonToken68)
	}
	c.setSecret(tok)
	c.Kind = kind
	c.Source = x.auth.source
	if jwtShaped(tok) {
		if x.jwt != nil {
			var reason string
			if reason, c.scratch = x.jwt.verify(c.buf, c.scratch, &c.Claims); reason != "" {
				return true, x.fail(c, ProblemInvalidToken, x.auth.field, reason)
			}
		} else {
			// A token that does not read as a JWT is an opaque token.
			var p payload
			_, c.scratch = readJWT(c.buf, c.scratch, &c.Claims, &p)
		}
	}
	return true, nil
}

// minRawKey is the shortest bare Authorization value taken as a raw API
// key; anything shorter is more likely a scheme without credentials.
const minRawKey = 16

// fromBasic reads the token of a Basic Authorization value (RFC 7617): the
// base64 of user-id:password, taken whole as the secret and never decoded.
// RFC 6750's invalid_token is a bearer-token notion, so a malformed Basic
// credential is invalid_request.
func (x *Extractor) fromBasic(tok string, c *Credential) error {
	switch {
	case tok == "":
		return x.fail(c, ProblemInvalidRequest, x.auth.field, reasonEmpty)
	case len(tok) > x.maxLen:
		return x.fail(c, ProblemInvalidRequest, x.auth.field, x.reasonTooLong)
	case !isToken68(tok):
		return x.fail(c, ProblemInvalidRequest, x.auth.field, reasonToken68)
	}
	c.setSecret(tok)
	c.Kind = gate.APIKey
	c.Source = sourceBasic
	return nil
}

// fromAPIKey reads an API-key header value, trimmed and not empty.
func (x *Extractor) fromAPIKey(v string, n *name, c *Credential) error {
	switch {
	case len(v) > x.maxLen:
		return x.fail(c, ProblemInvalidToken, n.field, x.reasonTooLong)
	case !isAPIKey(v):
		return x.fail(c, ProblemInvalidToken, n.field, reasonKeyChars)
	}
	c.setSecret(v)
	c.Kind = gate.APIKey
	c.Source = n.source
	return nil
}

// fromQuery looks for the API-key query parameters in uri.
func (x *Extractor) fromQuery(uri string, c *Credential) error {
	q := queryOf(uri)
	if q == "" {
		return nil
	}
	for i := range x.queries {
		n := &x.queries[i]
		raw, count := findParam(q, n.given)
		switch {
		case count == 0:
			continue
		case count > 1:
			return x.fail(c, ProblemInvalidRequest, n.field, reasonDuplicate)
		case raw == "":
			return x.fail(c, ProblemInvalidRequest, n.field, reasonEmpty)
		case len(raw) > 3*x.maxLen: // cannot decode to maxLen bytes or fewer
			return x.fail(c, ProblemInvalidToken, n.field, x.reasonTooLong)
		}
		b, ok := appendUnescaped(c.buf[:0], raw)
		c.buf = b
		switch {
		case !ok:
			return x.fail(c, ProblemInvalidRequest, n.field, reasonEncoding)
		case len(b) > x.maxLen:
			return x.fail(c, ProblemInvalidToken, n.field, x.reasonTooLong)
		case len(b) == 0:
			return x.fail(c, ProblemInvalidRequest, n.field, reasonEmpty)
		case !isAPIKey(string(b)):
			return x.fail(c, ProblemInvalidToken, n.field, reasonKeyChars)
		}
		c.Secret = event.Secret(b)
		c.Kind = gate.APIKey
		c.Source = n.source
		return nil
	}
	return nil
}

// lookup returns the value of header n in h, and whether h holds it more
// than once (only an http.Header can say). It looks the precomputed
// spellings up directly, so it allocates nothing, where http.Header.Get of a
// non-canonical name and gate.MapHeaders.Get of a mixed-case one would.
func lookup(h gate.Headers, n *name) (v string, dup bool) {
	switch h := h.(type) {
	case nil:
		return "", false
	case http.Header:
		vs := h[n.canonical]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], len(vs) > 1
	case gate.MapHeaders:
		if v, ok := h[n.lower]; ok {
			return v, false
		}
		// Not the documented form, but tolerated as MapHeaders.Get does.
		if v, ok := h[n.canonical]; ok {
			return v, false
		}
		return h[n.given], false
	default:
		return h.Get(n.canonical), false
	}
}
