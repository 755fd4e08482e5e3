package zone

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPropose(t *testing.T) {
	addr := netip.MustParseAddr
	obs := []Observed{
		// chatsync: AWS in two regions' ASNs, a trickle from a home ISP.
		{Scope: Client, Subject: "chatsync", ASN: 16509, Country: "US", Requests: 9000},
		{Scope: Client, Subject: "chatsync", ASN: 16509, Country: "IE", Requests: 500},
		{Scope: Client, Subject: "chatsync", ASN: 14618, Country: "US", Requests: 450},
		{Scope: Client, Subject: "chatsync", ASN: 3320, Country: "DE", Requests: 50}, // 0.5%: left out
		// billing: internal callers without GeoIP data, and an ISP known
		// only by country.
		{Scope: Client, Subject: "billing", Addr: addr("10.1.2.3"), Requests: 300},
		{Scope: Client, Subject: "billing", Addr: addr("10.1.2.200"), Requests: 100},
		{Scope: Client, Subject: "billing", Addr: addr("fd00:1:2:3::9"), Requests: 100},
		{Scope: Client, Subject: "billing", Country: "de", Requests: 500},
		{Scope: Client, Subject: "billing", Requests: 3}, // nothing known: counted, never listed
		// too few requests
		{Scope: Client, Subject: "rare", ASN: 16509, Requests: 19},
		// credentials
		{Scope: Credential, Subject: "tk_b", ASN: 36459, Requests: 40},
		{Scope: Credential, Subject: "tk_b", ASN: 36459, Requests: 60},
		{Scope: Credential, Subject: "tk_a", ASN: 8075, Country: "NL", Requests: 25},
		// ignored
		{Scope: Global, Subject: "", ASN: 1, Requests: 1000},
		{Scope: Credential, Subject: "", ASN: 1, Requests: 1000},
		{Scope: Credential, Subject: "tk_zero", ASN: 1, Requests: 0},
		{Scope: Credential, Subject: "tk_nothing", Requests: 100},
	}
	want := []Rule{
		{Name: "learned-client-billing", Scope: Client, Subject: "billing", Effect: Allow,
			CIDRs: prefixes("10.1.2.0/24", "fd00:1:2:3::/64"), Countries: []string{"DE"}, Action: StepUp,
			Comment: "learned from 1003 requests, 99.7% of them covered: DE 49.9%, 10.1.2.0/24 39.9%, fd00:1:2:3::/64 10.0%"},
		{Name: "learned-client-chatsync", Scope: Client, Subject: "chatsync", Effect: Allow,
			ASNs: []uint32{14618, 16509}, Action: StepUp,
			Comment: "learned from 10000 requests, 99.5% of them covered: AS16509 95.0%, AS14618 4.5%"},
		{Name: "learned-credential-tk_a", Scope: Credential, Subject: "tk_a", Effect: Allow,
			ASNs: []uint32{8075}, Action: StepUp,
			Comment: "learned from 25 requests, 100.0% of them covered: AS8075 100.0%"},
		{Name: "learned-credential-tk_b", Scope: Credential, Subject: "tk_b", Effect: Allow,
			ASNs: []uint32{36459}, Action: StepUp,
			Comment: "learned from 100 requests, 100.0% of them covered: AS36459 100.0%"},
	}
	got := Propose(obs, ProposeOptions{})
	if !rulesEqual(got, want) {
		t.Errorf("Propose:\n got %+v\nwant %+v", got, want)
	}
	// The proposals compile and let the observed traffic through.
	s := compileTest(t, got)
	for _, ob := range obs[:3] {
		if v, ok := s.Check(&Request{ClientID: ob.Subject, ASN: ob.ASN, Country: ob.Country}); ok {
			t.Errorf("observed %+v is a violation: %+v", ob, v)
		}
	}

	// Options: a higher share drops AS14618, Block is used, and fewer
	// requests are needed.
	got = Propose(obs, ProposeOptions{MinShare: 0.05, MinRequests: 10, Action: Block})
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
		if r.Action != Block {
			t.Errorf("%s: action %s", r.Name, r.Action)
		}
		if r.Name == "learned-client-chatsync" && !slices.Equal(r.ASNs, []uint32{16509}) {
			t.Errorf("%s: asns %v", r.Name, r.ASNs)
		}
	}
	if want := []string{"learned-client-billing", "learned-client-chatsync", "learned-client-rare", "learned-credential-tk_a", "learned-credential-tk_b"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if got := Propose(nil, ProposeOptions{}); len(got) != 0 {
		t.Errorf("Propose(nil) = %v", got)
	}
}

func rulesEqual(a, b []Rule) bool {
	return slices.EqualFunc(a, b, func(x, y Rule) bool {
		return x.Name == y.Name && x.Scope == y.Scope && x.Subject == y.Subject && x.Effect == y.Effect &&
			slices.Equal(x.CIDRs, y.CIDRs) && slices.Equal(x.ASNs, y.ASNs) && slices.Equal(x.Countries, y.Countries) &&
			x.Action == y.Action && x.Comment == y.Comment
	})
}

func TestFormat(t *testing.T) {
	rules := []Rule{
		{Name: "tor-exits", Scope: Global, Effect: Deny, CIDRs: prefixes("185.220.100.0/22", "2a0b:f4c0::/32"), Action: Block},
		{Name: "learned-client-chatsync", Scope: Client, Subject: "chatsync", Effect: Allow,
			ASNs: []uint32{14618, 16509}, Action: StepUp,
			Comment: "learned from 10000 requests, 99.5% of them covered: AS16509 95.0%, AS14618 4.5%"},
		{Name: "learned-client-billing", Scope: Client, Subject: "billing", Effect: Allow,
			CIDRs: prefixes("10.1.2.0/24"), Countries: []string{"DE", "NO"}, Action: StepUp,
			Comment: "learned from 1003 requests"},
		{Name: "odd: name", Scope: Credential, Subject: "123", Effect: Allow, ASNs: []uint32{1}, Action: Block},
	}
	const want = `- name: tor-exits
  scope: global
  effect: deny
  cidrs: [185.220.100.0/22, '2a0b:f4c0::/32']
  action: block
# learned from 10000 requests, 99.5% of them covered: AS16509 95.0%, AS14618 4.5%
- name: learned-client-chatsync
  scope: client
  subject: chatsync
  effect: allow
  asns: [14618, 16509]
  action: step_up
# learned from 1003 requests
- name: learned-client-billing
  scope: client
  subject: billing
  effect: allow
  cidrs: [10.1.2.0/24]
  countries: ["DE", "NO"]
  action: step_up
- name: 'odd: name'
  scope: credential
  subject: "123"
  effect: allow
  asns: [1]
  action: block
`
	var buf bytes.Buffer
	if err := Format(&buf, rules); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != want {
		t.Errorf("Format:\n%s\nwant:\n%s", got, want)
	}

	// The output reads back with the documented keys.
	var back []struct {
		Name      string         `yaml:"name"`
		Scope     Scope          `yaml:"scope"`
		Subject   string         `yaml:"subject"`
		Effect    Effect         `yaml:"effect"`
		CIDRs     []netip.Prefix `yaml:"cidrs"`
		ASNs      []uint32       `yaml:"asns"`
		Countries []string       `yaml:"countries"`
		Action    Action         `yaml:"action"`
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	read := make([]Rule, len(back))
	for i, b := range back {
		read[i] = Rule{Name: b.Name, Scope: b.Scope, Subject: b.Subject, Effect: b.Effect, CIDRs: b.CIDRs,
			ASNs: b.ASNs, Countries: b.Countries, Action: b.Action, Comment: rules[i].Comment}
	}
	if !rulesEqual(read, rules) {
		t.Errorf("read back:\n%+v\nwant\n%+v", read, rules)
	}

	buf.Reset()
	if err := Format(&buf, nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("Format(nil) = %q, %v", buf.String(), err)
	}
	if err := Format(failWriter{}, rules); !errors.Is(err, errWrite) {
		t.Errorf("Format to a failing writer: %v", err)
	}
}

var errWrite = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }
