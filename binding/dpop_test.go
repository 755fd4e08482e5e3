package binding_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/vigil-sec/vigil/binding"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// signer makes proofs with a real key.
type signer struct {
	alg  jwa.SignatureAlgorithm
	priv any
	pub  jwk.Key
}

func newSigner(t *testing.T, kind string) *signer {
	t.Helper()
	var priv any
	var alg jwa.SignatureAlgorithm
	switch kind {
	case "ES256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv, alg = k, jwa.ES256()
	case "EdDSA":
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		priv, alg = k, jwa.EdDSA()
	case "PS256":
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		priv, alg = k, jwa.PS256()
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{alg: alg, priv: priv, pub: pub}
}

func (s *signer) jkt(t *testing.T) string {
	t.Helper()
	tp, err := s.pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// proof signs claims with the signer's key; hdr changes the header.
func (s *signer) proof(t *testing.T, claims map[string]any, hdr func(jws.Headers)) string {
	t.Helper()
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "dpop+jwt")
	_ = h.Set(jws.JWKKey, s.pub)
	if hdr != nil {
		hdr(h)
	}
	payload, _ := json.Marshal(claims)
	b, err := jws.Sign(payload, jws.WithKey(s.alg, s.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func claimsFor(token string, jti string) map[string]any {
	sum := sha256.Sum256([]byte(token))
	return map[string]any{"jti": jti, "htm": "GET", "htu": "https://api.example.com/v1/orders", "iat": now.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
}

func verifier(t *testing.T, nonces binding.Nonces) *binding.Verifier {
	t.Helper()
	v, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{Now: func() time.Time { return now }}, Nonces: nonces, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const token = "eyJhbGciOiJFUzI1NiJ9.access-token-bytes.sig"

func TestDPoPValid(t *testing.T) {
	for _, kind := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(kind, func(t *testing.T) {
			s := newSigner(t, kind)
			v := verifier(t, nil)
			req := binding.Request{Method: "GET", URL: "https://API.example.com:443/v1/orders?page=2", AccessToken: []byte(token), JKT: s.jkt(t)}
			p, err := v.Verify(s.proof(t, claimsFor(token, "jti-1"), nil), req)
			if err != nil {
				t.Fatal(err)
			}
			if p.JKT != s.jkt(t) || p.JTI != "jti-1" || !p.IAT.Equal(now) {
				t.Fatalf("proof %+v", p)
			}
		})
	}
}

func TestDPoPRejects(t *testing.T) {
	s, other := newSigner(t, "ES256"), newSigner(t, "ES256")
	req := binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token), JKT: s.jkt(t)}
	with := func(k string, val any) map[string]any {
		c := claimsFor(token, "jti-"+k)
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	otherPriv, _ := jwk.Import(other.priv)
	cases := []struct {
		name, proof, want string
		req               *binding.Request
	}{
		{"wrong method", s.proof(t, with("htm", "POST"), nil), "htm", nil},
		{"wrong url", s.proof(t, with("htu", "https://api.example.com/v1/admin"), nil), "htu", nil},
		{"wrong host", s.proof(t, with("htu", "https://evil.example.com/v1/orders"), nil), "htu", nil},
		{"expired", s.proof(t, with("iat", now.Add(-5*time.Minute).Unix()), nil), "old", nil},
		{"from the future", s.proof(t, with("iat", now.Add(time.Minute).Unix()), nil), "future", nil},
		{"no iat", s.proof(t, with("iat", nil), nil), "iat", nil},
		{"no jti", s.proof(t, with("jti", nil), nil), "jti", nil},
		{"ath of another token", s.proof(t, with("ath", "AAAA"), nil), "ath", nil},
		{"no ath", s.proof(t, with("ath", nil), nil), "ath", nil},
		{"typ", s.proof(t, claimsFor(token, "jti-typ"), func(h jws.Headers) { _ = h.Set(jws.TypeKey, "JWT") }), "typ", nil},
		{"private key in the header", s.proof(t, claimsFor(token, "jti-priv"), func(h jws.Headers) { _ = h.Set(jws.JWKKey, otherPriv) }), "public", nil},
		{"signed by another key", s.proof(t, claimsFor(token, "jti-other"), func(h jws.Headers) { _ = h.Set(jws.JWKKey, other.pub) }), "signature", nil},
		{"bound to another key", other.proof(t, claimsFor(token, "jti-bound"), nil), "bound", nil},
		{"not a JWS", "a.b.c", "JWS", nil},
		{"empty", "", "no DPoP proof", nil},
		{"huge", strings.Repeat("a", 9000), "bytes", nil},
	}
	v := verifier(t, nil)
	for _, c := range cases {
		r := req
		if c.req != nil {
			r = *c.req
		}
		_, err := v.Verify(c.proof, r)
		var e *binding.Error
		if !errors.As(err, &e) || e.Code != binding.ErrInvalidProof || !strings.Contains(e.Reason, c.want) {
			t.Errorf("%s: %v, want invalid_dpop_proof about %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error holds the access token", c.name)
		}
	}
}

func TestDPoPReplay(t *testing.T) {
	s := newSigner(t, "ES256")
	v := verifier(t, nil)
	req := binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token), JKT: s.jkt(t)}
	p := s.proof(t, claimsFor(token, "once"), nil)
	if _, err := v.Verify(p, req); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(p, req)
	var e *binding.Error
	if !errors.As(err, &e) || !strings.Contains(e.Reason, "replayed") {
		t.Fatalf("replayed proof: %v", err)
	}
}

type fixedNonce string

func (n fixedNonce) Valid(s string) bool { return s == string(n) }
func (n fixedNonce) Current() string     { return string(n) }

func TestDPoPNonce(t *testing.T) {
	s := newSigner(t, "EdDSA")
	v := verifier(t, fixedNonce("n-42"))
	req := binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token)}
	_, err := v.Verify(s.proof(t, claimsFor(token, "no-nonce"), nil), req)
	var e *binding.Error
	if !errors.As(err, &e) || e.Code != binding.ErrUseNonce {
		t.Fatalf("proof without the nonce: %v, want use_dpop_nonce", err)
	}
	c := claimsFor(token, "with-nonce")
	c["nonce"] = "n-42"
	if _, err := v.Verify(s.proof(t, c, nil), req); err != nil {
		t.Fatalf("proof with the nonce: %v", err)
	}
}

func TestNewVerifierRefusesSymmetric(t *testing.T) {
	_, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{}, Algorithms: []jwa.SignatureAlgorithm{jwa.HS256()}})
	if err == nil {
		t.Fatal("HS256 accepted")
	}
	if _, err := binding.NewVerifier(binding.DPoPOptions{}); err == nil {
		t.Fatal("no replay cache accepted")
	}
}

func TestMemoryReplay(t *testing.T) {
	clock := now
	m := &binding.MemoryReplay{Max: 2, Now: func() time.Time { return clock }}
	for _, c := range []struct {
		key  string
		want bool
	}{{"a", false}, {"a", true}, {"b", false}, {"c", true /* full */}} {
		if got, _ := m.Seen(c.key, clock.Add(time.Minute)); got != c.want {
			t.Fatalf("Seen(%s) = %v, want %v", c.key, got, c.want)
		}
	}
	clock = clock.Add(2 * time.Minute)
	if got, _ := m.Seen("a", clock.Add(time.Minute)); got {
		t.Fatal("an expired key is still seen")
	}
}

// BenchmarkVerify: what checking one proof costs a request, by key type.
func BenchmarkVerify(b *testing.B) {
	for _, kind := range []string{"ES256", "EdDSA", "PS256"} {
		b.Run(kind, func(b *testing.B) {
			t := &testing.T{}
			s := newSigner(t, kind)
			v, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{Max: 1 << 30}, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			proofs := make([]string, b.N)
			for i := range proofs {
				proofs[i] = s.proof(t, claimsFor(token, fmt.Sprintf("jti-%d", i)), nil)
			}
			req := binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token), JKT: s.jkt(t)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := v.Verify(proofs[i], req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
