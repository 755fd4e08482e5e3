package investigate_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/investigate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
)

// BenchmarkObserve measures Observe per event (ns/op is ns/event) once
// the collector has seen every credential: all allowed, and with one
// event in a hundred suspicious (explained with real reasons).
//
//	go test ./investigate -run '^$' -bench Observe -benchmem
func BenchmarkObserve(b *testing.B) {
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, creds := range []int{1, 1_000, 100_000} {
		for _, suspicious := range []int{0, 100} {
			name := fmt.Sprintf("credentials=%d/allowed", creds)
			if suspicious > 0 {
				name = fmt.Sprintf("credentials=%d/suspicious=1%%", creds)
			}
			b.Run(name, func(b *testing.B) {
				evs, vs := benchEvents(m, creds, suspicious)
				c := investigate.NewCollector(investigate.Options{Model: m})
				for i := range evs { // every credential seen, its bounded state grown
					c.Observe(&evs[i], &vs[i])
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					j := i % len(evs)
					c.Observe(&evs[j], &vs[j])
				}
			})
		}
	}
}

// benchEvents makes a ring of events over creds credentials, each with a
// few addresses and endpoints; every every-th event is suspicious (none
// for 0).
func benchEvents(m *score.Model, creds, every int) ([]event.Event, []engine.Verdict) {
	n := max(1<<16, 2*creds)
	evs := make([]event.Event, n)
	vs := make([]engine.Verdict, n)
	tokens := make([]string, creds)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tk_%032x", i)
	}
	endpoints := []string{"/v1/orders", "/v1/orders/{id}", "/v1/customers/{id}", "/v1/me", "/v1/invoices", "/v1/exports/{id}"}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		k := i % creds
		evs[i] = event.Event{
			Time: t0.Add(time.Duration(i) * time.Second).UnixNano(), TokenID: tokens[k],
			SourceIP: netip.AddrFrom4([4]byte{198, 51, byte(k >> 8), byte(k + i%3)}), Endpoint: endpoints[(i/creds)%len(endpoints)],
			Status: 200, PayloadBytes: 2048, ASN: 64500 + uint32(i%2), Country: "DE", UserAgent: "python-requests/2.31",
			Has: event.HasASN | event.HasCountry | event.HasPayloadBytes | event.HasUserAgent,
		}
		if every > 0 && i%every == every-1 {
			v := &vs[i]
			v.Level, v.Risk, v.N = policy.Block, 11.5, 2
			v.Reasons[0] = score.Reason{Signal: 4, Contribution: 5, Args: score.Args{1, 2, 0, 1}}
			v.Reasons[1] = score.Reason{Signal: 1, Contribution: 4, Args: score.Args{1, 5e6, 2600, 150}}
		}
	}
	return evs, vs
}
