package zone

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchRules returns one global deny rule with 1,500 /32s (a Tor exit
// list), one global allow rule, and clients client and credential allow
// rules of a few ASNs and a CIDR each.
func benchRules(clients, creds int) []Rule {
	tor := make([]netip.Prefix, 1500)
	for i := range tor {
		tor[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{185, 220, byte(i >> 8), byte(i)}), 32)
	}
	rules := []Rule{
		{Name: "tor-exits", Scope: Global, Effect: Deny, CIDRs: tor, Action: Block},
		{Name: "eu-only", Scope: Global, Effect: Allow, Countries: []string{"DE", "FR", "NL", "IE", "SE"}, Action: StepUp},
	}
	for i := range clients {
		rules = append(rules, Rule{
			Name: fmt.Sprintf("client-%d", i), Scope: Client, Subject: fmt.Sprintf("client-%d", i), Effect: Allow,
			ASNs: []uint32{16509, 14618, uint32(64512 + i%1000)}, CIDRs: prefixes(fmt.Sprintf("10.%d.%d.0/24", i>>8&255, i&255)),
			Action: Block,
		})
	}
	for i := range creds {
		rules = append(rules, Rule{
			Name: fmt.Sprintf("cred-%d", i), Scope: Credential, Subject: fmt.Sprintf("tk_%032x", i), Effect: Allow,
			ASNs: []uint32{36459, uint32(100000 + i)}, Action: StepUp,
		})
	}
	return rules
}

// benchRequests cycles through a credential inside its zone, a credential
// outside, a client inside, a client outside and an unknown caller.
func benchRequests(n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		r := Request{Addr: netip.AddrFrom4([4]byte{3, 5, byte(i), 7}), Country: "US"}
		switch i % 5 {
		case 0:
			r.TokenID, r.ClientID, r.ASN = fmt.Sprintf("tk_%032x", i), fmt.Sprintf("client-%d", i), 36459
		case 1:
			r.TokenID, r.ASN = fmt.Sprintf("tk_%032x", i), 16509
		case 2:
			r.ClientID, r.ASN = fmt.Sprintf("client-%d", i), 14618
		case 3:
			r.ClientID, r.ASN = fmt.Sprintf("client-%d", i), 14061
		default:
			r.TokenID, r.ClientID, r.Country = "tk_unknown", "unknown", "DE"
		}
		reqs[i] = r
	}
	return reqs
}

// BenchmarkCheck measures Check with 1 global deny of 1,500 /32s, 1
// global allow, 1,000 client and 10,000 credential rules.
func BenchmarkCheck(b *testing.B) {
	s, err := Compile(benchRules(1000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests(1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Check(&reqs[i%len(reqs)])
	}
}

// BenchmarkCheckParallel is BenchmarkCheck from every P.
func BenchmarkCheckParallel(b *testing.B) {
	s, err := Compile(benchRules(1000, 10000))
	if err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests(1000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			s.Check(&reqs[i%len(reqs)])
		}
	})
}

// BenchmarkAppendDetail measures the reason of an allow-list violation.
func BenchmarkAppendDetail(b *testing.B) {
	r := Request{ClientID: "chatsync", Addr: netip.MustParseAddr("203.0.113.7"), ASN: 14061, Country: "DE"}
	v := Violation{Rule: "chatsync-aws, chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, Action: Block}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for range b.N {
		buf = v.AppendDetail(buf[:0], &r)
	}
}
