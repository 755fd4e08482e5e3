package store_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
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
			evs := traffic(creds, creds*2+batch*b.N)
			vs := make([]store.Verdict, batch)
			for off := 0; off < creds*2; off += batch {
				if err := s.Judge(b.Context(), evs[off:off+batch], vs); err != nil {
					b.Fatal(err)
				}
			}
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

// traffic returns n events over creds credentials of 20 clients, a
// millisecond apart.
func traffic(creds, n int) []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, creds)
	for i := range ids {
		ids[i] = fmt.Sprintf("tk_%022x", r.Uint64())
	}
	endpoints := []string{"/v1/accounts/{id}", "/v1/orders", "/v1/orders/{id}", "/v1/me", "/v1/search"}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	evs := make([]event.Event, n)
	for i := range evs {
		c := r.IntN(creds)
		evs[i] = event.Event{Time: t0 + int64(i)*int64(time.Millisecond), TokenID: ids[c], ClientID: fmt.Sprintf("client-%d", c%20),
			SourceIP: netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)}), Endpoint: endpoints[(c+r.IntN(2))%len(endpoints)],
			Status: 200, UserAgent: "okhttp/4.12.0", Country: "US", ASN: 64512 + uint32(c%100), PayloadBytes: int64(500 + r.IntN(5000))}
	}
	return evs
}
