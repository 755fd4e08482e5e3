package score_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
)

var t0 = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)

// ev builds an event; fields: ip, asn, country, endpoint, status, bytes, ua.
type ev struct {
	path     string
	lat, lon float64
	at       time.Duration
	ip       string
	asn      uint32
	country  string
	endpoint string
	status   int
	bytes    int64
	ua       string
}

func (x ev) event() *event.Event {
	e := &event.Event{Time: t0.Add(x.at).UnixNano(), TokenID: "tk_a", Endpoint: x.endpoint, Status: x.status}
	if e.Endpoint == "" {
		e.Endpoint = "/v1/accounts/{id}"
	}
	if e.Status == 0 {
		e.Status = 200
	}
	if x.ip == "" {
		x.ip = "198.51.100.7"
	}
	e.SourceIP = netip.MustParseAddr(x.ip)
	if x.asn != 0 {
		e.ASN, e.Has = x.asn, e.Has|event.HasASN
	}
	if x.country != "" {
		e.Country, e.Has = x.country, e.Has|event.HasCountry
	}
	if x.bytes != 0 {
		e.PayloadBytes, e.Has = x.bytes, e.Has|event.HasPayloadBytes
	}
	if x.ua != "" {
		e.UserAgent, e.Has = x.ua, e.Has|event.HasUserAgent
	}
	if x.path != "" {
		e.Path, e.Has = x.path, e.Has|event.HasPath
	}
	if x.lat != 0 || x.lon != 0 {
		e.Lat, e.Lon, e.Has = x.lat, x.lon, e.Has|event.HasGeo
	}
	return e
}

// owner is a week of ordinary use: 10 requests an hour during the day from a
// home network in Germany, two endpoints, 2 kB answers, one client.
func owner() []ev {
	var h []ev
	for d := range 7 {
		for hr := 8; hr < 18; hr++ {
			for i := range 10 {
				h = append(h, ev{
					at: time.Duration(d)*24*time.Hour + time.Duration(hr-8)*time.Hour + time.Duration(i)*time.Minute,
					ip: "198.51.100.7", asn: 3320, country: "DE",
					endpoint: []string{"/v1/accounts/{id}", "/v1/orders"}[i%2],
					bytes:    2000 + int64(i*10), ua: "okhttp/4.12.0",
				})
			}
		}
	}
	return h
}

const week = 7 * 24 * time.Hour

// geoOwner is owner() with a location in Berlin, ending with a request at
// the start of the second week.
func geoOwner() []ev {
	h := owner()
	for i := range h {
		h[i].lat, h[i].lon = 52.52, 13.40
	}
	last := h[len(h)-1]
	last.at = week
	return append(h, last)
}

type harness struct {
	tr *profile.Tracker
	m  *score.Model
	p  profile.Profile
	kr profile.Keyer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	tr, err := profile.NewTracker(profile.Params{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{tr: tr, m: m}
}

// run feeds events, learning each as trusted while its risk is under 4,
// and returns the assessment of the last.
func (h *harness) run(evs []ev) (score.Assessment, *event.Event) {
	var a score.Assessment
	var e *event.Event
	for _, x := range evs {
		e = x.event()
		h.kr.Fill(e)
		var o profile.Observation
		h.tr.Observe(&h.p, e, &o)
		h.m.Assess(&o, e, &a)
		trust := profile.Untrusted
		if a.Risk < 4 {
			trust = profile.Trusted
		}
		h.tr.Learn(&h.p, e, &o, trust)
	}
	return a, e
}

func (h *harness) reason(a *score.Assessment, e *event.Event, signal string) (float64, string) {
	for i := 0; i < a.N; i++ {
		r := &a.Reasons[i]
		if h.m.SignalName(r) == signal {
			return r.Contribution, string(h.m.AppendDetail(nil, e, r))
		}
	}
	return 0, ""
}

func repeat(n int, f func(i int) ev) []ev {
	out := make([]ev, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestVigilSignals(t *testing.T) {
	for _, c := range []struct {
		name    string
		signal  string
		history []ev
		then    []ev
		fires   bool
		detail  string
	}{
		{name: "first event of a credential scores nothing", signal: "", history: nil,
			then: []ev{{ip: "203.0.113.9", asn: 14061, country: "NL", bytes: 5e7, ua: "curl/8"}}, fires: false},
		{name: "rate burst against the credential's own rate", signal: "rate", history: owner(),
			then: repeat(200, func(i int) ev {
				return ev{at: week + time.Duration(i)*200*time.Millisecond, asn: 3320, country: "DE", bytes: 2000, ua: "okhttp/4.12.0"}
			}), fires: true, detail: "200 requests in 1 min"},
		{name: "the credential's usual rate is not a burst", signal: "rate", history: owner(),
			then: repeat(10, func(i int) ev {
				return ev{at: week + time.Duration(i)*time.Minute, asn: 3320, country: "DE", bytes: 2000, ua: "okhttp/4.12.0"}
			}), fires: false},
		{name: "one huge response", signal: "volume", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", bytes: 80e6, ua: "okhttp/4.12.0"}}, fires: true, detail: "80.0 MB in one response"},
		{name: "an ordinary response", signal: "volume", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", bytes: 2500, ua: "okhttp/4.12.0"}}, fires: false},
		{name: "many authorization failures", signal: "auth_failures", history: owner(),
			then: repeat(8, func(i int) ev {
				return ev{at: week + time.Duration(i)*time.Second, asn: 3320, country: "DE", status: 403, ua: "okhttp/4.12.0"}
			}), fires: true, detail: "authorization failures (401/403)"},
		{name: "a couple of failures", signal: "auth_failures", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", status: 401}, {at: week + time.Second, asn: 3320, country: "DE", status: 403}}, fires: false},
		{name: "replay from many networks", signal: "network_churn", history: owner(),
			then: repeat(5, func(i int) ev {
				return ev{at: week + time.Duration(i)*time.Minute, ip: fmt.Sprintf("203.0.%d.9", 110+i), asn: uint32(60000 + i), country: "US"}
			}), fires: true, detail: "5 networks (ASNs) in 20 min, 5 never seen for this credential"},
		{name: "churn on prefixes when ASNs are unknown", signal: "network_churn", history: repeat(30, func(i int) ev {
			return ev{at: time.Duration(i) * 3 * time.Minute}
		}),
			then: repeat(4, func(i int) ev {
				return ev{at: 2*time.Hour + time.Duration(i)*time.Minute, ip: fmt.Sprintf("192.0.%d.1", i)}
			}), fires: true, detail: "networks (address prefixes) in 20 min"},
		{name: "a new credential starting out from three regions is not churn", signal: "network_churn", history: nil,
			then: repeat(3, func(i int) ev {
				return ev{at: time.Duration(i) * 20 * time.Second, ip: fmt.Sprintf("203.0.%d.9", 110+i%3), asn: []uint32{16509, 396982, 14061}[i%3], country: "US"}
			}), fires: false},
		{name: "the owner's own network", signal: "network_churn", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE"}}, fires: false},
		{name: "new country and hosting ASN", signal: "new_network", history: owner(),
			then: []ev{{at: week, ip: "203.0.113.66", asn: 14061, country: "NL"}}, fires: true,
			detail: "country NL never seen for this credential (it has used 1 other); AS14061 never seen for this credential, a hosting provider's network; the credential never used one"},
		{name: "a residential ASN is not weighted as hosting", signal: "new_network", history: owner(),
			then: []ev{{at: week, ip: "203.0.113.66", asn: 64501, country: "DE"}}, fires: true,
			detail: "AS64501 never seen for this credential"},
		{name: "next carrier address inside a known ASN costs little", signal: "new_network", history: owner(),
			then: []ev{{at: week, ip: "198.51.200.7", asn: 3320, country: "DE"}}, fires: true,
			detail: "network 198.51.200.0/24 new for this credential, inside a known ASN"},
		{name: "novelty is not judged during warm-up", signal: "new_network", history: repeat(5, func(i int) ev {
			return ev{at: time.Duration(i) * time.Minute, asn: 3320, country: "DE"}
		}),
			then: []ev{{at: 10 * time.Minute, ip: "203.0.113.66", asn: 14061, country: "NL"}}, fires: false},
		{name: "an endpoint the credential never used", signal: "new_endpoint", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", endpoint: "/v1/admin/users"}}, fires: true,
			detail: "endpoint /v1/admin/users never used by this credential"},
		{name: "several new endpoints in the window", signal: "new_endpoint", history: owner(),
			then: repeat(4, func(i int) ev {
				return ev{at: week + time.Duration(i)*time.Second, asn: 3320, country: "DE", endpoint: fmt.Sprintf("/v1/admin/%d", i)}
			}), fires: true, detail: "4 new endpoints in 20 min"},
		{name: "a new user-agent family", signal: "user_agent", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", ua: "python-requests/2.31.0"}}, fires: true,
			detail: "user-agent family python-requests never seen for this credential (it uses 1 other)"},
		{name: "a new version of the same client", signal: "user_agent", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", ua: "okhttp/5.0.0"}}, fires: false},
		{name: "first use after months", signal: "dormancy", history: owner(),
			then: []ev{{at: week + 94*24*time.Hour, asn: 3320, country: "DE"}}, fires: true,
			detail: "first request after 94 days of silence"},
		{name: "a weekend off is not dormancy", signal: "dormancy", history: owner(),
			then: []ev{{at: week + 3*24*time.Hour, asn: 3320, country: "DE"}}, fires: false},
		{name: "used in two distant places at once", signal: "travel", history: geoOwner(),
			then: []ev{{at: week + 2*time.Minute, ip: "203.0.113.66", asn: 14061, country: "SG", lat: 1.35, lon: 103.8}}, fires: true,
			detail: "used in two distant places at once"},
		{name: "faster than a flight", signal: "travel", history: geoOwner(),
			then: []ev{{at: week + 3*time.Hour, ip: "203.0.113.66", asn: 14061, country: "SG", lat: 1.35, lon: 103.8}}, fires: true,
			detail: "faster than a flight"},
		{name: "a flight's worth of time", signal: "travel", history: geoOwner(),
			then: []ev{{at: week + 14*time.Hour, ip: "203.0.113.66", asn: 14061, country: "SG", lat: 1.35, lon: 103.8}}, fires: false},
		{name: "next town over", signal: "travel", history: geoOwner(),
			then: []ev{{at: week + 2*time.Minute, ip: "203.0.113.66", asn: 14061, country: "DE", lat: 52.37, lon: 9.73}}, fires: false},
		{name: "the owner's own request after a thief's far away", signal: "travel", history: append(geoOwner(),
			ev{at: week + time.Minute, ip: "203.0.113.66", asn: 14061, country: "SG", lat: 1.35, lon: 103.8}),
			then: []ev{{at: week + 2*time.Minute, asn: 3320, country: "DE", ua: "okhttp/4.12.0", lat: 52.52, lon: 13.40}}, fires: false},
		{name: "a service established in two countries at once", signal: "travel", history: repeat(300, func(i int) ev {
			x := ev{at: time.Duration(i) * time.Minute, ip: "3.80.1.9", asn: 14618, country: "US", lat: 39.0, lon: -77.5}
			if i%2 == 1 {
				x.ip, x.country, x.lat, x.lon = "52.210.39.143", "IE", 53.3, -6.3
			}
			return x
		}),
			then: []ev{{at: 300 * time.Minute, ip: "128.199.98.231", asn: 14061, country: "SG", lat: 1.35, lon: 103.8}}, fires: false},
		{name: "missing geography", signal: "travel", history: geoOwner(),
			then: []ev{{at: week + 2*time.Minute, ip: "203.0.113.66", asn: 14061, country: "SG"}}, fires: false},
		{name: "403s on endpoints never used", signal: "scope_probe", history: owner(),
			then: repeat(4, func(i int) ev {
				return ev{at: week + time.Duration(i)*time.Second, asn: 3320, country: "DE", status: 403, endpoint: fmt.Sprintf("/v1/admin/%d", i)}
			}), fires: true, detail: "403 on /v1/admin/3, an endpoint this credential never used; 4 unfamiliar endpoints in 20 min"},
		{name: "a 403 on a familiar endpoint is not probing", signal: "scope_probe", history: owner(),
			then: []ev{{at: week, asn: 3320, country: "DE", status: 403, endpoint: "/v1/orders"}}, fires: false},
		{name: "walking object ids", signal: "enumeration", history: owner(),
			then: repeat(60, func(i int) ev {
				return ev{at: week + time.Duration(i)*5*time.Second, asn: 3320, country: "DE", status: []int{404, 403, 404, 200}[i%4], path: fmt.Sprintf("/v1/accounts/%d", 1000+i)}
			}), fires: true, detail: "distinct object paths in 20 min"},
		{name: "a user opening many records that exist", signal: "enumeration", history: owner(),
			then: repeat(60, func(i int) ev {
				return ev{at: week + time.Duration(i)*5*time.Second, asn: 3320, country: "DE", path: fmt.Sprintf("/v1/accounts/%d", 1000+i)}
			}), fires: false},
		{name: "IPv6 and no geography", signal: "new_network", history: repeat(40, func(i int) ev {
			return ev{at: time.Duration(i) * 3 * time.Minute, ip: "2001:db8:1:2::7"}
		}),
			then: []ev{{at: 3 * time.Hour, ip: "2001:db8:9:9::1"}}, fires: true, detail: "network 2001:db8:9:9::/64 new for this credential"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.run(c.history)
			a, e := h.run(c.then)
			if c.signal == "" {
				if a.N != 0 || a.Risk != 0 {
					t.Fatalf("risk %g with %d reasons", a.Risk, a.N)
				}
				return
			}
			got, detail := h.reason(&a, e, c.signal)
			if (got > 0) != c.fires {
				var all []string
				for i := 0; i < a.N; i++ {
					all = append(all, h.m.SignalName(&a.Reasons[i])+": "+string(h.m.AppendDetail(nil, e, &a.Reasons[i])))
				}
				t.Fatalf("%s contributed %g, want firing=%v; reasons: %q", c.signal, got, c.fires, all)
			}
			if c.detail != "" && !strings.Contains(detail, c.detail) {
				t.Errorf("detail %q, want it to contain %q", detail, c.detail)
			}
		})
	}
}

// TestContributionsAreCappedAndSum checks the composite: risk is the sum of
// the reasons, and every reason is positive and finite.
func TestContributionsAreCappedAndSum(t *testing.T) {
	h := newHarness(t)
	h.run(owner())
	a, _ := h.run(repeat(300, func(i int) ev {
		return ev{at: week + time.Duration(i)*100*time.Millisecond, ip: fmt.Sprintf("203.0.%d.%d", 100+i%5, i%200), asn: uint32(14061 + i%5), country: "BR",
			status: []int{200, 403}[i%2], bytes: 40e6, ua: "python-requests/2.31.0", endpoint: fmt.Sprintf("/v1/x%d", i%9)}
	}))
	sum := 0.0
	for i := 0; i < a.N; i++ {
		c := a.Reasons[i].Contribution
		if !(c > 0 && c <= 5) {
			t.Errorf("%s: contribution %g outside (0, 5]", h.m.SignalName(&a.Reasons[i]), c)
		}
		sum += c
	}
	if a.Risk != sum || a.N < 4 {
		t.Errorf("risk %g, sum of %d reasons %g", a.Risk, a.N, sum)
	}
}

func TestWeights(t *testing.T) {
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetWeight("user_agent", 0); err != nil {
		t.Fatal(err)
	}
	if err := m.SetWeight("nope", 1); err == nil || !strings.Contains(err.Error(), "rate, volume") {
		t.Errorf("unknown signal: %v", err)
	}
	if err := m.SetWeight("rate", -1); err == nil {
		t.Error("negative weight accepted")
	}
	h := newHarness(t)
	h.m = m
	h.run(owner())
	a, e := h.run([]ev{{at: week, asn: 3320, country: "DE", ua: "python-requests/2.31.0"}})
	if c, _ := h.reason(&a, e, "user_agent"); c != 0 {
		t.Errorf("weight 0 still contributes %g", c)
	}
	if _, err := score.Vigil(score.VigilOptions{Dormancy: time.Minute}); err == nil {
		t.Error("dormancy of a minute accepted")
	}
}
