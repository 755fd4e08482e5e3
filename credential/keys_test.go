package credential

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// signer is a key pair generated for a test, with its key id.
type signer struct {
	priv jwk.Key
	pub  jwk.Key
	alg  jwa.SignatureAlgorithm
}

func newRSASigner(t testing.TB, kid string) *signer {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, raw, kid, jwa.RS256())
}

func newECSigner(t testing.TB, kid string) *signer {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newSigner(t, raw, kid, jwa.ES256())
}

func newSigner(t testing.TB, raw any, kid string, alg jwa.SignatureAlgorithm) *signer {
	t.Helper()
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Set(jwk.AlgorithmKey, alg); err != nil {
		t.Fatal(err)
	}
	return &signer{priv: priv, pub: pub, alg: alg}
}

// sign returns a JWT with claims, signed by s.
func (s *signer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		if err := tok.Set(k, v); err != nil {
			t.Fatalf("claim %s: %v", k, err)
		}
	}
	b, err := jwt.Sign(tok, jwt.WithKey(s.alg, s.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jwks returns the JWKS of the public keys of signers.
func jwks(t testing.TB, signers ...*signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		if err := set.AddKey(s.pub); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jwksServer serves a JWKS that the test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// writeJWKS writes a JWKS file in a temporary directory.
func writeJWKS(t testing.TB, body []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// claims returns a typical access token's claims, valid for an hour.
func claims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":       "https://idp.example",
		"sub":       "user-42",
		"aud":       []string{"https://api.example"},
		"client_id": "crm-web",
		"jti":       "jti-1",
		"scope":     "contacts:read contacts:write",
		"iat":       now.Add(-time.Minute),
		"nbf":       now.Add(-time.Minute),
		"exp":       now.Add(time.Hour).Truncate(time.Second),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// TestMissingKidsBounded: the missing key ids are forgotten when they
// expire, and past unknownKeyMax oldest first.
func TestMissingKidsBounded(t *testing.T) {
	m := missingKids{seed: maphash.MakeSeed()}
	now := time.Now()
	if m.contains("a", now) {
		t.Fatal("empty set contains a")
	}
	until := now.Add(time.Hour)
	for i := range 3 * unknownKeyMax {
		m.add(fmt.Sprint("kid-", i), until)
		if m.n > unknownKeyMax || len(m.until) > unknownKeyMax {
			t.Fatalf("after %d: %d entries, %d in the map, want at most %d", i+1, m.n, len(m.until), unknownKeyMax)
		}
	}
	if m.contains("kid-0", now) || m.contains(fmt.Sprint("kid-", 2*unknownKeyMax-1), now) {
		t.Error("an entry past the bound is still there")
	}
	for _, i := range []int{2 * unknownKeyMax, 3*unknownKeyMax - 1} {
		if !m.contains(fmt.Sprint("kid-", i), now) {
			t.Errorf("kid-%d, among the last added, is not there", i)
		}
	}
	if m.contains("kid-2048", until) {
		t.Error("an entry is there when it expires")
	}
	// Adding the same kid again does not take another entry.
	n := m.n
	m.add("kid-2048", until)
	if m.n != n {
		t.Errorf("%d entries after adding one already there, want %d", m.n, n)
	}
	// Expired entries are dropped on the next add.
	m = missingKids{seed: maphash.MakeSeed()}
	for i := range 100 {
		m.add(fmt.Sprint("old-", i), now.Add(-time.Second))
	}
	m.add("new", now.Add(time.Hour))
	if m.n != 1 || len(m.until) != 1 || !m.contains("new", now) {
		t.Errorf("%d entries, %d in the map, after expiry; want only the new one", m.n, len(m.until))
	}
}
