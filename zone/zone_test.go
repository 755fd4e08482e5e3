package zone

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

var testRules = []Rule{
	{Name: "tor-exits", Scope: Global, Effect: Deny, CIDRs: prefixes("185.220.100.0/22", "2a0b:f4c0::/32"), Action: Block},
	{Name: "eu-only", Scope: Global, Effect: Allow, Countries: []string{"DE", "fr", "NL"}, Action: StepUp},
	{Name: "chatsync-aws", Scope: Client, Subject: "chatsync", Effect: Allow, ASNs: []uint32{16509, 14618}, Action: Block},
	{Name: "chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, CIDRs: prefixes("203.0.113.0/24"), Action: StepUp},
	{Name: "ci-runner", Scope: Credential, Subject: "tk_ci", Effect: Allow, ASNs: []uint32{36459}, Action: StepUp},
	{Name: "billing-no-ru", Scope: Client, Subject: "billing", Effect: Deny, Countries: []string{"RU"}, Action: StepUp},
	{Name: "v6-only", Scope: Credential, Subject: "tk_v6", Effect: Allow, CIDRs: prefixes("2001:db8:1::/48"), Action: Block},
	{Name: "mapped", Scope: Credential, Subject: "tk_map", Effect: Allow, CIDRs: prefixes("::ffff:198.51.100.0/120"), Action: Block},
	{Name: "billing-no-as666", Scope: Credential, Subject: "tk_bill", Effect: Deny, ASNs: []uint32{666}, Action: StepUp},
}

func compileTest(t testing.TB, rules []Rule) *Set {
	t.Helper()
	s, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheck(t *testing.T) {
	s := compileTest(t, testRules)
	addr := netip.MustParseAddr
	const (
		tor = "185.220.101.4"
		us  = "3.5.140.2"
	)
	for _, tc := range []struct {
		name string
		r    Request
		want Violation // zero: no violation
	}{
		{"global deny", Request{Addr: addr(tor), Country: "DE"},
			Violation{Rule: "tor-exits", Scope: Global, Effect: Deny, Action: Block}},
		{"global deny beats client allow", Request{ClientID: "chatsync", Addr: addr(tor), ASN: 16509},
			Violation{Rule: "tor-exits", Scope: Global, Effect: Deny, Action: Block}},
		{"global deny beats credential allow", Request{TokenID: "tk_ci", Addr: addr(tor), ASN: 36459},
			Violation{Rule: "tor-exits", Scope: Global, Effect: Deny, Action: Block}},
		{"global deny v6", Request{Addr: addr("2a0b:f4c0:1::1"), Country: "DE"},
			Violation{Rule: "tor-exits", Scope: Global, Effect: Deny, Action: Block}},
		{"global allow", Request{Addr: addr(us), Country: "DE"}, Violation{}},
		{"global allow lower case", Request{Addr: addr(us), Country: "fr"}, Violation{}},
		{"outside global allow", Request{Addr: addr(us), ASN: 16509, Country: "US"},
			Violation{Rule: "eu-only", Scope: Global, Effect: Allow, Action: StepUp}},
		{"unknown geo outside global allow", Request{Addr: addr(us)},
			Violation{Rule: "eu-only", Scope: Global, Effect: Allow, Action: StepUp}},
		{"unknown client falls to global", Request{ClientID: "nobody", Addr: addr(us), Country: "NL"}, Violation{}},
		{"client allow ASN", Request{ClientID: "chatsync", Addr: addr(us), ASN: 16509, Country: "US"}, Violation{}},
		{"client allow second ASN", Request{ClientID: "chatsync", Addr: addr(us), ASN: 14618}, Violation{}},
		{"client allow CIDR", Request{ClientID: "chatsync", Addr: addr("203.0.113.7")}, Violation{}},
		{"client allow CIDR mapped request", Request{ClientID: "chatsync", Addr: addr("::ffff:203.0.113.7")}, Violation{}},
		{"client allow overrides global", Request{ClientID: "chatsync", Addr: addr(us), ASN: 14618, Country: "US"}, Violation{}},
		{"outside client allow", Request{ClientID: "chatsync", Addr: addr("46.101.1.1"), ASN: 14061, Country: "DE"},
			Violation{Rule: "chatsync-aws, chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, Action: Block}},
		{"unknown geo outside client allow", Request{ClientID: "chatsync", Addr: addr("46.101.1.1")},
			Violation{Rule: "chatsync-aws, chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, Action: Block}},
		{"no address outside client allow", Request{ClientID: "chatsync", ASN: 1},
			Violation{Rule: "chatsync-aws, chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, Action: Block}},
		{"credential allow", Request{TokenID: "tk_ci", ClientID: "chatsync", Addr: addr(us), ASN: 36459, Country: "US"}, Violation{}},
		{"credential overrides client", Request{TokenID: "tk_ci", ClientID: "chatsync", Addr: addr(us), ASN: 16509},
			Violation{Rule: "ci-runner", Scope: Credential, Subject: "tk_ci", Effect: Allow, Action: StepUp}},
		{"credential overrides global", Request{TokenID: "tk_ci", Addr: addr(us), ASN: 16509, Country: "DE"},
			Violation{Rule: "ci-runner", Scope: Credential, Subject: "tk_ci", Effect: Allow, Action: StepUp}},
		{"credential without allow rules: client decides", Request{TokenID: "tk_other", ClientID: "chatsync", Addr: addr(us), ASN: 16509}, Violation{}},
		{"IPv6 CIDR", Request{TokenID: "tk_v6", Addr: addr("2001:db8:1:2::5")}, Violation{}},
		{"outside IPv6 CIDR", Request{TokenID: "tk_v6", Addr: addr("2001:db8:2::5")},
			Violation{Rule: "v6-only", Scope: Credential, Subject: "tk_v6", Effect: Allow, Action: Block}},
		{"IPv4 outside IPv6 CIDR", Request{TokenID: "tk_v6", Addr: addr("81.2.69.1")},
			Violation{Rule: "v6-only", Scope: Credential, Subject: "tk_v6", Effect: Allow, Action: Block}},
		{"zoned address", Request{TokenID: "tk_v6", Addr: addr("2001:db8:1::1%eth0")}, Violation{}},
		{"mapped rule, IPv4 request", Request{TokenID: "tk_map", Addr: addr("198.51.100.7")}, Violation{}},
		{"mapped rule, mapped request", Request{TokenID: "tk_map", Addr: addr("::ffff:198.51.100.7")}, Violation{}},
		{"mapped rule, outside", Request{TokenID: "tk_map", Addr: addr("198.51.101.7")},
			Violation{Rule: "mapped", Scope: Credential, Subject: "tk_map", Effect: Allow, Action: Block}},
		{"client deny before global allow of same action", Request{ClientID: "billing", Addr: addr(us), Country: "RU"},
			Violation{Rule: "billing-no-ru", Scope: Client, Subject: "billing", Effect: Deny, Action: StepUp}},
		{"block beats step_up", Request{ClientID: "billing", Addr: addr(tor), Country: "RU"},
			Violation{Rule: "tor-exits", Scope: Global, Effect: Deny, Action: Block}},
		{"client deny, then credential deny in order", Request{TokenID: "tk_bill", ClientID: "billing", Addr: addr(us), ASN: 666, Country: "RU"},
			Violation{Rule: "billing-no-ru", Scope: Client, Subject: "billing", Effect: Deny, Action: StepUp}},
		{"credential deny", Request{TokenID: "tk_bill", ClientID: "billing", Addr: addr(us), ASN: 666, Country: "DE"},
			Violation{Rule: "billing-no-as666", Scope: Credential, Subject: "tk_bill", Effect: Deny, Action: StepUp}},
		{"client allow-list block beats deny step_up", Request{TokenID: "tk_bill", ClientID: "chatsync", Addr: addr(us), ASN: 666},
			Violation{Rule: "chatsync-aws, chatsync-office", Scope: Client, Subject: "chatsync", Effect: Allow, Action: Block}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := s.Check(&tc.r)
			if ok != (tc.want != Violation{}) || got != tc.want {
				t.Errorf("Check = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
}

func TestCheckEmpty(t *testing.T) {
	r := &Request{TokenID: "tk_x", Addr: netip.MustParseAddr("1.2.3.4")}
	var nilSet *Set
	if v, ok := nilSet.Check(r); ok {
		t.Errorf("nil Set: %+v", v)
	}
	if nilSet.NeedsGeo() || nilSet.Len() != 0 {
		t.Error("nil Set has rules")
	}
	s := compileTest(t, nil)
	if v, ok := s.Check(r); ok {
		t.Errorf("empty Set: %+v", v)
	}
	// Only deny rules: nothing else is restricted.
	s = compileTest(t, testRules[:1])
	if v, ok := s.Check(r); ok {
		t.Errorf("deny-only Set: %+v", v)
	}
}

func TestNeedsGeo(t *testing.T) {
	for _, tc := range []struct {
		rules []Rule
		want  bool
	}{
		{testRules[:1], false},
		{testRules[:2], true},
		{[]Rule{testRules[2]}, true},
		{[]Rule{testRules[6], testRules[7]}, false},
	} {
		if got := compileTest(t, tc.rules).NeedsGeo(); got != tc.want {
			t.Errorf("NeedsGeo(%s...) = %v", tc.rules[0].Name, got)
		}
	}
}

func TestAppendDetail(t *testing.T) {
	s := compileTest(t, testRules)
	addr := netip.MustParseAddr
	for _, tc := range []struct {
		r    Request
		want string
	}{
		{Request{ClientID: "chatsync", Addr: addr("203.0.114.7"), ASN: 14061, Country: "DE"},
			`request from 203.0.114.7 (AS14061, DE) outside zones "chatsync-aws", "chatsync-office" of client chatsync`},
		{Request{Addr: addr("185.220.101.4"), ASN: 60729},
			`request from 185.220.101.4 (AS60729, country unknown) matches deny rule "tor-exits" (global)`},
		{Request{Addr: addr("2001:db8::1")},
			`request from 2001:db8::1 (AS unknown, country unknown) outside zone "eu-only" (global)`},
		{Request{TokenID: "tk_ci", ASN: 16509, Country: "US"},
			`request from unknown address (AS16509, US) outside zone "ci-runner" of credential tk_ci`},
		{Request{ClientID: "billing", Addr: addr("::ffff:5.5.5.5"), Country: "RU"},
			`request from ::ffff:5.5.5.5 (AS unknown, RU) matches deny rule "billing-no-ru" of client billing`},
	} {
		v, ok := s.Check(&tc.r)
		if !ok {
			t.Fatalf("%+v: no violation", tc.r)
		}
		if got := string(v.AppendDetail(nil, &tc.r)); got != tc.want {
			t.Errorf("AppendDetail:\n got %s\nwant %s", got, tc.want)
		}
	}
}

func TestCheckAllocs(t *testing.T) {
	s := compileTest(t, benchRules(20, 300))
	reqs := benchRequests(300)
	var buf []byte
	n := testing.AllocsPerRun(100, func() {
		for i := range reqs {
			if v, ok := s.Check(&reqs[i]); ok {
				buf = v.AppendDetail(buf[:0], &reqs[i])
			}
		}
	})
	if n != 0 {
		t.Errorf("Check allocates %v times per %d requests", n, len(reqs))
	}
}

func TestCompileErrors(t *testing.T) {
	good := Rule{Name: "ok", Scope: Global, Effect: Allow, ASNs: []uint32{1}, Action: Block}
	with := func(f func(*Rule)) []Rule {
		r := good
		f(&r)
		return []Rule{r}
	}
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  []string // one per error
	}{
		{"name required", with(func(r *Rule) { r.Name = "" }), []string{`zone: rule 0: name: required`}},
		{"name chars", with(func(r *Rule) { r.Name = "a,b" }), []string{`zone: rule 0 "a,b": name: must not contain commas, double quotes or control characters`}},
		{"name quote", with(func(r *Rule) { r.Name = `a"b` }), []string{`name: must not contain`}},
		{"name duplicate", []Rule{good, good}, []string{`zone: rule 1 "ok": name: duplicate of rule 0`}},
		{"scope required", with(func(r *Rule) { r.Scope = 0 }), []string{`zone: rule 0 "ok": scope: required (global, client or credential)`}},
		{"scope invalid", with(func(r *Rule) { r.Scope = 9 }), []string{`scope: invalid value 9 (want global, client or credential)`}},
		{"subject for global", with(func(r *Rule) { r.Subject = "x" }), []string{`zone: rule 0 "ok": subject: must be empty for global scope`}},
		{"subject for client", with(func(r *Rule) { r.Scope = Client }), []string{`zone: rule 0 "ok": subject: required for client scope`}},
		{"subject for credential", with(func(r *Rule) { r.Scope = Credential }), []string{`subject: required for credential scope`}},
		{"effect", with(func(r *Rule) { r.Effect = 0 }), []string{`zone: rule 0 "ok": effect: required (allow or deny)`}},
		{"action", with(func(r *Rule) { r.Action = 0 }), []string{`zone: rule 0 "ok": action: required (block or step_up)`}},
		{"action invalid", with(func(r *Rule) { r.Action = 3 }), []string{`action: invalid value 3 (want block or step_up)`}},
		{"no criteria", with(func(r *Rule) { r.ASNs = nil }), []string{`zone: rule 0 "ok": needs at least one of cidrs, asns, countries`}},
		{"asn 0", with(func(r *Rule) { r.ASNs = []uint32{1, 0} }), []string{`zone: rule 0 "ok": asns[1]: 0 is not an AS number`}},
		{"bad prefix", with(func(r *Rule) { r.CIDRs = []netip.Prefix{{}} }), []string{`zone: rule 0 "ok": cidrs[0]: invalid prefix`}},
		{"countries", with(func(r *Rule) { r.Countries = []string{"DE", "DEU", "", "D1", "é"} }), []string{
			`zone: rule 0 "ok": countries[1]: "DEU" is not a two-letter country code`,
			`countries[2]: "" is not a two-letter country code`,
			`countries[3]: "D1" is not`,
			`countries[4]: "é" is not`,
		}},
		{"all at once", []Rule{good, {Name: "ok", Subject: "x", CIDRs: []netip.Prefix{{}}}}, []string{
			`rule 1 "ok": name: duplicate of rule 0`,
			`rule 1 "ok": scope: required`,
			`rule 1 "ok": effect: required`,
			`rule 1 "ok": action: required`,
			`rule 1 "ok": cidrs[0]: invalid prefix`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Compile(tc.rules)
			if err == nil {
				t.Fatalf("Compile succeeded: %d rules", s.Len())
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d %q does not contain %q", i, errs[i], w)
				}
				var re *RuleError
				if !errors.As(errs[i], &re) {
					t.Errorf("error %d is not a *RuleError", i)
				}
			}
		})
	}
}

func TestEnums(t *testing.T) {
	for _, tc := range []struct {
		s     string
		parse func(string) (fmt.Stringer, error)
	}{
		{"global", func(s string) (fmt.Stringer, error) { return ParseScope(s) }},
		{"client", func(s string) (fmt.Stringer, error) { return ParseScope(s) }},
		{"credential", func(s string) (fmt.Stringer, error) { return ParseScope(s) }},
		{"allow", func(s string) (fmt.Stringer, error) { return ParseEffect(s) }},
		{"deny", func(s string) (fmt.Stringer, error) { return ParseEffect(s) }},
		{"block", func(s string) (fmt.Stringer, error) { return ParseAction(s) }},
		{"step_up", func(s string) (fmt.Stringer, error) { return ParseAction(s) }},
	} {
		v, err := tc.parse(tc.s)
		if err != nil || v.String() != tc.s {
			t.Errorf("parse(%q) = %v, %v", tc.s, v, err)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{second(ParseScope("Global")), `zone: unknown scope "Global" (want global, client, credential)`},
		{second(ParseEffect("")), `zone: unknown effect "" (want allow, deny)`},
		{second(ParseAction("stepup")), `zone: unknown action "stepup" (want step_up, block)`},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("error %v, want %s", tc.err, tc.want)
		}
	}
	if s := Scope(0).String(); s != "Scope(0)" {
		t.Errorf("Scope(0) = %s", s)
	}
	var a Action
	if err := a.UnmarshalText([]byte("block")); err != nil || a != Block {
		t.Errorf("UnmarshalText = %v, %v", a, err)
	}
	if _, err := Effect(7).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid Effect succeeded")
	}
}

func second[T any](_ T, err error) error { return err }

// TestHasAddr compares the binary search with a linear scan over random
// nested and overlapping prefixes.
func TestHasAddr(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1], b[2] = 0x20, 0x01, byte(rnd.IntN(4))
			b[3] = byte(rnd.IntN(256))
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(rnd.IntN(4)), byte(rnd.IntN(256)), byte(rnd.IntN(256))})
	}
	for round := range 200 {
		var raw []netip.Prefix
		for range 1 + rnd.IntN(40) {
			v6 := rnd.IntN(3) == 0
			bits := 8 + rnd.IntN(25)
			if v6 {
				bits = 16 + rnd.IntN(40)
			}
			raw = append(raw, netip.PrefixFrom(randAddr(v6), bits).Masked())
		}
		ps := disjoint(append([]netip.Prefix(nil), raw...))
		for range 200 {
			a := randAddr(rnd.IntN(3) == 0)
			want := false
			for _, p := range raw {
				want = want || p.Contains(a)
			}
			if got := hasAddr(ps, a); got != want {
				t.Fatalf("round %d: hasAddr(%v, %s) = %v, want %v (raw %v)", round, ps, a, got, want, raw)
			}
		}
	}
}
