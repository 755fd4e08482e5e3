// Package binding checks that a credential is presented by the party it
// is bound to, at the enforcement point: DPoP proofs (RFC 9449) with
// optional server nonces, and certificate-bound tokens (RFC 8705), so that
// a stolen bound access token is useless without its private key.
package binding

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Error codes of RFC 9449, as the WWW-Authenticate error parameter.
const (
	ErrInvalidProof = "invalid_dpop_proof"
	ErrUseNonce     = "use_dpop_nonce"
)

// Error is a failed binding check: the RFC's error code (RFC 9449 §7.1,
// RFC 6750 §3.1) and what was wrong. Reason never holds the proof, the
// access token or the certificate.
type Error struct {
	Code   string
	Reason string
}

func (e *Error) Error() string { return "binding: " + e.Code + ": " + e.Reason }

func invalid(format string, a ...any) error {
	return &Error{Code: ErrInvalidProof, Reason: fmt.Sprintf(format, a...)}
}

// ReplayCache remembers proofs' jti values. Seen records key until the
// time given and reports whether it was already recorded, atomically, so
// that one proof is accepted once however many replicas see it.
type ReplayCache interface {
	Seen(key string, until time.Time) (bool, error)
}

// Nonces issues and checks server nonces (RFC 9449 §8). Valid reports
// whether a nonce a client sent is current; Current is the one to send it
// when it is not. Both are called concurrently, Valid once per proof;
// Current returns a string of RFC 9449's NQCHAR (printable ASCII without
// '"' and backslash). HMACNonces implements it without shared state.
type Nonces interface {
	Valid(nonce string) bool
	Current() string
}

// DPoPOptions configure a Verifier.
type DPoPOptions struct {
	// Algorithms a proof may be signed with; nil means ES256, ES384,
	// ES512, PS256, PS384, PS512, RS256 and EdDSA. Symmetric algorithms
	// and "none" are never accepted.
	Algorithms []jwa.SignatureAlgorithm
	// MaxAge is how old a proof's iat may be; 0 means 60 s. Skew is the
	// clock difference allowed either way; 0 means 5 s.
	MaxAge, Skew time.Duration
	// Replay is required: it makes each proof usable once.
	Replay ReplayCache
	// Nonces, when set, requires a current server nonce in every proof.
	Nonces Nonces
	Now    func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	o    DPoPOptions
	algs []jwa.SignatureAlgorithm
}

// NewVerifier returns a Verifier.
func NewVerifier(o DPoPOptions) (*Verifier, error) {
	if o.Replay == nil {
		return nil, errors.New("dpop: a replay cache is required")
	}
	if o.MaxAge == 0 {
		o.MaxAge = time.Minute
	}
	if o.Skew == 0 {
		o.Skew = 5 * time.Second
	}
	if o.MaxAge < 0 || o.Skew < 0 {
		return nil, fmt.Errorf("dpop: max_age %s and skew %s must be positive", o.MaxAge, o.Skew)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	algs := o.Algorithms
	if algs == nil {
		algs = []jwa.SignatureAlgorithm{jwa.ES256(), jwa.ES384(), jwa.ES512(), jwa.PS256(), jwa.PS384(), jwa.PS512(), jwa.RS256(), jwa.EdDSA()}
	}
	for _, a := range algs {
		if a.IsSymmetric() || a == jwa.NoSignature() {
			return nil, fmt.Errorf("dpop: algorithm %s is not allowed: a proof is signed with a private key", a)
		}
	}
	return &Verifier{o: o, algs: algs}, nil
}

// Nonce returns the server nonce a client must put in its next proof
// (the DPoP-Nonce header, RFC 9449 §8), or "" when nonces are not
// required.
func (v *Verifier) Nonce() string {
	if v.o.Nonces == nil {
		return ""
	}
	return v.o.Nonces.Current()
}

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method (htm).
	Method string
	// URL is the request's external URL (htu): scheme, host and path as
	// the client addressed them; query and fragment are ignored.
	URL string
	// AccessToken, when the request carries one, must be the token the
	// proof's ath hashes.
	AccessToken []byte
	// JKT, when the access token is bound (its cnf.jkt claim), must be
	// the SHA-256 thumbprint of the proof's key.
	JKT string
}

// Proof is what a valid proof established.
type Proof struct {
	// JKT is the base64url SHA-256 JWK thumbprint (RFC 7638) of the key
	// that signed the proof.
	JKT string
	JTI string
	IAT time.Time
}

// maxProof bounds the proof's size: a header line, not a document.
const maxProof = 8 << 10

type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// Verify checks the DPoP header value proof against r.
func (v *Verifier) Verify(proof string, r Request) (Proof, error) {
	if proof == "" {
		return Proof{}, invalid("no DPoP proof")
	}
	if len(proof) > maxProof {
		return Proof{}, invalid("proof of %d bytes, at most %d", len(proof), maxProof)
	}
	if strings.Count(proof, ".") != 2 {
		return Proof{}, invalid("not a compact JWS")
	}
	// One parse: the key provider checks the protected header and hands
	// jws.Verify the proof's own key.
	var key jwk.Key
	var headerErr error
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		key, headerErr = v.header(sig.ProtectedHeaders())
		if headerErr != nil {
			return headerErr
		}
		alg, _ := sig.ProtectedHeaders().Algorithm()
		sink.Key(alg, key)
		return nil
	})
	payload, err := jws.Verify([]byte(proof), jws.WithCompact(), jws.WithKeyProvider(provider))
	switch {
	case headerErr != nil:
		return Proof{}, headerErr
	case err != nil && key == nil:
		return Proof{}, invalid("not a JWS")
	case err != nil:
		return Proof{}, invalid("signature does not verify with the proof's own key")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Proof{}, invalid("claims are not a JSON object")
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return Proof{}, invalid("jti missing or longer than 256 bytes")
	}
	if c.HTM != r.Method {
		return Proof{}, invalid("htm %q does not match the request's method %q", c.HTM, r.Method)
	}
	if !sameURL(c.HTU, r.URL) {
		return Proof{}, invalid("htu does not match the request's URL")
	}
	var iat float64
	if err := json.Unmarshal(c.IAT, &iat); err != nil || iat <= 0 {
		return Proof{}, invalid("iat missing or not a number")
	}
	at := time.Unix(0, int64(iat*1e9))
	now := v.o.Now()
	switch {
	case at.After(now.Add(v.o.Skew)):
		return Proof{}, invalid("iat is %s in the future", at.Sub(now).Round(time.Second))
	case at.Before(now.Add(-v.o.MaxAge - v.o.Skew)):
		return Proof{}, invalid("proof is %s old, at most %s", now.Sub(at).Round(time.Second), v.o.MaxAge)
	}
	if r.AccessToken != nil {
		sum := sha256.Sum256(r.AccessToken)
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return Proof{}, invalid("ath does not hash the access token")
		}
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalid("no thumbprint of the jwk")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if r.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(r.JKT)) != 1 {
		return Proof{}, invalid("the proof's key is not the one the access token is bound to")
	}
	if v.o.Nonces != nil && (c.Nonce == nil || !v.o.Nonces.Valid(*c.Nonce)) {
		return Proof{}, &Error{Code: ErrUseNonce, Reason: "a current server nonce is required"}
	}
	seen, err := v.o.Replay.Seen(jkt+":"+c.JTI, at.Add(v.o.MaxAge+2*v.o.Skew))
	if err != nil {
		return Proof{}, fmt.Errorf("dpop: replay cache: %w", err)
	}
	if seen {
		return Proof{}, invalid("proof replayed (jti already used)")
	}
	return Proof{JKT: jkt, JTI: c.JTI, IAT: at}, nil
}

// header checks a proof's protected header and returns its key.
func (v *Verifier) header(h jws.Headers) (jwk.Key, error) {
	if typ, _ := h.Type(); typ != "dpop+jwt" {
		return nil, invalid("typ is %q, want dpop+jwt", typ)
	}
	alg, ok := h.Algorithm()
	if !ok || !slices.Contains(v.algs, alg) {
		return nil, invalid("algorithm %q is not allowed", alg.String())
	}
	key, ok := h.JWK()
	if !ok {
		return nil, invalid("no jwk header")
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		return nil, invalid("the jwk header must hold a public key")
	}
	return key, nil
}

// sameURL compares htu with the request's URL as RFC 9449 §4.3 says:
// without query and fragment, scheme and host case-insensitively, default
// ports equal to none.
func sameURL(htu, req string) bool {
	a, err1 := url.Parse(htu)
	b, err2 := url.Parse(req)
	if err1 != nil || err2 != nil || a.Scheme == "" || a.Host == "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && hostPort(a) == hostPort(b) && cleanPath(a) == cleanPath(b)
}

func hostPort(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (port == "443" && strings.EqualFold(u.Scheme, "https")) || (port == "80" && strings.EqualFold(u.Scheme, "http")) {
		port = ""
	}
	if port == "" {
		return host
	}
	return host + ":" + port
}

func cleanPath(u *url.URL) string {
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}
