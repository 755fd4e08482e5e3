package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 4, 1, 56, 48, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func newLimiter(t testing.TB, o Options) *Limiter {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type step struct {
	at    time.Duration // after t0
	rate  float64
	burst int
	want  Result
}

func runSteps(t *testing.T, l *Limiter, key string, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := l.Allow(key, t0.Add(s.at), s.rate, s.burst)
		if got != s.want {
			t.Errorf("step %d (t0+%v, rate %g, burst %d):\n got %+v\nwant %+v", i, s.at, s.rate, s.burst, got, s.want)
		}
	}
}

func TestGCRAExact(t *testing.T) {
	// 10/s: emission interval 100 ms; burst 3: span 300 ms.
	w := ms(300)
	runSteps(t, newLimiter(t, Options{}), "tk_0123456789abcdef0123456789abcdef", []step{
		{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 2, Reset: ms(100), Window: w}},
		{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 1, Reset: ms(200), Window: w}},
		{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 0, Reset: ms(300), Window: w}},
		// Burst spent: one more is admitted 100 ms later; full at +300 ms.
		{0, 10, 3, Result{Limit: 3, RetryAfter: ms(100), Reset: ms(300), Window: w}},
		{ms(50), 10, 3, Result{Limit: 3, RetryAfter: ms(50), Reset: ms(250), Window: w}},
		{ms(100), 10, 3, Result{Allowed: true, Limit: 3, Remaining: 0, Reset: ms(300), Window: w}},
		{ms(199), 10, 3, Result{Limit: 3, RetryAfter: ms(1), Reset: ms(201), Window: w}},
		// Refill: TAT is t0+400ms; at +350 ms one slot came back and a half.
		{ms(350), 10, 3, Result{Allowed: true, Limit: 3, Remaining: 1, Reset: ms(150), Window: w}},
		// Long after the TAT the key is a fresh, full bucket.
		{ms(5000), 10, 3, Result{Allowed: true, Limit: 3, Remaining: 2, Reset: ms(100), Window: w}},
	})
}

func TestGCRARejectedRequestsChangeNothing(t *testing.T) {
	l := newLimiter(t, Options{})
	for range 2 {
		l.Allow("k", t0, 1, 2)
	}
	for range 100 {
		if r := l.Allow("k", t0.Add(ms(500)), 1, 2); r.Allowed {
			t.Fatalf("admitted beyond the burst: %+v", r)
		}
	}
	// TAT is t0+2s: at t0+1s exactly one is admitted.
	if r := l.Allow("k", t0.Add(time.Second), 1, 2); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("at t0+1s: %+v, want admitted with 0 remaining", r)
	}
}

func TestGCRABurstOne(t *testing.T) {
	// Burst 1: strictly one request per interval, no tolerance.
	runSteps(t, newLimiter(t, Options{}), "k", []step{
		{0, 0.5, 1, Result{Allowed: true, Limit: 1, Reset: 2 * time.Second, Window: 2 * time.Second}},
		{ms(1999), 0.5, 1, Result{Limit: 1, RetryAfter: ms(1), Reset: ms(1), Window: 2 * time.Second}},
		{ms(2000), 0.5, 1, Result{Allowed: true, Limit: 1, Reset: 2 * time.Second, Window: 2 * time.Second}},
	})
}

func TestGCRARateChange(t *testing.T) {
	// The TAT carries over: debt is kept in time, not in requests.
	t.Run("slower", func(t *testing.T) {
		runSteps(t, newLimiter(t, Options{}), "k", []step{
			{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 2, Reset: ms(100), Window: ms(300)}},
			{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 1, Reset: ms(200), Window: ms(300)}},
			{0, 10, 3, Result{Allowed: true, Limit: 3, Remaining: 0, Reset: ms(300), Window: ms(300)}},
			// TAT t0+300ms; at 1/s burst 3 the tolerance is 3 s: room for
			// 2 more, and the bucket is full again 1.3 s later.
			{0, 1, 3, Result{Allowed: true, Limit: 3, Remaining: 1, Reset: ms(1300), Window: 3 * time.Second}},
			{0, 1, 3, Result{Allowed: true, Limit: 3, Remaining: 0, Reset: ms(2300), Window: 3 * time.Second}},
			{0, 1, 3, Result{Limit: 3, RetryAfter: ms(300), Reset: ms(2300), Window: 3 * time.Second}},
		})
	})
	t.Run("faster", func(t *testing.T) {
		runSteps(t, newLimiter(t, Options{}), "k", []step{
			{0, 1, 2, Result{Allowed: true, Limit: 2, Remaining: 1, Reset: time.Second, Window: 2 * time.Second}},
			{0, 1, 2, Result{Allowed: true, Limit: 2, Remaining: 0, Reset: 2 * time.Second, Window: 2 * time.Second}},
			// TAT t0+2s, tolerance now 200 ms: admitted once TAT−now ≤ 100 ms.
			{0, 10, 2, Result{Limit: 2, RetryAfter: ms(1900), Reset: 2 * time.Second, Window: ms(200)}},
			{ms(1900), 10, 2, Result{Allowed: true, Limit: 2, Remaining: 0, Reset: ms(200), Window: ms(200)}},
			{ms(2100), 10, 2, Result{Allowed: true, Limit: 2, Remaining: 1, Reset: ms(100), Window: ms(200)}},
		})
	})
	t.Run("bigger burst", func(t *testing.T) {
		runSteps(t, newLimiter(t, Options{}), "k", []step{
			{0, 1, 1, Result{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second, Window: time.Second}},
			{0, 1, 1, Result{Limit: 1, RetryAfter: time.Second, Reset: time.Second, Window: time.Second}},
			{0, 1, 4, Result{Allowed: true, Limit: 4, Remaining: 2, Reset: 2 * time.Second, Window: 4 * time.Second}},
			// Smaller again: the debt of 2 s exceeds burst 1's tolerance.
			{0, 1, 1, Result{Limit: 1, RetryAfter: 2 * time.Second, Reset: 2 * time.Second, Window: time.Second}},
		})
	})
}

func TestGCRAOutOfOrder(t *testing.T) {
	l := newLimiter(t, Options{})
	l.Allow("k", t0.Add(time.Second), 1, 1)
	// An earlier now finds the bucket emptier, never fuller.
	if r := l.Allow("k", t0, 1, 1); r.Allowed || r.RetryAfter != 2*time.Second {
		t.Fatalf("earlier now: %+v, want rejected for 2s", r)
	}
}

func TestParamsClamp(t *testing.T) {
	for _, tc := range []struct {
		rate           float64
		burst          int
		interval, span int64
		b              int
	}{
		{1, 1, 1e9, 1e9, 1},
		{3, 2, 333333333, 666666666, 2},
		{1, 0, 1e9, 1e9, 1},
		{1, -5, 1e9, 1e9, 1},
		{0, 3, maxSpan, maxSpan, 1},
		{-1, 3, maxSpan, maxSpan, 1},
		{math.NaN(), 3, maxSpan, maxSpan, 1},
		{math.Inf(1), 3, 1, 3, 3},
		{2e9, 3, 1, 3, 3},
		{1e-12, 2, maxSpan, maxSpan, 1},
		{1, math.MaxInt, 1e9, (maxSpan / 1e9) * 1e9, int(maxSpan / 1e9)},
	} {
		interval, span, b := params(tc.rate, tc.burst)
		if interval != tc.interval || span != tc.span || b != tc.b {
			t.Errorf("params(%g, %d) = %d, %d, %d; want %d, %d, %d", tc.rate, tc.burst, interval, span, b, tc.interval, tc.span, tc.b)
		}
	}
	// A zero rate admits a fresh key's first request, then effectively none.
	l := newLimiter(t, Options{})
	if r := l.Allow("k", t0, 0, 5); !r.Allowed || r.Limit != 1 {
		t.Fatalf("rate 0, first: %+v", r)
	}
	if r := l.Allow("k", t0.Add(24*time.Hour), 0, 5); r.Allowed {
		t.Fatalf("rate 0, second: %+v", r)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o      Options
		shards int
		err    string
	}{
		{Options{}, 64, ""},
		{Options{MaxKeys: 10}, 8, ""},
		{Options{MaxKeys: 1}, 1, ""},
		{Options{MaxKeys: 100, Shards: 4}, 4, ""},
		{Options{MaxKeys: -1}, 0, "MaxKeys -1"},
		{Options{MaxKeys: 1 << 31}, 0, "MaxKeys 2147483648"},
		{Options{Shards: 3}, 0, "Shards 3: must be a power of two"},
		{Options{Shards: -4}, 0, "Shards -4"},
		{Options{Shards: 1 << 17}, 0, "Shards 131072"},
		{Options{MaxKeys: 4, Shards: 8}, 0, "Shards 8: must not exceed MaxKeys (4)"},
	} {
		l, err := New(tc.o)
		if tc.err == "" {
			if err != nil {
				t.Errorf("New(%+v): %v", tc.o, err)
			} else if len(l.shards) != tc.shards {
				t.Errorf("New(%+v): %d shards, want %d", tc.o, len(l.shards), tc.shards)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrOptions) || !contains(err.Error(), tc.err) {
			t.Errorf("New(%+v) = %v; want ErrOptions mentioning %q", tc.o, err, tc.err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// has reports whether key is held (test helper).
func (l *Limiter) has(key string) bool {
	for i := range l.shards {
		s := &l.shards[i].shard
		if _, ok := s.index[key]; ok {
			return true
		}
	}
	return false
}

// check verifies the heap order and the links between index, slots and
// heap (test helper).
func (l *Limiter) check(t *testing.T) {
	t.Helper()
	for i := range l.shards {
		s := &l.shards[i].shard
		if len(s.heap) != len(s.index) || len(s.heap) > s.capacity {
			t.Fatalf("shard %d: heap %d, index %d, capacity %d", i, len(s.heap), len(s.index), s.capacity)
		}
		if len(s.heap)+len(s.free) != len(s.slots) {
			t.Fatalf("shard %d: heap %d + free %d != slots %d", i, len(s.heap), len(s.free), len(s.slots))
		}
		for p, it := range s.heap {
			if p > 0 && s.heap[(p-1)/2].tat > it.tat {
				t.Fatalf("shard %d: heap order broken at %d", i, p)
			}
			sl := s.slots[it.slot]
			if int(sl.pos) != p || s.index[sl.key] != it.slot {
				t.Fatalf("shard %d: item %d links to slot %d (pos %d, key %q)", i, p, it.slot, sl.pos, sl.key)
			}
		}
	}
}

func TestEvictionOldestFirst(t *testing.T) {
	l := newLimiter(t, Options{MaxKeys: 3, Shards: 1})
	allow := func(key string, at time.Duration, n int) {
		for range n {
			if r := l.Allow(key, t0.Add(at), 1, 5); !r.Allowed {
				t.Fatalf("%s at %v rejected: %+v", key, at, r)
			}
		}
	}
	allow("a", 0, 1) // TAT t0+1s
	allow("b", 0, 3) // TAT t0+3s
	allow("c", 0, 2) // TAT t0+2s
	// Full, nothing expired: d evicts the oldest TAT, a.
	allow("d", 0, 1)
	if l.has("a") || !l.has("b") || !l.has("c") || !l.has("d") || l.Len() != 3 {
		t.Fatalf("after d: a=%v b=%v c=%v d=%v len=%d", l.has("a"), l.has("b"), l.has("c"), l.has("d"), l.Len())
	}
	// a comes back with a full bucket; the oldest is now d (t0+1s).
	if r := l.Allow("a", t0, 1, 5); r.Remaining != 4 {
		t.Fatalf("evicted key: %+v, want a full bucket", r)
	}
	if l.has("d") || !l.has("a") {
		t.Fatal("want d evicted for a")
	}
	l.check(t)

	// At t0+2.5s, a (t0+1s) and c (t0+2s) have expired: a new key drops
	// expired keys before it would have to evict a live one.
	allow("e", ms(2500), 1)
	if l.has("a") || l.has("c") || !l.has("b") || !l.has("e") || l.Len() != 2 {
		t.Fatalf("at 2.5s: a=%v b=%v c=%v e=%v len=%d", l.has("a"), l.has("b"), l.has("c"), l.has("e"), l.Len())
	}
	l.check(t)
}

func TestEvictionBoundAcrossShards(t *testing.T) {
	l := newLimiter(t, Options{MaxKeys: 10, Shards: 4})
	for i := range 1000 {
		l.Allow(fmt.Sprintf("ip:192.0.2.%d", i), t0, 1, 10)
		if n := l.Len(); n > 10 {
			t.Fatalf("after %d keys: Len %d > MaxKeys", i+1, n)
		}
	}
	if n := l.Len(); n != 10 {
		t.Fatalf("Len %d, want 10 (every shard full)", n)
	}
	l.check(t)
}

// TestAgainstModel runs random traffic over a few keys and checks every
// result against a direct transcription of GCRA in floating point, and the
// heap's links after every call.
func TestAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l := newLimiter(t, Options{MaxKeys: 64, Shards: 2})
	model := map[string]int64{}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	now := t0.UnixNano()
	maxNow := now
	rates := []float64{0.5, 1, 4, 10, 100}
	for i := range 20000 {
		now += rng.Int64N(int64(300 * time.Millisecond))
		if rng.IntN(50) == 0 {
			now -= int64(time.Second) // out of order
		}
		maxNow = max(maxNow, now)
		key := keys[rng.IntN(len(keys))]
		rate, burst := rates[rng.IntN(len(rates))], 1+rng.IntN(6)
		if !l.has(key) {
			// Forgotten (or never seen): only a key that had expired may be.
			if model[key] > maxNow {
				t.Fatalf("call %d: %s forgotten with TAT %d after the latest now %d", i, key, model[key], maxNow)
			}
			model[key] = 0
		}
		got := l.Allow(key, time.Unix(0, now), rate, burst)

		T := int64(math.Round(1e9 / rate))
		tat := max(model[key], now)
		allowAt := tat + T - int64(burst)*T
		want := Result{Limit: burst, Window: time.Duration(int64(burst) * T)}
		if now < allowAt {
			want.RetryAfter, want.Reset = time.Duration(allowAt-now), time.Duration(tat-now)
		} else {
			model[key] = tat + T
			want.Allowed, want.Remaining, want.Reset = true, int((now-allowAt)/T), time.Duration(tat+T-now)
		}
		if got != want {
			t.Fatalf("call %d: %s rate %g burst %d: got %+v, want %+v", i, key, rate, burst, got, want)
		}
		if i%97 == 0 {
			l.check(t)
		}
	}
	l.check(t)
}

func TestConcurrent(t *testing.T) {
	const (
		workers = 8
		calls   = 2000
		hot     = 16
		burst   = 50
	)
	l := newLimiter(t, Options{MaxKeys: 256, Shards: 8})
	var admitted [hot]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				k := (w + i) % hot
				// All at the same instant: exactly burst per hot key pass.
				if l.Allow(fmt.Sprintf("tk_hot_%02d", k), t0, 0.001, burst).Allowed {
					admitted[k].Add(1)
				}
				// Churn through keys so that eviction runs concurrently;
				// their TATs stay before the hot keys' so these evict
				// each other first.
				l.Allow(fmt.Sprintf("ip:198.51.100.%d/%d", w, i), t0.Add(-time.Hour), 1000, 1)
				if i%100 == 0 {
					l.Len()
				}
			}
		})
	}
	wg.Wait()
	for k := range hot {
		if n := admitted[k].Load(); n != burst {
			t.Errorf("hot key %d: %d admitted, want exactly %d", k, n, burst)
		}
	}
	if n := l.Len(); n > 256 {
		t.Errorf("Len %d > MaxKeys", n)
	}
	l.check(t)
}

func TestAllowAllocs(t *testing.T) {
	l := newLimiter(t, Options{})
	key := "tk_0123456789abcdef0123456789abcdef"
	now := t0
	l.Allow(key, now, 100, 10)
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(ms(10))
		l.Allow(key, now, 100, 10)
	}); n != 0 {
		t.Errorf("Allow on an existing key: %v allocs, want 0", n)
	}
}

func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k keys")
	}
	const n = 100_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tk_%032x", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := newLimiter(t, Options{})
	for _, k := range keys {
		l.Allow(k, t0, 1, 10)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per key at %d keys (35-byte keys)", per, n)
	if per > 256 {
		t.Errorf("%.0f bytes per key, want at most 256", per)
	}
	runtime.KeepAlive(l)
	runtime.KeepAlive(keys)
}
