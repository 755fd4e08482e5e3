package credential

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/vigil-sec/vigil/gate"
)

// extract runs x on an Authorization header holding tok.
func extract(t testing.TB, x *Extractor, scheme, tok string) (Credential, error) {
	t.Helper()
	var c Credential
	err := x.Extract(gate.MapHeaders{"authorization": scheme + " " + tok}, "/", &c)
	return c, err
}

func TestJWTUnverified(t *testing.T) {
	x := newTest(t, Options{})
	// A key vigil has never heard of: without verification its claims are
	// read all the same.
	s := newECSigner(t, "unknown-key")
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	tok := s.sign(t, claims(map[string]any{
		"exp": exp,
		"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
	}))
	for _, scheme := range []string{"Bearer", "DPoP"} {
		c, err := extract(t, x, scheme, tok)
		if err != nil {
			t.Fatal(err)
		}
		want := Claims{
			JWT: true, Subject: "user-42", ClientID: "crm-web", JTI: "jti-1",
			Scope: "contacts:read contacts:write", Issuer: "https://idp.example", Expiry: exp,
			JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", X5T: "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2",
		}
		if !c.Claims.Expiry.Equal(want.Expiry) {
			t.Errorf("%s: expiry %v, want %v", scheme, c.Claims.Expiry, want.Expiry)
		}
		c.Claims.Expiry = want.Expiry
		if c.Claims != want {
			t.Errorf("%s: claims\n %+v\nwant\n %+v", scheme, c.Claims, want)
		}
		if string(c.Secret) != tok || c.Source != "authorization" {
			t.Errorf("%s: secret is not the token, or source %q", scheme, c.Source)
		}
	}
	if c, _ := extract(t, x, "Bearer", tok); c.Kind != gate.Bearer {
		t.Errorf("kind %v", c.Kind)
	}
	if c, _ := extract(t, x, "DPoP", tok); c.Kind != gate.DPoP {
		t.Errorf("kind %v", c.Kind)
	}

	for _, tc := range []struct {
		name  string
		extra map[string]any
		check func(Claims) bool
	}{
		{"azp when no client_id", map[string]any{"client_id": nil, "azp": "mobile"}, func(c Claims) bool { return c.ClientID == "mobile" }},
		{"client_id over azp", map[string]any{"azp": "mobile"}, func(c Claims) bool { return c.ClientID == "crm-web" }},
		{"scp array", map[string]any{"scope": nil, "scp": []string{"a:read", "b:write"}}, func(c Claims) bool { return c.Scope == "a:read b:write" }},
		{"scp string", map[string]any{"scope": nil, "scp": "a:read b:write"}, func(c Claims) bool { return c.Scope == "a:read b:write" }},
		{"scope over scp", map[string]any{"scp": []string{"x"}}, func(c Claims) bool { return c.Scope == "contacts:read contacts:write" }},
		{"scope of the wrong type", map[string]any{"scope": 7}, func(c Claims) bool { return c.Scope == "" && c.Subject == "user-42" }},
		{"cnf of the wrong type", map[string]any{"cnf": "x"}, func(c Claims) bool { return c.JKT == "" && c.X5T == "" && c.Subject == "user-42" }},
		{"no exp", map[string]any{"exp": nil}, func(c Claims) bool { return c.Expiry.IsZero() && c.JWT }},
		{"expired is read, not judged", map[string]any{"exp": time.Now().Add(-time.Hour)}, func(c Claims) bool { return c.JWT && !c.Expiry.IsZero() }},
	} {
		c, err := extract(t, x, "Bearer", s.sign(t, claims(tc.extra)))
		if err != nil || !tc.check(c.Claims) || c.Claims.Verified {
			t.Errorf("%s: claims %+v, err %v", tc.name, c.Claims, err)
		}
	}

	// JWT-shaped tokens that are no JWT are opaque bearer tokens.
	for _, tok := range []string{
		"eyJhbGciOiJub25lIn0.bm90IGpzb24.c2ln",        // payload not JSON
		"eyJub3QganNvbg.eyJzdWIiOiJ4In0.c2ln",         // header not JSON
		"eyJhbGciOiJFUzI1NiJ9.!!!.c2ln",               // not token68 at all: an error, see below
		"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln.x", // four segments
	} {
		c, err := extract(t, x, "Bearer", tok)
		if strings.Contains(tok, "!") {
			if err == nil {
				t.Errorf("%s: no error", tok)
			}
			continue
		}
		if err != nil || c.Kind != gate.Bearer || string(c.Secret) != tok || c.Claims.Subject != "" {
			t.Errorf("%s: kind %v claims %+v err %v", tok, c.Kind, c.Claims, err)
		}
	}
}

// verifyingExtractor returns an Extractor verifying against srv's JWKS.
func verifyingExtractor(t testing.TB, o JWTOptions, log *slog.Logger) *Extractor {
	t.Helper()
	o.Verify = true
	x, err := New(context.Background(), Options{JWT: o}, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return x
}

func TestJWTVerified(t *testing.T) {
	rs, ec := newRSASigner(t, "rsa-1"), newECSigner(t, "ec-1")
	// An impostor's key with the same key id as a real one.
	impostor := newRSASigner(t, "rsa-1")
	stranger := newECSigner(t, "stranger")
	srv := newJWKSServer(t, jwks(t, rs, ec))
	file := writeJWKS(t, jwks(t, rs, ec))

	for _, source := range []string{"url", "file"} {
		o := JWTOptions{Issuer: "https://idp.example", Audience: "https://api.example", Leeway: 30 * time.Second}
		if source == "url" {
			o.JWKSURL = srv.URL + "/jwks.json"
		} else {
			o.JWKSFile = file
		}
		x := verifyingExtractor(t, o, nil)
		t.Run(source, func(t *testing.T) {
			for _, s := range []*signer{rs, ec} {
				c, err := extract(t, x, "Bearer", s.sign(t, claims(nil)))
				if err != nil {
					t.Fatalf("%s: %v", s.alg, err)
				}
				if !c.Claims.JWT || !c.Claims.Verified || c.Claims.Subject != "user-42" || c.Claims.ClientID != "crm-web" || c.Kind != gate.Bearer {
					t.Errorf("%s: %v %+v", s.alg, c.Kind, c.Claims)
				}
			}
			ok := func(extra map[string]any) string { return rs.sign(t, claims(extra)) }
			for _, tc := range []struct {
				name, tok, reason string
			}{
				{"impostor key", impostor.sign(t, claims(nil)), reasonJWTSig},
				{"unknown key id", stranger.sign(t, claims(nil)), reasonJWTNoKey},
				{"expired", ok(map[string]any{"exp": time.Now().Add(-time.Minute)}), reasonJWTExpired},
				{"not yet valid", ok(map[string]any{"nbf": time.Now().Add(time.Minute)}), reasonJWTNotYet},
				{"issued in the future", ok(map[string]any{"iat": time.Now().Add(time.Minute)}), reasonJWTIssuedAt},
				{"other issuer", ok(map[string]any{"iss": "https://evil.example"}), reasonJWTIssuer},
				{"no issuer", ok(map[string]any{"iss": nil}), reasonJWTIssuer},
				{"other audience", ok(map[string]any{"aud": []string{"https://other.example"}}), reasonJWTAudience},
				{"tampered payload", tamper(t, ok(nil)), reasonJWTSig},
				{"alg none", unsigned(t, claims(nil)), ""},
				{"garbage", "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJzdWIi.c2ln", ""},
			} {
				c, err := extract(t, x, "Bearer", tc.tok)
				var e *Error
				if !errors.As(err, &e) || e.Problem != ProblemInvalidToken || e.Field != "Authorization" {
					t.Errorf("%s: err = %v, want invalid_token", tc.name, err)
					continue
				}
				if tc.reason != "" && e.Reason != tc.reason {
					t.Errorf("%s: reason %q, want %q", tc.name, e.Reason, tc.reason)
				}
				if c.Kind != gate.Anonymous || c.Secret != nil || c.Claims != (Claims{}) {
					t.Errorf("%s: credential not anonymous after the error", tc.name)
				}
			}
			// Within the leeway.
			if _, err := extract(t, x, "DPoP", ok(map[string]any{"exp": time.Now().Add(-10 * time.Second)})); err != nil {
				t.Errorf("expired 10 s ago with 30 s leeway: %v", err)
			}
			// Opaque tokens are not JWTs and stay opaque bearer tokens.
			if c, err := extract(t, x, "Bearer", "opaque-token-123"); err != nil || c.Kind != gate.Bearer || c.Claims.JWT {
				t.Errorf("opaque token with verification on: %v %+v", err, c.Claims)
			}
		})
	}
}

// tamper changes the subject of a signed JWT, keeping its signature.
func tamper(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	payload = bytes.Replace(payload, []byte("user-42"), []byte("user-43"), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// unsigned returns an alg "none" JWT naming the key id rsa-1.
func unsigned(t testing.TB, cl map[string]any) string {
	t.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"rsa-1"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"user-42","iss":%q,"aud":"https://api.example","exp":%d}`,
		cl["iss"], time.Now().Add(time.Hour).Unix())))
	return header + "." + payload + "."
}

// TestJWKSWithoutAlg: keys published without "alg" verify tokens of the
// algorithms of their type.
func TestJWKSWithoutAlg(t *testing.T) {
	rs, ec := newRSASigner(t, "rsa-1"), newECSigner(t, "ec-1")
	for _, s := range []*signer{rs, ec} {
		if err := s.pub.Remove(jwk.AlgorithmKey); err != nil {
			t.Fatal(err)
		}
	}
	x := verifyingExtractor(t, JWTOptions{JWKSFile: writeJWKS(t, jwks(t, rs, ec))}, nil)
	for _, s := range []*signer{rs, ec} {
		if c, err := extract(t, x, "Bearer", s.sign(t, claims(nil))); err != nil || !c.Claims.Verified {
			t.Errorf("%s: %v", s.alg, err)
		}
	}
}

// TestJWKSOneKeyWithoutKid: a one-key JWKS verifies tokens without a kid.
func TestJWKSOneKeyWithoutKid(t *testing.T) {
	s := newECSigner(t, "")
	x := verifyingExtractor(t, JWTOptions{JWKSFile: writeJWKS(t, jwks(t, s))}, nil)
	if c, err := extract(t, x, "Bearer", s.sign(t, claims(nil))); err != nil || !c.Claims.Verified {
		t.Errorf("%v", err)
	}
}

func TestJWKSRotationBackground(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	srv := newJWKSServer(t, jwks(t, a))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: MinRefresh}, nil)
	// Only the background refresh may pick the new key up in this test.
	x.jwt.keys.mu.Lock()
	x.jwt.keys.interval = time.Hour
	x.jwt.keys.lastStart = time.Now()
	x.jwt.keys.mu.Unlock()

	tokA, tokB := a.sign(t, claims(nil)), b.sign(t, claims(nil))
	if _, err := extract(t, x, "Bearer", tokB); err == nil {
		t.Fatal("token of a key not yet published verified")
	}
	srv.serve(http.StatusOK, jwks(t, a, b))
	waitFor(t, 5*time.Second, "the new key", func() bool {
		_, err := extract(t, x, "Bearer", tokB)
		return err == nil
	})
	// The old key is withdrawn: its tokens stop verifying.
	srv.serve(http.StatusOK, jwks(t, b))
	waitFor(t, 5*time.Second, "the old key's withdrawal", func() bool {
		_, err := extract(t, x, "Bearer", tokA)
		return err != nil
	})
}

func TestJWKSRotationOnUnknownKid(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	srv := newJWKSServer(t, jwks(t, a))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: time.Hour}, nil)
	keys := x.jwt.keys
	before := srv.fetches.Load()
	srv.serve(http.StatusOK, jwks(t, a, b))
	// The first request with the new key id reloads the JWKS and verifies.
	if c, err := extract(t, x, "Bearer", b.sign(t, claims(nil))); err != nil || !c.Claims.Verified {
		t.Fatalf("token of a newly published key: %v", err)
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for the new key, want 1", n)
	}
	// One made-up key id, many times at once: one reload, shared, after
	// which the key id is remembered as missing and costs nothing.
	before = srv.fetches.Load()
	bogus := kidToken("made-up")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := extract(t, x, "Bearer", bogus); err == nil || !strings.Contains(err.Error(), reasonJWTNoKey) {
				t.Errorf("token of an unknown key: err = %v", err)
			}
		})
	}
	wg.Wait()
	for range 20 {
		_, _ = extract(t, x, "Bearer", bogus)
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for one made-up key id, 70 times, want 1", n)
	}
	// Distinct made-up key ids at once share one reload too; it waits for
	// the interval since the last.
	keys.mu.Lock()
	keys.lastStart = time.Now()
	keys.mu.Unlock()
	before = srv.fetches.Load()
	start := time.Now()
	for i := range 20 {
		wg.Go(func() { _, _ = extract(t, x, "Bearer", kidToken(fmt.Sprintf("made-up-%d", i))) })
	}
	wg.Wait()
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for 20 concurrent unknown key ids, want 1", n)
	}
	if d := time.Since(start); d < keys.interval*9/10 {
		t.Errorf("the reload came %s after the last, want at least %s", d, keys.interval)
	}
	// A missing key id is tried again once its cooldown is over.
	keys.mu.Lock()
	keys.interval, keys.cooldown = time.Millisecond, 200*time.Millisecond
	keys.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	before = srv.fetches.Load()
	_, _ = extract(t, x, "Bearer", kidToken("gone"))
	_, _ = extract(t, x, "Bearer", kidToken("gone"))
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for an unknown key id twice, want 1", n)
	}
	time.Sleep(300 * time.Millisecond)
	before = srv.fetches.Load()
	_, _ = extract(t, x, "Bearer", kidToken("gone"))
	if n := srv.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for an unknown key id after its cooldown, want 1", n)
	}
}

// kidToken returns a JWT naming key id kid, with a signature no key
// verifies: enough to make vigil look kid up.
func kidToken(kid string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc(fmt.Appendf(nil, `{"alg":"ES256","kid":%q}`, kid)) + "." + enc([]byte(`{"sub":"x"}`)) + "." + enc([]byte("not a signature"))
}

// TestJWKSRotationDespiteUnknownKids: tokens naming made-up key ids, sent
// all the time, do not keep a rotated key from being picked up by the first
// request that uses it, and cost the identity provider little.
func TestJWKSRotationDespiteUnknownKids(t *testing.T) {
	for _, tc := range []struct {
		name string
		kid  func(i int) string
		// most fetches for the made-up key ids in about two seconds
		most int64
	}{
		{"one made-up kid", func(int) string { return "made-up" }, 1},
		{"a new made-up kid each time", func(i int) string { return fmt.Sprintf("made-up-%d", i) }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newECSigner(t, "a"), newECSigner(t, "b")
			srv := newJWKSServer(t, jwks(t, a))
			x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: time.Hour}, nil)
			before := srv.fetches.Load()
			// A made-up key id every 100 ms, each in its own request.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					wg.Go(func() {
						if _, err := extract(t, x, "Bearer", kidToken(tc.kid(i))); err == nil {
							t.Error("token of a made-up key id verified")
						}
					})
				}
			})
			defer func() { close(stop); wg.Wait() }()
			time.Sleep(1500 * time.Millisecond)
			// The identity provider rotates to key b: the first token
			// signed with it verifies, within about the reload interval.
			srv.serve(http.StatusOK, jwks(t, a, b))
			tokB := b.sign(t, claims(nil))
			start := time.Now()
			c, err := extract(t, x, "Bearer", tokB)
			if d := time.Since(start); err != nil || !c.Claims.Verified || d > 2*time.Second {
				t.Fatalf("token of the rotated key: err %v after %s", err, d)
			}
			time.Sleep(500 * time.Millisecond)
			// The made-up key ids, and key b, fetched the JWKS at most once
			// per cooldown (one kid) or interval (new kids).
			if n := srv.fetches.Load() - before; n > tc.most+1 {
				t.Errorf("%d fetches in 2 s, want at most %d", n, tc.most+1)
			}
		})
	}
}

// TestJWKSUnknownKidFlood: a flood of tokens naming random key ids costs a
// few fetches of the JWKS, one per interval at most.
func TestJWKSUnknownKidFlood(t *testing.T) {
	s := newECSigner(t, "a")
	srv := newJWKSServer(t, jwks(t, s))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: time.Hour}, nil)
	// 1,000 at once.
	before := srv.fetches.Load()
	flood := time.Now()
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			if _, err := extract(t, x, "Bearer", kidToken(fmt.Sprintf("random-%d-%d", i, rand.Int64()))); err == nil {
				t.Error("token of a made-up key id verified")
			}
		})
	}
	wg.Wait()
	// At most one reload per unknownKeyInterval (1 s): the 1,000 take
	// well under a second on an idle machine, several under the race
	// detector on a loaded one.
	if n, most := srv.fetches.Load()-before, 2+int64(time.Since(flood)/unknownKeyInterval); n > most {
		t.Errorf("%d fetches for 1,000 random key ids at once in %s, want at most %d", n, time.Since(flood).Round(time.Millisecond), most)
	}
	// Then from 50 clients, back to back, for 2.5 s.
	before = srv.fetches.Load()
	start := time.Now()
	var sent atomic.Int64
	for range 50 {
		wg.Go(func() {
			for time.Since(start) < 2500*time.Millisecond {
				_, _ = extract(t, x, "Bearer", kidToken(fmt.Sprint("random-", rand.Int64())))
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	limit := int64(time.Since(start)/x.jwt.keys.interval) + 1
	if n := srv.fetches.Load() - before; n > limit {
		t.Errorf("%d fetches for %d random key ids in %s, want at most %d", n, sent.Load(), time.Since(start).Round(time.Millisecond), limit)
	}
	// Tokens of the key in the JWKS still verify.
	if _, err := extract(t, x, "Bearer", s.sign(t, claims(nil))); err != nil {
		t.Errorf("after the flood: %v", err)
	}
}

func TestJWKSReloadFailureKeepsKeys(t *testing.T) {
	s := newECSigner(t, "a")
	srv := newJWKSServer(t, jwks(t, s))
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: MinRefresh}, log)
	srv.serve(http.StatusInternalServerError, []byte("down"))
	waitFor(t, 5*time.Second, "a failed reload", func() bool { return strings.Contains(logs.String(), "JWKS reload failed") })
	if _, err := extract(t, x, "Bearer", s.sign(t, claims(nil))); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
	srv.serve(http.StatusOK, []byte(`{"keys":[]}`))
	waitFor(t, 5*time.Second, "an empty JWKS", func() bool { return strings.Contains(logs.String(), "holds no keys") })
	if _, err := extract(t, x, "Bearer", s.sign(t, claims(nil))); err != nil {
		t.Errorf("after an empty JWKS: %v", err)
	}
}

func TestJWKSFileReload(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	path := writeJWKS(t, jwks(t, a))
	x := verifyingExtractor(t, JWTOptions{JWKSFile: path, Refresh: time.Hour}, nil)
	if err := os.WriteFile(path, jwks(t, a, b), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := extract(t, x, "Bearer", b.sign(t, claims(nil))); err != nil {
		t.Errorf("new key in the file: %v", err)
	}
}

func TestNewJWKSErrors(t *testing.T) {
	srv := newJWKSServer(t, nil)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"not found", http.StatusNotFound, "", "404"},
		{"not JSON", http.StatusOK, "<html>", ""},
		{"no keys", http.StatusOK, `{"keys":[]}`, "holds no keys"},
	} {
		srv.serve(tc.status, []byte(tc.body))
		u := srv.URL + "/jwks/" + strings.ReplaceAll(tc.name, " ", "-")
		_, err := New(context.Background(), Options{JWT: JWTOptions{Verify: true, JWKSURL: u}}, nil)
		if err == nil || !strings.Contains(err.Error(), u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to name %s and say %q", tc.name, err, u, tc.want)
		}
	}
	missing := t.TempDir() + "/missing.json"
	_, err := New(context.Background(), Options{JWT: JWTOptions{Verify: true, JWKSFile: missing}}, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v, want it to name the file", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.serve(http.StatusOK, jwks(t, newECSigner(t, "a")))
	if _, err := New(ctx, Options{JWT: JWTOptions{Verify: true, JWKSURL: srv.URL}}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err = %v", err)
	}
}

// TestConcurrentExtract runs every kind of extraction from many goroutines
// while the JWKS rotates, for the race detector.
func TestConcurrentExtract(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	srv := newJWKSServer(t, jwks(t, a))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: MinRefresh}, nil)
	tokA, tokB := a.sign(t, claims(nil)), b.sign(t, claims(nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var c Credential
			for i := range 200 {
				var h gate.Headers
				switch (g + i) % 4 {
				case 0:
					h = gate.MapHeaders{"authorization": "Bearer opaque-" + fmt.Sprint(i)}
				case 1:
					h = http.Header{"X-Api-Key": {"key-" + fmt.Sprint(i)}}
				case 2:
					h = gate.MapHeaders{"authorization": "Bearer " + tokA}
				case 3:
					h = gate.MapHeaders{"authorization": "DPoP " + tokB}
				}
				_ = x.Extract(h, "/", &c)
				c.Secret.Wipe()
				if i == 100 && g == 0 {
					srv.serve(http.StatusOK, jwks(t, a, b))
				}
			}
		})
	}
	wg.Wait()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestVerifiedCache(t *testing.T) {
	a, b := newECSigner(t, "a"), newECSigner(t, "b")
	srv := newJWKSServer(t, jwks(t, a, b))
	x := verifyingExtractor(t, JWTOptions{JWKSURL: srv.URL, Refresh: time.Hour, Leeway: time.Minute}, nil)
	tokA := a.sign(t, claims(nil))
	first, err := extract(t, x, "Bearer", tokA)
	if err != nil {
		t.Fatal(err)
	}
	// A hit gives the same claims, without jwx (which allocates hundreds
	// of times per token).
	h := gate.MapHeaders{"authorization": "Bearer " + tokA}
	var c Credential
	allocs := testing.AllocsPerRun(50, func() {
		if err := x.Extract(h, "/", &c); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || c.Claims != first.Claims || !c.Claims.Verified {
		t.Errorf("cached: %v allocations, claims %+v, want 0 and %+v", allocs, c.Claims, first.Claims)
	}
	// A cached token still expires: past exp and the leeway it is refused.
	x.jwt.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := extract(t, x, "Bearer", tokA); err == nil || !strings.Contains(err.Error(), reasonJWTExpired) {
		t.Errorf("cached token past its expiry: err = %v", err)
	}
	// Within the leeway after exp it is accepted (by jwx, not the cache).
	exp := first.Claims.Expiry
	x.jwt.now = func() time.Time { return exp.Add(30 * time.Second) }
	if _, err := extract(t, x, "Bearer", tokA); err != nil {
		t.Errorf("cached token within the leeway after exp: %v", err)
	}
	// Not valid before nbf, even when cached.
	x.jwt.now = time.Now
	early := a.sign(t, claims(map[string]any{"nbf": time.Now().Add(-time.Second)}))
	if _, err := extract(t, x, "Bearer", early); err != nil {
		t.Fatal(err)
	}
	x.jwt.now = func() time.Time { return time.Now().Add(-time.Hour) }
	if _, err := extract(t, x, "Bearer", early); err == nil {
		t.Errorf("cached token before its nbf accepted")
	}
	x.jwt.now = time.Now
	// A key withdrawn from the JWKS: its cached tokens stop verifying.
	srv.serve(http.StatusOK, jwks(t, b))
	if _, err := x.jwt.keys.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := extract(t, x, "Bearer", tokA); err == nil {
		t.Errorf("cached token of a withdrawn key accepted")
	}
}
