package app_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
)

func newStore(t *testing.T, cfg *config.Config, e app.Env) store.Store {
	t.Helper()
	s, err := build(t, cfg, e).NewStore(context.Background())
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// judge judges n requests of one credential and returns the last verdict.
func judge(t *testing.T, s store.Store, tokenID string, n int) store.Verdict {
	t.Helper()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var v [1]store.Verdict
	for i := range n {
		ev := [1]event.Event{{Time: at.Add(time.Duration(i) * time.Minute).UnixNano(), TokenID: tokenID,
			SourceIP: netip.MustParseAddr("198.51.100.7"), Endpoint: "/v1/orders"}}
		if err := s.Judge(context.Background(), ev[:], v[:]); err != nil {
			t.Fatal(err)
		}
	}
	return v[0]
}

// TestNewStoreMemory: the memory backend judges in this process; with
// profile.data_dir, profiles and the denylist survive a restart.
func TestNewStoreMemory(t *testing.T) {
	s := newStore(t, config.Default(), env(nil))
	if _, ok := s.(*store.Local); !ok {
		t.Errorf("memory backend: %T, want *store.Local", s)
	}
	if v := judge(t, s, "tk_mem", 3); v.Level != policy.Allow || v.Fallback {
		t.Errorf("verdict %+v", v)
	}
	if st := s.Stats(); st.Credentials != 1 || !st.Available {
		t.Errorf("stats %+v", st)
	}

	cfg := config.Default()
	cfg.Profile.DataDir = t.TempDir()
	ctx := context.Background()
	for round := range 2 {
		p := build(t, cfg, env(nil))
		s, err := p.NewStore(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			judge(t, s, "tk_durable", 5)
			if err := s.Deny(ctx, store.Denial{TokenID: "tk_durable", Reason: "test"}); err != nil {
				t.Fatal(err)
			}
		} else {
			snap, ok, err := s.Inspect(ctx, "tk_durable")
			ds, derr := s.Denials(ctx, 0)
			if err != nil || !ok || snap.Events != 5 || derr != nil || len(ds) != 1 || ds[0].Reason != "test" {
				t.Errorf("after a restart: %v %v %+v; denials %v %+v", err, ok, snap, derr, ds)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNewStoreRedis: the redis backend, with an ACL user whose password
// comes from the environment, is a Batcher over a redisstore.Store that
// shares state through Redis.
func TestNewStoreRedis(t *testing.T) {
	const password = "r3dis-Pa55word-for-tests"
	srv := redistest.Standalone(t, redistest.Args("--user", "vigil", "on", ">"+password, "~*", "&*", "+@all"))
	cfg := config.Default()
	cfg.State.Backend = config.BackendRedis
	cfg.State.Redis.Addrs = []string{srv.Addr()}
	cfg.State.Redis.Username = "vigil"
	cfg.State.Redis.PasswordEnv = "VIGIL_TEST_REDIS_PASSWORD"
	cfg.State.Redis.Prefix = srv.Prefix()
	cfg.State.Redis.Fail = config.FailClosed
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := env(map[string]string{"VIGIL_TEST_REDIS_PASSWORD": password, "VIGIL_FINGERPRINT_KEY": "0123456789abcdef0123456789abcdef"})
	a, b := newStore(t, cfg, e), newStore(t, cfg, e)
	if _, ok := a.(*store.Batcher); !ok {
		t.Fatalf("redis backend: %T, want *store.Batcher", a)
	}
	if _, ok := a.(*store.Batcher).Store.(*redisstore.Store); !ok {
		t.Fatalf("behind the Batcher: %T", a.(*store.Batcher).Store)
	}
	// Two replicas, one profile.
	judge(t, a, "tk_shared", 3)
	judge(t, b, "tk_shared", 2)
	// A replica answers before its write-back lands (within a millisecond
	// when idle): the shared profile holds all five events soon after.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		snap, ok, err := a.Inspect(context.Background(), "tk_shared")
		if err == nil && ok && snap.Events == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shared profile: %v %v %+v", err, ok, snap)
		}
	}
	if st := a.Stats(); !st.Available || st.Fallbacks != 0 {
		t.Errorf("stats %+v", st)
	}

	// Errors, never showing the password.
	for name, c := range map[string]struct {
		env  app.Env
		want string
	}{
		"unset":          {env(nil), "state.redis.password_env: $VIGIL_TEST_REDIS_PASSWORD is not set"},
		"wrong password": {env(map[string]string{"VIGIL_TEST_REDIS_PASSWORD": password + "x"}), "state.redis: redisstore: " + srv.Addr()},
	} {
		_, err := build(t, cfg, c.env).NewStore(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), password) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	bad := *cfg
	bad.State.Redis.PasswordEnv = ""
	bad.State.Redis.Addrs = []string{"127.0.0.1:1"}
	bad.State.Redis.Timeout = config.Duration(50 * time.Millisecond)
	if _, err := build(t, &bad, e).NewStore(context.Background()); err == nil || !strings.Contains(err.Error(), "state.redis: redisstore: 127.0.0.1:1") {
		t.Errorf("no server: %v", err)
	}
	bad.State.Backend = "etcd"
	if _, err := build(t, &bad, e).NewStore(context.Background()); err == nil || !strings.Contains(err.Error(), `state.backend: "etcd"`) {
		t.Errorf("unknown backend: %v", err)
	}
}
