package credential

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// verifier verifies JWTs against a JWKS and checks their times, issuer and
// audience, with jwx. Tokens it verified are remembered (verifiedCache), so
// a client presenting the same token request after request costs one
// signature verification, not one per request.
type verifier struct {
	keys    *keySource
	setOpts []any             // how a key is chosen from the set
	opts    []jwt.ParseOption // validation
	cache   *verifiedCache    // nil disables it (benchmarks of the first verification)
	now     func() time.Time
}

func newVerifier(ctx context.Context, o *JWTOptions, log *slog.Logger) (*verifier, error) {
	keys, err := newKeySource(ctx, o, log)
	if err != nil {
		return nil, err
	}
	v := &verifier{
		keys: keys,
		// The key is the one the token's kid names, or the only key of a
		// one-key set when the token has no kid. Keys without an alg get
		// the algorithms of their type, and the token's alg must be one of
		// them: an RSA key never verifies an HS256 token, nor "none".
		setOpts: []any{jws.WithInferAlgorithmFromKey(true), jws.WithUseDefault(true)},
		cache:   &verifiedCache{},
		now:     time.Now,
	}
	v.opts = []jwt.ParseOption{
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(o.Leeway),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return v.now() })),
	}
	if o.Issuer != "" {
		v.opts = append(v.opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		v.opts = append(v.opts, jwt.WithAudience(o.Audience))
	}
	return v, nil
}

func (v *verifier) close() { v.keys.close() }

// verify verifies tok and reads its claims into c, or returns the reason it
// is not valid. scratch is decoding space, returned possibly grown. When
// the token names a key id the JWKS does not hold, the JWKS is reloaded
// (keySource.awaitKey) and tok verified again.
func (v *verifier) verify(tok, scratch []byte, c *Claims) (reason string, _ []byte) {
	digest := sha256.Sum256(tok)
	set := v.keys.currentSet()
	now := v.now()
	if v.cache != nil && v.cache.get(&digest, set, now, c) {
		return "", scratch
	}
	reason, missedKid, unknownKey := v.check(tok, set)
	if unknownKey {
		if newer := v.keys.awaitKey(missedKid, set); newer != nil {
			set = newer
			reason, _, _ = v.check(tok, set)
		}
	}
	if reason != "" {
		return reason, scratch
	}
	var p payload
	ok, scratch := readJWT(tok, scratch, c, &p)
	if !ok {
		// jwx took it as a JWT and this package does not: refuse rather
		// than guess which reading of the token is right.
		return reasonJWTMalform, scratch
	}
	c.Verified = true
	if v.cache != nil {
		v.cache.put(&digest, set, p.notBefore, c)
	}
	return "", scratch
}

// check verifies tok's signature against set and validates its claims. When
// it fails because set holds no key with the token's key id, it returns
// that key id (from the token: never to be logged) and unknownKey.
func (v *verifier) check(tok []byte, set *keySet) (reason, kid string, unknownKey bool) {
	w := &watchedSet{jwkSet: set.set}
	opts := make([]jwt.ParseOption, 0, len(v.opts)+1)
	opts = append(opts, jwt.WithKeySet(w, v.setOpts...))
	opts = append(opts, v.opts...)
	if _, err := jwt.Parse(tok, opts...); err != nil {
		if w.missed {
			return reasonJWTNoKey, w.kid, true
		}
		return reasonOf(err), "", false
	}
	return "", "", false
}

// reasonOf turns a jwx error into one of the fixed reasons; jwx's own
// messages may quote parts of the token and are never passed on.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return reasonJWTExpired
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return reasonJWTNotYet
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return reasonJWTIssuedAt
	case errors.Is(err, jwt.InvalidIssuerError()):
		return reasonJWTIssuer
	case errors.Is(err, jwt.InvalidAudienceError()):
		return reasonJWTAudience
	case errors.Is(err, jws.VerificationError()), errors.Is(err, jws.VerifyError()):
		return reasonJWTSig
	case errors.Is(err, jws.ParseError()):
		return reasonJWTMalform
	}
	return reasonJWTInvalid
}

// watchedSet is a JWKS that notes when a key id was looked up in vain, and
// which. One is made per verification, so the note is the verification's
// own.
type watchedSet struct {
	jwkSet // the embedded field cannot be called Set: jwk.Set has a method Set
	missed bool
	kid    string
}

type jwkSet = jwk.Set

// LookupKeyID looks kid up in the set and notes a miss.
func (w *watchedSet) LookupKeyID(kid string) (jwk.Key, bool) {
	k, ok := w.jwkSet.LookupKeyID(kid)
	if !ok {
		w.missed, w.kid = true, kid
	}
	return k, ok
}
