package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/replay"
	"github.com/vigil-sec/vigil/replay/replaytest"
)

// BenchmarkReplay measures Run end to end on an in-memory stream of
// realistic events (about 350 bytes each, most optional fields, 10,000
// credentials), writing to io.Discard. One op is one replay of the whole
// stream; events/s and the allocation per event are the figures to watch.
func BenchmarkReplay(b *testing.B) {
	const events = 200_000
	var in bytes.Buffer
	if _, err := replaytest.Write(&in, replaytest.Options{
		Events: events, Credentials: 10_000, Seed: 1, Interval: 100 * time.Millisecond,
	}); err != nil {
		b.Fatal(err)
	}
	parts := testParts(b)
	for _, workers := range []int{0, 1} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(int64(in.Len()))
			b.ReportAllocs()
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for b.Loop() {
				sum, err := replay.Run(context.Background(), replay.Options{
					Input: bytes.NewReader(in.Bytes()), Output: io.Discard, Parts: parts, Workers: workers,
				})
				if err != nil || sum.Events != events {
					b.Fatalf("%d events, %v", sum.Events, err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			n := float64(b.N) * events
			b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/event")
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n, "B/event")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/event")
		})
	}
}
