package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/internal/server"
)

// newRedisServer is a `vigil serve` replica whose state is in srv.
func newRedisServer(t *testing.T, addr, prefix, extra string) *server.Server {
	t.Helper()
	yaml := fmt.Sprintf("state: {backend: redis, redis: {addrs: [%q], prefix: %q, timeout: 50ms, retry_after: 200ms, denylist_every: 50ms%s}}\n",
		addr, prefix, extra)
	cfg, err := config.Parse([]byte(testConfig+yaml), "redis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(context.Background(), cfg, testEnv, slog.New(slog.DiscardHandler), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Checker.Close() })
	return s
}

// lastReasons returns the signals of the latest decision the read API of
// s shows for id.
func lastReasons(t *testing.T, s *server.Server, id string) []string {
	t.Helper()
	rec := adminDo(t, s.AdminHandler(), "GET", server.PathCredentials+id, "")
	var view struct {
		Recent []struct {
			Reasons []struct{ Signal string } `json:"reasons"`
		} `json:"recent_decisions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &view); err != nil || len(view.Recent) == 0 {
		t.Fatalf("read API: %v %s", err, rec.Body)
	}
	var out []string
	for _, r := range view.Recent[0].Reasons {
		out = append(out, r.Signal)
	}
	return out
}

// TestServeRedisReplicas: two replicas over one Redis build one profile
// of a credential, and a denial made through one applies on the other.
func TestServeRedisReplicas(t *testing.T) {
	srv := redistest.Standalone(t)
	a := newRedisServer(t, srv.Addr(), srv.Prefix(), "")
	b := newRedisServer(t, srv.Addr(), srv.Prefix(), "")
	var id string
	for i := range 6 {
		s := a
		if i%2 == 1 {
			s = b
		}
		rec := forwardAuth(t, s.Handler())
		if rec.Code != 200 {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
		id = rec.Header().Get("X-Vigil-Token-Id")
	}
	// A replica answers before its write-back lands (it overlaps the next
	// batch, or ends within a millisecond when idle): the shared profile
	// holds all six events soon after, not necessarily at once.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		snap, _, ok, err := b.Checker.Inspect(context.Background(), id, 1)
		if err == nil && ok && snap.Events == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shared profile: %v %v %d events, want 6", err, ok, snap.Events)
		}
	}

	if rec := adminDo(t, a.AdminHandler(), "PUT", server.PathDenylist+"/"+id, `{"reason": "rotated", "by": "ops"}`); rec.Code != 204 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for forwardAuth(t, b.Handler()).Code != 403 {
		if time.Now().After(deadline) {
			t.Fatal("the denial made on replica a does not apply on replica b")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := lastReasons(t, b, id); len(got) != 1 || got[0] != "denylisted" {
		t.Errorf("reasons on b: %v", got)
	}
	metrics := get200(t, b)
	for _, want := range []string{"vigil_denylisted_total 1", "vigil_store_available 1", "vigil_store_fallbacks_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestServeRedisDown: while Redis is down, fail open judges on the
// replica's own profiles and fail closed blocks; both say why.
func TestServeRedisDown(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Private())
	open := newRedisServer(t, srv.Addr(), srv.Prefix()+"open:", "")
	closed := newRedisServer(t, srv.Addr(), srv.Prefix()+"closed:", ", fail: closed")
	for _, s := range []*server.Server{open, closed} {
		if rec := forwardAuth(t, s.Handler()); rec.Code != 200 {
			t.Fatalf("Redis up: %d", rec.Code)
		}
	}
	srv.Stop(t)

	rec := forwardAuth(t, open.Handler())
	id := rec.Header().Get("X-Vigil-Token-Id")
	if rec.Code != 200 {
		t.Errorf("fail open: %d", rec.Code)
	}
	if got := lastReasons(t, open, id); len(got) == 0 || got[len(got)-1] != "state_store_unavailable" {
		t.Errorf("fail open reasons: %v", got)
	}
	if rec := forwardAuth(t, closed.Handler()); rec.Code != 403 {
		t.Errorf("fail closed: %d", rec.Code)
	}
	if got := lastReasons(t, closed, id); len(got) != 1 || got[0] != "state_store_unavailable" {
		t.Errorf("fail closed reasons: %v", got)
	}
	for _, s := range []*server.Server{open, closed} {
		metrics := get200(t, s)
		for _, want := range []string{"vigil_store_available 0", "vigil_store_fallback_decisions_total 1", "vigil_store_fallbacks_total 1"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
		if strings.Contains(metrics, "vigil_store_errors_total 0") {
			t.Error("no store error counted")
		}
	}
	// The denylist API says the store is unavailable.
	if rec := adminDo(t, open.AdminHandler(), "GET", server.PathDenylist, ""); rec.Code != 503 {
		t.Errorf("denylist while Redis is down: %d %s", rec.Code, rec.Body)
	}

	srv.Start(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond)
		forwardAuth(t, open.Handler())
		if got := lastReasons(t, open, id); len(got) == 0 || got[len(got)-1] != "state_store_unavailable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still falling back 5 s after Redis came back")
		}
	}
}

func get200(t *testing.T, s *server.Server) string {
	t.Helper()
	rec := adminDo(t, s.AdminHandler(), "GET", "/metrics", "")
	if rec.Code != 200 {
		t.Fatalf("metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestRedisNeedsAFingerprintKey: replicas sharing profiles by token id
// must derive the same ids.
func TestRedisNeedsAFingerprintKey(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig+"state: {backend: redis, redis: {addrs: [\"127.0.0.1:1\"]}}\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(context.Background(), cfg, env(nil), slog.New(slog.DiscardHandler), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "state.backend redis") || !strings.Contains(err.Error(), "VIGIL_FINGERPRINT_KEY") {
		t.Fatalf("%v", err)
	}
}

// TestInventoryRedisReplicas: with backend redis, each replica merges its
// share of a credential's requests into Redis; either replica's admin API
// then lists the whole credential.
func TestInventoryRedisReplicas(t *testing.T) {
	srv := redistest.Standalone(t)
	extra := "}}\nlifecycle: {inventory: {merge_every: 100ms"
	a := newRedisServer(t, srv.Addr(), srv.Prefix(), extra)
	b := newRedisServer(t, srv.Addr(), srv.Prefix(), extra)
	var id string
	for i := range 9 {
		s := a
		if i%3 == 2 {
			s = b
		}
		rec := forwardAuth(t, s.Handler())
		if rec.Code != 200 {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
		id = rec.Header().Get("X-Vigil-Token-Id")
	}
	for _, s := range []*server.Server{b, a} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			rec := adminDo(t, s.AdminHandler(), "GET", server.PathTokens+"/"+id, "")
			var e struct {
				Requests  int `json:"requests"`
				Endpoints []struct {
					Value    string `json:"value"`
					Requests int    `json:"requests"`
				} `json:"endpoints"`
			}
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code == 200 && e.Requests == 9 && len(e.Endpoints) == 1 && e.Endpoints[0].Requests == 9 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica's inventory entry: %d %s", rec.Code, rec.Body)
			}
		}
	}
}
