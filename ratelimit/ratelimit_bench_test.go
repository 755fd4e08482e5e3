package ratelimit

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("tk_%032x", i*7919)
	}
	return keys
}

// BenchmarkAllow measures Allow on existing keys: one hot key, and keys
// visited round-robin (every request is admitted: each key comes back
// after a second at 1/s with a burst of 10).
func BenchmarkAllow(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := benchKeys(n)
			l := newLimiter(b, Options{})
			step := int64(time.Second) / int64(n)
			now := t0.UnixNano()
			for _, k := range keys {
				l.Allow(k, time.Unix(0, now), 1, 10)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now += step
				if !l.Allow(keys[i%n], time.Unix(0, now), 1, 10).Allowed && n == 1 {
					b.Fatal("hot key rejected")
				}
			}
		})
	}
}

// BenchmarkAllowParallel measures Allow from every P over 100,000 keys
// (b.RunParallel; each goroutine walks the keys from its own offset).
func BenchmarkAllowParallel(b *testing.B) {
	const n = 100_000
	keys := benchKeys(n)
	l := newLimiter(b, Options{})
	for _, k := range keys {
		l.Allow(k, t0, 1, 10)
	}
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7777
		now := t0.UnixNano()
		for pb.Next() {
			i++
			now += 1000
			l.Allow(keys[i%n], time.Unix(0, now), 100, 10)
		}
	})
}

// BenchmarkAllowNewKeys measures the insert path in a full limiter: every
// call stores a new key and evicts the one with the oldest TAT (one
// allocation: the key's copy).
func BenchmarkAllowNewKeys(b *testing.B) {
	const capacity = 1 << 16
	keys := benchKeys(4 * capacity)
	l := newLimiter(b, Options{MaxKeys: capacity})
	now := t0.UnixNano()
	for i := range capacity {
		l.Allow(keys[i], time.Unix(0, now), 1, 10)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now += 1000
		l.Allow(keys[(capacity+i)%len(keys)], time.Unix(0, now), 1, 10)
	}
}
