package redisclients

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// One op = one batch (two pipelined round trips). Extra metrics:
// events/s, ns/event, allocs/event, B/event, p50-us and p99-us (batch latency).
//
// Both clients draw the same credential sequence (the seed depends only on
// the batch size and goroutine index).

var batchSizes = []int{1, 16, 256}

func BenchmarkGoRedis(b *testing.B) {
	e := setup(b)
	for _, n := range batchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSeq(b, e, e.grS, n, false) })
	}
}

func BenchmarkRueidis(b *testing.B) {
	e := setup(b)
	for _, n := range batchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSeq(b, e, e.ruS, n, false) })
	}
}

// BenchmarkRueidisLuaExecMulti: the same with rueidis.Lua.ExecMulti for the
// writes (it SCRIPT LOADs on every call: a third round trip per batch).
func BenchmarkRueidisLuaExecMulti(b *testing.B) {
	e := setup(b)
	for _, n := range batchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSeq(b, e, e.ruExec, n, false) })
	}
}

// Pattern 2b: plus one peer record vigil:{client:<id>}:r read and CASed per batch.
func BenchmarkGoRedisPeer(b *testing.B) {
	e := setup(b)
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSeq(b, e, e.grS, n, true) })
	}
}

func BenchmarkRueidisPeer(b *testing.B) {
	e := setup(b)
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) { benchSeq(b, e, e.ruS, n, true) })
	}
}

// Concurrency: 4 goroutines, each running batches of 64 on the one shared
// client; b.N batches in total.
func BenchmarkGoRedisConcurrent(b *testing.B) {
	e := setup(b)
	b.Run("goroutines=4/batch=64", func(b *testing.B) { benchConc(b, e, e.grS, 4, 64) })
}

func BenchmarkRueidisConcurrent(b *testing.B) {
	e := setup(b)
	b.Run("goroutines=4/batch=64", func(b *testing.B) { benchConc(b, e, e.ruS, 4, 64) })
}

const warmupBatches = 20

func benchSeq(b *testing.B, e *env, st Store, batch int, peer bool) {
	ctx := context.Background()
	var peerKey string
	if peer {
		peerKey = PeerKey(e.ks.RunID + "-" + st.Name())
		e.addKeys(peerKey)
	}
	bt := st.NewBatcher()
	w := NewWorker(e.ks, batch, uint64(batch), peerKey)
	for range warmupBatches {
		if err := w.Batch(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	w0 := *w
	lat := make([]time.Duration, 0, b.N)

	b.ReportAllocs()
	runtime.GC()
	var m0, m1 runtime.MemStats
	c0 := e.cpu(ctx)
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		err := w.Batch(ctx, bt)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	c1 := e.cpu(ctx)

	if c, v := w.Conflicts-w0.Conflicts, w.Vanished-w0.Vanished; c != 0 || v != 0 {
		b.Fatalf("single writer saw %d conflicts and %d vanished records", c, v)
	}
	report(b, w.Events-w0.Events, lat, &m0, &m1, c0, c1)
}

func benchConc(b *testing.B, e *env, st Store, goroutines, batch int) {
	ctx := context.Background()
	ws := make([]*Worker, goroutines)
	bts := make([]Batcher, goroutines)
	for g := range goroutines {
		ws[g] = NewWorker(e.ks, batch, uint64(1000+g), "")
		bts[g] = st.NewBatcher()
	}
	// Warm up concurrently so the client opens the connections it needs.
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for range warmupBatches {
				if err := ws[g].Batch(ctx, bts[g]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	ev0, cf0 := 0, 0
	for _, w := range ws {
		ev0 += w.Events
		cf0 += w.Conflicts + w.Vanished
	}
	lats := make([][]time.Duration, goroutines)
	var next atomic.Int64
	var firstErr atomic.Value

	b.ReportAllocs()
	runtime.GC()
	var m0, m1 runtime.MemStats
	c0 := e.cpu(ctx)
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for g := range goroutines {
		wg.Go(func() {
			w, bt := ws[g], bts[g]
			lat := make([]time.Duration, 0, b.N/goroutines+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				err := w.Batch(ctx, bt)
				lat = append(lat, time.Since(t0))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					break
				}
			}
			lats[g] = lat
		})
	}
	wg.Wait()
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	c1 := e.cpu(ctx)
	if err := firstErr.Load(); err != nil {
		b.Fatal(err)
	}
	events, conflicts := -ev0, -cf0
	for _, w := range ws {
		events += w.Events
		conflicts += w.Conflicts + w.Vanished
	}
	// Conflicts are possible here (two goroutines judging the same credential
	// at once); they are counted, as vigil would retry them.
	b.ReportMetric(float64(conflicts)/float64(b.N), "conflicts/op")
	report(b, events, slices.Concat(lats...), &m0, &m1, c0, c1)
}

func report(b *testing.B, events int, lat []time.Duration, m0, m1 *runtime.MemStats, c0, c1 cpuSample) {
	el := b.Elapsed()
	// CPU split of the 2 shared cores: this process (client + harness) and
	// redis-server (from INFO cpu; includes anyone else's load on that server).
	b.ReportMetric(float64((c1.client-c0.client).Nanoseconds())/1e3/float64(events), "cli-cpu-us/event")
	if c0.server >= 0 && c1.server >= 0 {
		b.ReportMetric(float64((c1.server-c0.server).Nanoseconds())/1e3/float64(events), "srv-cpu-us/event")
	}
	b.ReportMetric(float64(events)/el.Seconds(), "events/s")
	b.ReportMetric(float64(el.Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(events), "B/event")
	slices.Sort(lat)
	b.ReportMetric(pct(lat, 0.50), "p50-us")
	b.ReportMetric(pct(lat, 0.99), "p99-us")
}

// pct is the nearest-rank percentile in microseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Nanoseconds()) / 1e3
}

type cpuSample struct{ client, server time.Duration }

// cpu samples this process's CPU time (getrusage) and redis-server's
// (INFO cpu: used_cpu_user + used_cpu_sys); server is -1 if unavailable.
func (e *env) cpu(ctx context.Context) cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), server: -1}
	info, err := e.admin.Info(ctx, "cpu").Result()
	if err != nil {
		return s
	}
	var total float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return s
			}
			total += f
			found++
		}
	}
	if found == 2 {
		s.server = time.Duration(total * 1e9)
	}
	return s
}
