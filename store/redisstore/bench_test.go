package redisstore_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/redistest"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/redisstore"
	"github.com/vigil-sec/vigil/store/storetest"
)

// benchServer is REDIS_ADDR if set (the machine's own Redis), else a
// server of the benchmark's own.
func benchServer(b *testing.B) *redistest.Server {
	return redistest.Standalone(b)
}

// cpu measures the CPU time of this process and of the Redis server
// over a benchmark, reported per event: which side is the bottleneck.
type cpu struct {
	srv          *redistest.Server
	self, server time.Duration
}

func (c *cpu) start(b *testing.B) {
	c.self, c.server = processCPU(), serverCPU(b, c.srv)
}

func (c *cpu) report(b *testing.B, events int) {
	self, server := processCPU()-c.self, serverCPU(b, c.srv)-c.server
	b.ReportMetric(float64(self.Nanoseconds())/float64(events)/1e3, "vigil-cpu-µs/event")
	b.ReportMetric(float64(server.Nanoseconds())/float64(events)/1e3, "redis-cpu-µs/event")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serverCPU(b *testing.B, srv *redistest.Server) time.Duration {
	info, _ := srv.Do(b, "INFO", "cpu").(string)
	var total float64
	for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, f+":"); ok {
				x, _ := strconv.ParseFloat(v, 64)
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkJudge: one replica judging batches against a local Redis,
// 100,000 credentials (records written beforehand), 20 peer groups.
// events/s is the figure. mode=sync: Judge, a batch's write-back done
// before the next batch is read; mode=pipelined: JudgeThen, as the
// Batcher calls it, the write-back overlapping the next batch.
func BenchmarkJudge(b *testing.B) {
	srv := benchServer(b)
	addr, prefix := srv.Addr(), srv.Prefix()
	c := cpu{srv: srv}
	const creds = 100_000
	for _, mode := range []string{"sync", "pipelined"} {
		for _, dist := range []string{"uniform", "zipf"} {
			for _, size := range []int{16, 64, 256} {
				b.Run(fmt.Sprintf("mode=%s/dist=%s/batch=%d", mode, dist, size), func(b *testing.B) {
					s := newStore(b, redisstore.Options{Addrs: []string{addr}, Prefix: fmt.Sprintf("%s%s%s%d:", prefix, mode, dist, size), Timeout: time.Second})
					defer s.Close()
					evs := storetest.Synthetic(creds, creds*2+size*b.N, dist == "zipf")
					vs := make([]store.Verdict, size)
					// Every credential has a record before timing starts.
					storetest.Preload(b, s, evs[:creds*2])
					evs = evs[creds*2:]
					lat := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					c.start(b)
					b.ResetTimer()
					for i := range b.N {
						start := time.Now()
						var err error
						if mode == "pipelined" {
							err = s.JudgeThen(b.Context(), evs[i*size:(i+1)*size], vs, func() {})
						} else {
							err = s.Judge(b.Context(), evs[i*size:(i+1)*size], vs)
						}
						if err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
					}
					s.Flush()
					b.StopTimer()
					c.report(b, size*b.N)
					reportLatency(b, lat, "batch")
					b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "events/s")
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(size*b.N), "ns/event")
					if st := s.Stats(); st.Fallbacks != 0 || st.Errors != 0 {
						b.Fatalf("stats %+v", st)
					}
				})
			}
		}
	}
}

// BenchmarkInline: concurrent requests, one event each, through a
// Batcher, as `vigil serve` judges them; p50/p99 are one request's wait.
func BenchmarkInline(b *testing.B) {
	srv := benchServer(b)
	addr, prefix := srv.Addr(), srv.Prefix()
	c := cpu{srv: srv}
	const creds = 100_000
	for _, callers := range []int{16, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			rs := newStore(b, redisstore.Options{Addrs: []string{addr}, Prefix: fmt.Sprintf("%si%d:", prefix, callers), Timeout: time.Second})
			s := store.NewBatcher(rs, store.BatcherOptions{})
			defer s.Close()
			evs := storetest.Synthetic(creds, creds*2+b.N+callers, false)
			storetest.Preload(b, rs, evs[:creds*2])
			evs = evs[creds*2:]
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			per := b.N/callers + 1
			b.ReportAllocs()
			c.start(b)
			b.ResetTimer()
			for c := range callers {
				wg.Go(func() {
					own := make([]time.Duration, 0, per)
					vs := make([]store.Verdict, 1)
					for i := c; i < b.N; i += callers {
						start := time.Now()
						if err := s.Judge(b.Context(), evs[i:i+1], vs); err != nil {
							b.Error(err)
							return
						}
						own = append(own, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, own...)
					mu.Unlock()
				})
			}
			wg.Wait()
			b.StopTimer()
			c.report(b, b.N)
			reportLatency(b, lat, "req")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if st := rs.Stats(); st.Fallbacks != 0 || st.Errors != 0 {
				b.Fatalf("stats %+v", st)
			}
		})
	}
}

func reportLatency(b *testing.B, lat []time.Duration, what string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), what+"-p50-µs")
	b.ReportMetric(q(0.99), what+"-p99-µs")
}
