package zone

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzCheck compares Check with a direct reading of the semantics on
// rule sets and requests drawn from the seed.
func FuzzCheck(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		rules := randomRules(rnd)
		s, err := Compile(rules)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			r := randomRequest(rnd)
			got, gotOK := s.Check(&r)
			want, wantOK := reference(rules, &r)
			if got != want || gotOK != wantOK {
				t.Fatalf("Check(%+v) = %+v, %v; reference %+v, %v\nrules %+v", r, got, gotOK, want, wantOK, rules)
			}
		}
	})
}

var (
	fuzzSubjects  = []string{"a", "b", "c"}
	fuzzCountries = []string{"DE", "FR", "US"}
	fuzzASNs      = []uint32{1, 2, 3}
)

func randomAddr(rnd *rand.Rand) netip.Addr {
	switch rnd.IntN(4) {
	case 0:
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, byte(rnd.IntN(4)), 15: byte(rnd.IntN(4))})
	case 1:
		return netip.AddrFrom16(netip.AddrFrom4([4]byte{10, 0, byte(rnd.IntN(4)), byte(rnd.IntN(256))}).As16()) // mapped
	case 2:
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte{10, 0, byte(rnd.IntN(4)), byte(rnd.IntN(256))})
}

func randomRules(rnd *rand.Rand) []Rule {
	rules := make([]Rule, rnd.IntN(12))
	for i := range rules {
		r := Rule{Name: "r" + strconv.Itoa(i), Scope: Scope(1 + rnd.IntN(3)), Effect: Effect(1 + rnd.IntN(2)), Action: Action(1 + rnd.IntN(2))}
		if r.Scope != Global {
			r.Subject = fuzzSubjects[rnd.IntN(len(fuzzSubjects))]
		}
		for r.CIDRs == nil && r.ASNs == nil && r.Countries == nil {
			for range rnd.IntN(3) {
				a := randomAddr(rnd)
				if !a.IsValid() || a.Is4In6() {
					continue
				}
				bits := 24 + rnd.IntN(9)
				if a.Is6() {
					bits = 40 + rnd.IntN(89)
				}
				r.CIDRs = append(r.CIDRs, netip.PrefixFrom(a, bits))
			}
			if rnd.IntN(2) == 0 {
				r.ASNs = append(r.ASNs, fuzzASNs[rnd.IntN(len(fuzzASNs))])
			}
			if rnd.IntN(2) == 0 {
				r.Countries = append(r.Countries, fuzzCountries[rnd.IntN(len(fuzzCountries))])
			}
		}
		rules[i] = r
	}
	return rules
}

func randomRequest(rnd *rand.Rand) Request {
	pick := func(ss []string) string {
		if i := rnd.IntN(len(ss) + 1); i < len(ss) {
			return ss[i]
		}
		return ""
	}
	r := Request{TokenID: pick(fuzzSubjects), ClientID: pick(fuzzSubjects), Addr: randomAddr(rnd), Country: pick(fuzzCountries)}
	if i := rnd.IntN(4); i < 3 {
		r.ASN = fuzzASNs[i]
	}
	return r
}

// reference is the package documentation's semantics, read literally.
func reference(rules []Rule, r *Request) (Violation, bool) {
	applies := func(x *Rule, scope Scope) bool {
		switch x.Scope {
		case Client:
			return scope == Client && r.ClientID != "" && x.Subject == r.ClientID
		case Credential:
			return scope == Credential && r.TokenID != "" && x.Subject == r.TokenID
		}
		return scope == Global
	}
	matches := func(x *Rule) bool {
		a := r.Addr.Unmap()
		for _, p := range x.CIDRs {
			if p.Contains(a) {
				return true
			}
		}
		return r.ASN != 0 && slices.Contains(x.ASNs, r.ASN) || r.Country != "" && slices.Contains(x.Countries, r.Country)
	}
	var found []Violation
	for i := range rules {
		x := &rules[i]
		if x.Effect == Deny && applies(x, x.Scope) && matches(x) {
			found = append(found, Violation{Rule: x.Name, Scope: x.Scope, Subject: x.Subject, Effect: Deny, Action: x.Action})
		}
	}
	for _, scope := range []Scope{Credential, Client, Global} {
		var names []string
		var action Action
		inside := false
		for i := range rules {
			x := &rules[i]
			if x.Effect == Allow && applies(x, scope) {
				names = append(names, x.Name)
				action = max(action, x.Action)
				inside = inside || matches(x)
			}
		}
		if names == nil {
			continue
		}
		if !inside {
			subject := map[Scope]string{Credential: r.TokenID, Client: r.ClientID}[scope]
			found = append(found, Violation{Rule: strings.Join(names, ", "), Scope: scope, Subject: subject, Effect: Allow, Action: action})
		}
		break
	}
	if len(found) == 0 {
		return Violation{}, false
	}
	best := found[0]
	for _, v := range found[1:] {
		if v.Action > best.Action {
			best = v
		}
	}
	return best, true
}
