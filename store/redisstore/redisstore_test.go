package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
	"github.com/vigil-sec/vigil/store/storetest"
)

func newStore(t testing.TB, o redisstore.Options) *redisstore.Store {
	t.Helper()
	if o.Engine.Tracker == nil {
		o.Engine = storetest.EngineOptions(t)
	}
	if o.Timeout == 0 {
		// Generous: under the race detector on a loaded 2-core machine a
		// round trip can take over the 100 ms default, and a fallback
		// would fail tests that are not about timeouts.
		o.Timeout = 5 * time.Second
	}
	s, err := redisstore.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func factory(addrs []string, cluster bool, prefix string) storetest.Factory {
	return storetest.Factory{Persistent: true, Open: func(t *testing.T, env storetest.Env) store.Store {
		return newStore(t, redisstore.Options{Addrs: addrs, Cluster: cluster, Prefix: prefix + env.Name + ":", Engine: env.Engine, Now: env.Now})
	}}
}

func TestConformance(t *testing.T) {
	srv := redistest.Standalone(t)
	storetest.Run(t, factory([]string{srv.Addr()}, false, srv.Prefix()))
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.Cluster(t)
	storetest.Run(t, factory(c.Addrs(), true, c.Prefix()))
}

// TestReplicasDecideAsOne: two replicas that judge the interleaved halves
// of one stream (event i by replica i%2, in stream order) against one
// Redis give exactly the verdicts of one engine judging the whole stream,
// peer groups included.
func TestReplicasDecideAsOne(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(fmt.Sprintf("cluster=%v", cluster), func(t *testing.T) {
			var addrs []string
			var prefix string
			if cluster {
				c := redistest.Cluster(t)
				addrs, prefix = c.Addrs(), c.Prefix()
			} else {
				s := redistest.Standalone(t)
				addrs, prefix = []string{s.Addr()}, s.Prefix()
			}
			evs := storetest.Traffic(t)
			want := storetest.Reference(t, storetest.EngineOptions(t), evs)
			var reps [2]*redisstore.Store
			for i := range reps {
				reps[i] = newStore(t, redisstore.Options{Addrs: addrs, Cluster: cluster, Prefix: prefix})
				defer reps[i].Close()
			}
			got := make([]store.Verdict, len(evs))
			for i := range evs {
				if err := reps[i%2].Judge(t.Context(), evs[i:i+1], got[i:i+1]); err != nil {
					t.Fatal(err)
				}
			}
			if i, ok := storetest.Equal(got, want); !ok {
				t.Fatalf("event %d of %d: replicas %+v, one engine %+v", i, len(evs), got[i], want[i])
			}
			for _, r := range reps {
				if st := r.Stats(); st.Conflicts != 0 || st.Fallbacks != 0 || r.Lost() != 0 {
					t.Fatalf("stats %+v, lost %d", st, r.Lost())
				}
			}
			t.Logf("%d events over two replicas: every verdict equal", len(evs))
		})
	}
}

// TestReplicasConcurrentLoseNothing: two replicas judge their halves at
// full speed at the same time, on the same credentials and peer group.
// Every event must land in the shared profile: the writes that lost a race
// are judged again on the newer record, not dropped.
func TestReplicasConcurrentLoseNothing(t *testing.T) {
	srv := redistest.Standalone(t)
	var reps [2]*redisstore.Store
	for i := range reps {
		reps[i] = newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix(), MaxRetries: 1000})
		defer reps[i].Close()
	}
	const creds, per, batch = 8, 600, 16
	t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()
	var wg sync.WaitGroup
	for r := range reps {
		wg.Go(func() {
			evs := make([]event.Event, batch)
			vs := make([]store.Verdict, batch)
			for i := 0; i < creds*per/2; i += batch {
				for k := range batch {
					n := i + k
					evs[k] = event.Event{Time: t0 + int64(n)*int64(time.Millisecond), TokenID: fmt.Sprintf("tk_%d", n%creds),
						ClientID: "acme", Endpoint: "/v1/items", Status: 200, SourceIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(r)})}
				}
				if err := reps[r].Judge(t.Context(), evs, vs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var conflicts uint64
	for _, r := range reps {
		conflicts += r.Stats().Conflicts
		if r.Lost() != 0 {
			t.Fatalf("lost %d writes", r.Lost())
		}
	}
	for c := range creds {
		sn, ok, err := reps[0].Inspect(t.Context(), fmt.Sprintf("tk_%d", c))
		if err != nil || !ok || sn.Events != per {
			t.Fatalf("tk_%d: %d events in the shared profile, want %d (%v, %v)", c, sn.Events, per, ok, err)
		}
	}
	t.Logf("%d events from two replicas at once, %d write races retried, none lost", creds*per, conflicts)
}

// TestDenialSeenByOtherReplicas: a denial made on one replica blocks the
// credential on another within a second.
func TestDenialSeenByOtherReplicas(t *testing.T) {
	srv := redistest.Standalone(t)
	a := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer a.Close()
	b := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer b.Close()
	ev := event.Event{TokenID: "tk_leaked", Endpoint: "/v1/x", Status: 200}
	vs := make([]store.Verdict, 1)
	judge := func() *store.Denial {
		ev.Time = time.Now().UnixNano()
		if err := b.Judge(t.Context(), []event.Event{ev}, vs); err != nil {
			t.Fatal(err)
		}
		return vs[0].Denial
	}
	if judge() != nil {
		t.Fatal("denied before the denial")
	}
	start := time.Now()
	if err := a.Deny(t.Context(), store.Denial{TokenID: "tk_leaked", Reason: "found in a paste"}); err != nil {
		t.Fatal(err)
	}
	for judge() == nil {
		if time.Since(start) > time.Second {
			t.Fatal("the other replica still allows the credential after 1 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := time.Since(start)
	if ok, err := a.Undeny(t.Context(), "tk_leaked"); !ok || err != nil {
		t.Fatalf("Undeny: %v %v", ok, err)
	}
	start = time.Now()
	for judge() != nil {
		if time.Since(start) > time.Second {
			t.Fatal("the other replica still denies the credential 1 s after Undeny")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("denial seen by the other replica after %s, lifted after %s", seen.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestTTL: a new credential's record expires after NewTTL, an established
// one's after IdleTTL.
func TestTTL(t *testing.T) {
	srv := redistest.Standalone(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix(), NewTTL: time.Hour, IdleTTL: 30 * 24 * time.Hour})
	defer s.Close()
	t0 := time.Now().UnixNano()
	vs := make([]store.Verdict, 1)
	key := srv.Prefix() + "{tk_ttl}:r" + fmt.Sprintf("%x", engine.RecordFormat)
	pttl := func() time.Duration {
		n, _ := srv.Do(t, "PTTL", key).(int64)
		return time.Duration(n) * time.Millisecond
	}
	for i := range 25 {
		ev := event.Event{Time: t0 + int64(i)*int64(time.Second), TokenID: "tk_ttl", Endpoint: "/v1/x", Status: 200}
		if err := s.Judge(t.Context(), []event.Event{ev}, vs); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if d := pttl(); d <= 59*time.Minute || d > time.Hour {
				t.Fatalf("new credential's TTL %s, want 1h", d)
			}
		}
	}
	if d := pttl(); d <= 29*24*time.Hour {
		t.Fatalf("established credential's TTL %s, want 30 days", d)
	}
}

var _ = strings.Contains
var _ = runtime.NumGoroutine
var _ atomic.Int64

func storeEngine(t testing.TB) engine.Options { return storetest.EngineOptions(t) }

func TestMain(m *testing.M) {
	redisstore.RouteClientLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// TestReplayCacheShared: a DPoP proof's jti seen by one replica is seen
// by every other (binding.ReplayCache over Redis).
func TestReplayCacheShared(t *testing.T) {
	srv := redistest.Standalone(t)
	a := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer a.Close()
	b := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: srv.Prefix()})
	defer b.Close()
	until := time.Now().Add(time.Minute)
	if seen, err := a.Seen("jkt:jti-1", until); seen || err != nil {
		t.Fatalf("first use: %v %v", seen, err)
	}
	if seen, err := b.Seen("jkt:jti-1", until); !seen || err != nil {
		t.Fatalf("replay on the other replica: %v %v", seen, err)
	}
	if seen, _ := b.Seen("jkt:jti-2", time.Now().Add(50*time.Millisecond)); seen {
		t.Fatal("a new jti seen")
	}
	time.Sleep(120 * time.Millisecond)
	if seen, _ := a.Seen("jkt:jti-2", until); seen {
		t.Fatal("an expired jti still seen")
	}
}
