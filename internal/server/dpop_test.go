package server_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/vigil-sec/vigil/internal/server"
)

// dpopClient holds a client's DPoP key and its key-bound access token.
type dpopClient struct {
	priv  *ecdsa.PrivateKey
	pub   jwk.Key
	token string
}

func newDPoPClient(t *testing.T) *dpopClient {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := pub.Thumbprint(crypto.SHA256)
	// The access token as an authorization server would issue it, bound
	// to the key (cnf.jkt); vigil reads its claims, the API verifies it.
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": "svc-chat", "client_id": "chat", "cnf": map[string]any{"jkt": enc(tp)}})
	token := enc([]byte(`{"alg":"ES256","typ":"at+jwt"}`)) + "." + enc(claims) + "." + enc([]byte("signature-bytes-not-checked-here"))
	return &dpopClient{priv: priv, pub: pub, token: token}
}

func (c *dpopClient) proof(t *testing.T, method, htu, jti string, iat time.Time) string {
	t.Helper()
	return c.proofWithNonce(t, method, htu, jti, iat, "")
}

// proofWithNonce is a proof carrying the server nonce, when not "".
func (c *dpopClient) proofWithNonce(t *testing.T, method, htu, jti string, iat time.Time, nonce string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(c.token))
	claims := map[string]any{"jti": jti, "htm": method, "htu": htu, "iat": iat.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:])}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, _ := json.Marshal(claims)
	h := jws.NewHeaders()
	_ = h.Set(jws.TypeKey, "dpop+jwt")
	_ = h.Set(jws.JWKKey, c.pub)
	b, err := jws.Sign(payload, jws.WithKey(jwa.ES256(), c.priv, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDPoPInline: with credentials.dpop.verify, a forward-auth request
// with a DPoP-bound token passes with a valid proof, and is refused (401,
// the RFC 9449 error) with a replayed proof, a proof for another URL or
// another key's proof, or when the bound token comes as Bearer.
func TestDPoPInline(t *testing.T) {
	s, _ := newServer(t, "credentials: {dpop: {verify: true}}\n", server.Options{})
	t.Cleanup(func() { s.Checker.Close() })
	c, thief := newDPoPClient(t), newDPoPClient(t)
	ask := func(scheme, token, proof string) (int, string) {
		req := httptest.NewRequest("GET", server.PathForwardAuth, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		req.Header.Set("Authorization", scheme+" "+token)
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "api.example.com")
		req.Header.Set("X-Forwarded-Uri", "/v1/messages?since=1")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("WWW-Authenticate")
	}
	htu := "https://api.example.com/v1/messages"
	good := c.proof(t, "GET", htu, "j1", time.Now())
	if code, www := ask("DPoP", c.token, good); code != 200 {
		t.Fatalf("valid proof: %d %s", code, www)
	}
	for _, tc := range []struct {
		name, scheme, token, proof, want string
	}{
		{"replayed proof", "DPoP", c.token, good, "invalid_dpop_proof"},
		{"proof for another URL", "DPoP", c.token, c.proof(t, "GET", "https://api.example.com/v1/admin", "j2", time.Now()), "invalid_dpop_proof"},
		{"proof by another key", "DPoP", c.token, thief.proof(t, "GET", htu, "j3", time.Now()), "invalid_dpop_proof"},
		{"stale proof", "DPoP", c.token, c.proof(t, "GET", htu, "j4", time.Now().Add(-10*time.Minute)), "invalid_dpop_proof"},
		{"no proof", "DPoP", c.token, "", "invalid_dpop_proof"},
		{"bound token as Bearer", "Bearer", c.token, "", "invalid_token"},
	} {
		code, www := ask(tc.scheme, tc.token, tc.proof)
		if code != 401 || !strings.Contains(www, `error="`+tc.want+`"`) {
			t.Errorf("%s: %d %q, want 401 %s", tc.name, code, www, tc.want)
		}
		if strings.Contains(www, c.token) {
			t.Errorf("%s: the challenge holds the token", tc.name)
		}
	}
	if code, _ := ask("DPoP", c.token, c.proof(t, "GET", htu, "j5", time.Now())); code != 200 {
		t.Fatalf("a fresh valid proof after the failures: %d", code)
	}
}
