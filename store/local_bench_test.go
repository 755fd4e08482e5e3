package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/storetest"
)

// BenchmarkLocal: the in-process stores judging batches of 256 events
// over 100,000 credentials: in memory, and durable (records in files
// under a data directory, synced every second as vigil serve does).
func BenchmarkLocal(b *testing.B) {
	const creds, batch = 100_000, 256
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) {
			o := storetest.EngineOptions(b)
			lo := store.LocalOptions{}
			if durable {
				o.Dir = b.TempDir()
				lo.Dir = o.Dir
			}
			e, err := engine.New(o)
			if err != nil {
				b.Fatal(err)
			}
			s, err := store.NewLocal(e, lo)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			evs := storetest.Synthetic(creds, creds*2+batch*b.N, false)
			vs := make([]store.Verdict, batch)
			storetest.Preload(b, s, evs[:creds*2])
			evs = evs[creds*2:]
			last := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Judge(b.Context(), evs[i*batch:(i+1)*batch], vs); err != nil {
					b.Fatal(err)
				}
				if durable && i%64 == 0 && time.Since(last) >= time.Second {
					if err := s.Sync(); err != nil {
						b.Fatal(err)
					}
					last = time.Now()
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(batch*b.N), "ns/event")
		})
	}
}
