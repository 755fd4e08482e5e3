package redisstore_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
)

// load judges single events from several goroutines through a Batcher, as
// an inline server does, until stopped, and counts what it got.
type load struct {
	decided, fallback, blocked, denied, errs atomic.Int64
	maxWait                                  atomic.Int64 // ns
	stop                                     chan struct{}
	wg                                       sync.WaitGroup
	lastShared                               atomic.Int64 // unix ns of the latest verdict judged on Redis
}

func startLoad(s store.Store, workers int) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			vs := make([]store.Verdict, 1)
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				tok := fmt.Sprintf("tk_%d_%d", w, i%50)
				if i%97 == 0 {
					tok = "tk_revoked"
				}
				ev := event.Event{Time: time.Now().UnixNano(), TokenID: tok, ClientID: "acme", Endpoint: "/v1/items", Status: 200}
				start := time.Now()
				err := s.Judge(context.Background(), []event.Event{ev}, vs)
				if d := int64(time.Since(start)); d > l.maxWait.Load() {
					l.maxWait.Store(d)
				}
				if err != nil {
					l.errs.Add(1)
					continue
				}
				l.decided.Add(1)
				v := &vs[0]
				switch {
				case v.Denial != nil:
					l.denied.Add(1)
				case v.Fallback:
					l.fallback.Add(1)
					if v.Level == policy.Block {
						l.blocked.Add(1)
					}
				default:
					l.lastShared.Store(time.Now().UnixNano())
				}
			}
		})
	}
	return l
}

func (l *load) halt() { close(l.stop); l.wg.Wait() }

// waitShared waits until a verdict judged on Redis comes after t.
func (l *load) waitShared(t *testing.T, after time.Time, within time.Duration) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if l.lastShared.Load() > after.UnixNano() {
			return time.Since(after)
		}
	}
	t.Fatalf("no verdict judged on Redis within %s of %s", within, after.Format("15:04:05.000"))
	return 0
}

// TestRedisDownUnderLoad stops and restarts a real redis-server, and
// freezes it, while four goroutines judge requests through a Batcher:
// every request gets a verdict (fail-open: on local profiles, marked
// Fallback), the store comes back by itself, a denied credential stays
// denied throughout, and no goroutine is left behind.
func TestRedisDownUnderLoad(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Private())
	before := runtime.NumGoroutine()
	rs := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix(), Timeout: 50 * time.Millisecond, RetryAfter: 200 * time.Millisecond})
	s := store.NewBatcher(rs, store.BatcherOptions{})
	if err := s.Deny(t.Context(), store.Denial{TokenID: "tk_revoked", Reason: "rotated"}); err != nil {
		t.Fatal(err)
	}
	l := startLoad(s, 4)
	time.Sleep(300 * time.Millisecond)

	srv.Kill(t) // kill -9
	down := time.Now()
	time.Sleep(time.Second)
	fallbacksDown := l.fallback.Load()
	srv.Start(t) // empty: persistence is off
	up := time.Now()
	back := l.waitShared(t, up, 5*time.Second)

	srv.Stop(t) // SIGTERM
	time.Sleep(500 * time.Millisecond)
	srv.Start(t)
	l.waitShared(t, time.Now(), 5*time.Second)

	srv.Pause(t, 500*time.Millisecond) // slow: answers nothing for half a second
	time.Sleep(700 * time.Millisecond)
	l.waitShared(t, time.Now(), 5*time.Second)
	l.halt()

	if n := l.errs.Load(); n != 0 {
		t.Fatalf("%d requests got no verdict", n)
	}
	if fallbacksDown == 0 {
		t.Fatal("no fail-open verdict while Redis was down")
	}
	if l.blocked.Load() != 0 {
		t.Fatalf("fail-open blocked %d requests", l.blocked.Load())
	}
	if l.denied.Load() == 0 {
		t.Fatal("the denied credential was never denied")
	}
	// While Redis was down, the local copy of the denylist kept the
	// credential denied (it is counted in denied, not fallback). The
	// restarted server keeps nothing (no persistence here), so the denial
	// is gone after it: production Redis should persist (appendonly yes).
	st := rs.Stats()
	if !st.Available || st.Fallbacks == 0 || st.Errors == 0 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	if w := time.Duration(l.maxWait.Load()); w > 400*time.Millisecond {
		t.Fatalf("a request waited %s: timeouts are 50 ms", w)
	}
	t.Logf("%d verdicts (%d fail-open, %d denied), none missing; down at %s, back %s after restart; longest wait %s; stats %+v",
		l.decided.Load(), l.fallback.Load(), l.denied.Load(), down.Format("15:04:05.000"), back.Round(time.Millisecond),
		time.Duration(l.maxWait.Load()).Round(time.Millisecond), st)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// go-redis closes its pool's goroutines asynchronously.
	for deadline := time.Now().Add(3 * time.Second); runtime.NumGoroutine() > before+2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestFailClosed: with fail: closed, requests are blocked while Redis is
// down, and judged on Redis again once it is back.
func TestFailClosed(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Private())
	rs := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix(), Timeout: 50 * time.Millisecond, RetryAfter: 100 * time.Millisecond, FailClosed: true})
	defer rs.Close()
	vs := make([]store.Verdict, 1)
	judge := func() store.Verdict {
		t.Helper()
		ev := event.Event{Time: time.Now().UnixNano(), TokenID: "tk_a", Endpoint: "/v1/x", Status: 200}
		if err := rs.Judge(t.Context(), []event.Event{ev}, vs); err != nil {
			t.Fatal(err)
		}
		return vs[0]
	}
	if v := judge(); v.Fallback || v.Level != policy.Allow {
		t.Fatalf("with Redis up: %+v", v)
	}
	srv.Kill(t)
	if v := judge(); !v.Fallback || v.Level != policy.Block {
		t.Fatalf("fail-closed with Redis down: level %s, fallback %v", v.Level, v.Fallback)
	}
	srv.Start(t)
	deadline := time.Now().Add(5 * time.Second)
	for v := judge(); v.Fallback; v = judge() {
		if time.Now().After(deadline) {
			t.Fatal("still falling back 5 s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNewFailsWithoutRedis: a wrong address is an error at start, not a
// store that silently falls back.
func TestNewFailsWithoutRedis(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Private())
	addr := srv.Addr()
	srv.Kill(t)
	_, err := redisstore.New(t.Context(), redisstore.Options{Addrs: []string{addr}, Engine: storeEngine(t), Timeout: 50 * time.Millisecond})
	if err == nil {
		t.Fatal("New succeeded with no server")
	}
	t.Log(err)
}
