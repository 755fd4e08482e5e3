package binding_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/binding"
)

const nonceKey = "0123456789abcdef-replica-shared-key"

func nonces(t *testing.T, key string, period time.Duration, clock *time.Time) *binding.HMACNonces {
	t.Helper()
	n, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(key), Period: period, Now: func() time.Time { return *clock }})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHMACNonces: replicas with the same key accept each other's nonces
// without shared state, for the current and the previous period only;
// another key's nonces are refused.
func TestHMACNonces(t *testing.T) {
	clock := now
	a, b := nonces(t, nonceKey, time.Minute, &clock), nonces(t, nonceKey, time.Minute, &clock)
	other := nonces(t, "another-key-of-16-bytes-or-more", time.Minute, &clock)
	n := a.Current()
	if n != b.Current() || !b.Valid(n) || !a.Valid(n) {
		t.Fatalf("replicas disagree: %q %q", n, b.Current())
	}
	if other.Valid(n) || a.Valid(other.Current()) {
		t.Error("a nonce of another key accepted")
	}
	if strings.ContainsAny(n, "\"\\ =") || len(n) != 32 {
		t.Errorf("nonce %q: not a 32-character base64url NQCHAR string", n)
	}
	clock = clock.Add(time.Minute)
	if !b.Valid(n) || b.Current() == n {
		t.Error("the previous period's nonce refused, or not renewed")
	}
	clock = clock.Add(time.Minute)
	if a.Valid(n) || b.Valid(n) {
		t.Error("a nonce two periods old accepted")
	}
	for _, s := range []string{"", n[:31], n + "A", strings.Repeat("A", 32), n[:31] + "B"} {
		if s != n && a.Valid(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestHMACNoncesOptions(t *testing.T) {
	if _, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte("short-key")}); !errors.Is(err, binding.ErrShortNonceKey) || strings.Contains(err.Error(), "short-key") {
		t.Errorf("short key: %v", err)
	}
	if _, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(nonceKey), Period: time.Millisecond}); err == nil {
		t.Error("a 1ms period accepted")
	}
	n, err := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(nonceKey)})
	if err != nil || !n.Valid(n.Current()) {
		t.Fatalf("defaults: %v", err)
	}
	// The key is copied: changing the caller's slice changes nothing.
	key := []byte(nonceKey)
	clock := now
	m, _ := binding.NewHMACNonces(binding.NonceOptions{Key: key, Now: func() time.Time { return clock }})
	key[0] ^= 0xff
	clock = clock.Add(time.Hour) // past the cached period
	if m.Current() != nonces(t, nonceKey, binding.DefaultNoncePeriod, &clock).Current() {
		t.Error("the nonces follow the caller's slice")
	}
}

// TestHMACNoncesHideKey: printing or logging the nonces never shows the key.
func TestHMACNoncesHideKey(t *testing.T) {
	n, _ := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(nonceKey)})
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("nonces", "n", n)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("nonces", "n", n)
	for _, s := range []string{fmt.Sprint(n), fmt.Sprintf("%+v %#v %s %v", n, n, n, []any{n}), logs.String()} {
		if strings.Contains(s, nonceKey) || strings.Contains(s, "0123456789abcdef") {
			t.Errorf("the key is shown: %s", s)
		}
	}
}

// TestVerifierNonces: a Verifier with HMACNonces refuses a proof without a
// nonce or with a stale one (use_dpop_nonce), tells the nonce to use, and
// accepts the proof that carries it, on another replica as well.
func TestVerifierNonces(t *testing.T) {
	clock := now
	s := newSigner(t, "ES256")
	replica := func() *binding.Verifier {
		v, err := binding.NewVerifier(binding.DPoPOptions{Replay: &binding.MemoryReplay{Now: func() time.Time { return clock }},
			Nonces: nonces(t, nonceKey, time.Minute, &clock), Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := replica(), replica()
	req := binding.Request{Method: "GET", URL: "https://api.example.com/v1/orders", AccessToken: []byte(token)}
	_, err := a.Verify(s.proof(t, claimsFor(token, "first"), nil), req)
	var e *binding.Error
	if !errors.As(err, &e) || e.Code != binding.ErrUseNonce || a.Nonce() == "" {
		t.Fatalf("without a nonce: %v, nonce %q", err, a.Nonce())
	}
	c := claimsFor(token, "retry")
	c["nonce"] = a.Nonce()
	if _, err := b.Verify(s.proof(t, c, nil), req); err != nil {
		t.Fatalf("another replica, with the nonce: %v", err)
	}
	old := a.Nonce()
	clock = clock.Add(2 * time.Minute)
	c = claimsFor(token, "stale")
	c["nonce"], c["iat"] = old, clock.Unix()
	if _, err := a.Verify(s.proof(t, c, nil), req); !errors.As(err, &e) || e.Code != binding.ErrUseNonce || a.Nonce() == old {
		t.Fatalf("stale nonce: %v", err)
	}
	if v := verifier(t, nil); v.Nonce() != "" {
		t.Errorf("a verifier without nonces tells one: %q", v.Nonce())
	}
}

func TestHMACNoncesConcurrent(t *testing.T) {
	// 8,000 calls of 1 ms each: the run crosses one period boundary, and
	// however the goroutines are scheduled a nonce can never be two
	// periods old between a goroutine's two calls (that would take 60,000).
	clock := now.Truncate(time.Minute).Add(time.Minute - 4*time.Second)
	var mu sync.Mutex
	n, _ := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(nonceKey), Period: time.Minute, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Millisecond)
		return clock
	}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				// A period may end between the two calls: the nonce is
				// then the previous one, still valid.
				if c := n.Current(); !n.Valid(c) {
					t.Errorf("current nonce %q refused", c)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkHMACNoncesValid(b *testing.B) {
	n, _ := binding.NewHMACNonces(binding.NonceOptions{Key: []byte(nonceKey)})
	cur := n.Current()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !n.Valid(cur) {
				b.Fatal("refused")
			}
		}
	})
}
