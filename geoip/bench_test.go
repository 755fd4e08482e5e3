package geoip

import (
	"net/netip"
	"testing"

	"github.com/vigil-sec/vigil/event"
)

var benchIPs = []netip.Addr{
	netip.MustParseAddr("81.2.69.142"),
	netip.MustParseAddr("2a02:cf40::1"),
	netip.MustParseAddr("67.43.156.1"),
	netip.MustParseAddr("89.160.20.113"),
}

// BenchmarkLookup measures Lookup on addresses the databases hold.
func BenchmarkLookup(b *testing.B) {
	db := openTest(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if r := db.Lookup(benchIPs[i%len(benchIPs)]); r.Country == "" {
			b.Fatal("not found")
		}
	}
}

// BenchmarkEnrich measures Enrich of an event with no geo fields.
func BenchmarkEnrich(b *testing.B) {
	db := openTest(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev := event.Event{SourceIP: benchIPs[i%len(benchIPs)]}
		db.Enrich(&ev)
		if ev.Has&event.HasCountry == 0 {
			b.Fatal("not enriched")
		}
	}
}

// BenchmarkEnrichParallel measures Enrich from every P.
func BenchmarkEnrichParallel(b *testing.B) {
	db := openTest(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			ev := event.Event{SourceIP: benchIPs[i%len(benchIPs)]}
			db.Enrich(&ev)
		}
	})
}
