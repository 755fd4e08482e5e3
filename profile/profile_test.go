package profile

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-sec/vigil/event"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type opt func(*event.Event)

func withASN(asn uint32, country string) opt {
	return func(e *event.Event) {
		e.ASN, e.Country = asn, country
		e.Has |= event.HasASN | event.HasCountry
	}
}
func withBytes(n int64) opt {
	return func(e *event.Event) { e.PayloadBytes = n; e.Has |= event.HasPayloadBytes }
}
func withUA(ua string) opt {
	return func(e *event.Event) { e.UserAgent = ua; e.Has |= event.HasUserAgent }
}
func withStatus(s int) opt { return func(e *event.Event) { e.Status = s } }
func withGeo(lat, lon float64) opt {
	return func(e *event.Event) { e.Lat, e.Lon = lat, lon; e.Has |= event.HasGeo }
}

func mkEvent(at time.Duration, ip, endpoint string, opts ...opt) *event.Event {
	e := &event.Event{
		Time:     t0.Add(at).UnixNano(),
		TokenID:  "tk_test",
		SourceIP: netip.MustParseAddr(ip),
		Endpoint: endpoint,
		Status:   200,
	}
	for _, o := range opts {
		o(e)
	}
	var k Keyer
	k.Fill(e)
	return e
}

func newTracker(t testing.TB, p Params) *Tracker {
	t.Helper()
	tr, err := NewTracker(p)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// step observes and learns one event, returning the observation.
func step(tr *Tracker, p *Profile, e *event.Event, trusted bool) Observation {
	var o Observation
	tr.Observe(p, e, &o)
	trust := Untrusted
	if trusted {
		trust = Trusted
	}
	tr.Learn(p, e, &o, trust)
	return o
}

func TestSizeIsFixed(t *testing.T) {
	// The budget: a profile stays within 496 bytes, so that with the
	// policy's 8 bytes an engine record is exactly eight cache lines.
	if Size > 496 {
		t.Fatalf("profile.Size = %d bytes, budget 496", Size)
	}
	// Feeding a million distinct values of every dimension does not change
	// what a profile holds: its tables saturate and evict.
	tr := newTracker(t, Params{})
	var p Profile
	before := unsafe.Sizeof(p)
	for i := range 1_000_000 {
		ip := netip.AddrFrom4([4]byte{byte(i >> 16), byte(i >> 8), byte(i), 1})
		e := mkEvent(time.Duration(i)*time.Millisecond, ip.String(), fmt.Sprintf("/v1/e%d", i%5000),
			withASN(uint32(i%70000+1), string([]byte{'A' + byte(i%26), 'A' + byte(i/26%26)})),
			withUA(fmt.Sprintf("agent%d/1.0", i%3000)))
		o := step(tr, &p, e, true)
		for d := Dim(0); d < NumDims; d++ {
			if int(o.Distinct[d]) > TableSize(d) {
				t.Fatalf("event %d: %v remembers %d values, table holds %d", i, d, o.Distinct[d], TableSize(d))
			}
		}
	}
	if unsafe.Sizeof(p) != before {
		t.Fatal("profile size changed")
	}
	for d := Dim(0); d < NumDims; d++ {
		if int(p.occ[d]) != TableSize(d) {
			t.Errorf("%v: %d slots occupied, want %d (full)", d, p.occ[d], TableSize(d))
		}
	}
}

func TestFirstEvent(t *testing.T) {
	tr := newTracker(t, Params{})
	var p Profile
	o := step(tr, &p, mkEvent(0, "198.51.100.7", "/v1/me", withBytes(1000)), true)
	if !o.First || o.Events != 0 || o.Idle != 0 || o.Age != 0 || o.Skew != 0 {
		t.Fatalf("first observation: %+v", o)
	}
	if o.Reqs != 1 || o.Bytes != 1000 || o.Fails != 0 {
		t.Errorf("counters after first event: reqs %g bytes %g fails %g", o.Reqs, o.Bytes, o.Fails)
	}
	for d := Dim(0); d < NumDims; d++ {
		if o.Known[d] || o.Seen[d] {
			t.Errorf("%v known on the first event", d)
		}
	}
	if p.Events() != 1 || p.FirstSeen() != t0.UnixNano() || p.LastSeen() != t0.UnixNano() {
		t.Errorf("profile after first event: n=%d first=%d last=%d", p.Events(), p.FirstSeen(), p.LastSeen())
	}
	if o.Rate.N != 0 || math.IsNaN(o.Rate.Mean) || math.IsNaN(o.Rate.SD) {
		t.Errorf("rate baseline after first event: %+v", o.Rate)
	}
}

func TestDecay(t *testing.T) {
	for _, c := range []struct {
		name     string
		halfLife time.Duration
		gap      time.Duration
		want     float64 // share of the earlier failures left
	}{
		{"minutes", 30 * time.Minute, 30 * time.Minute, 0.5},
		{"minutes, two half-lives", 30 * time.Minute, time.Hour, 0.25},
		{"seconds", 30 * time.Minute, 10 * time.Second, math.Exp2(-10.0 / 1800)},
		{"hours", 6 * time.Hour, 18 * time.Hour, 0.125},
		{"days", 24 * time.Hour, 7 * 24 * time.Hour, math.Exp2(-7)},
		{"months", 30 * time.Minute, 90 * 24 * time.Hour, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newTracker(t, Params{HalfLife: c.halfLife})
			var p Profile
			for i := range 4 {
				step(tr, &p, mkEvent(time.Duration(i), "198.51.100.7", "/v1/me", withStatus(403), withBytes(1e6)), true)
			}
			o := step(tr, &p, mkEvent(c.gap, "198.51.100.7", "/v1/me"), true)
			// Four failures, decayed over the gap (the 3 ns between them are negligible).
			if got, want := o.Fails, 4*c.want; math.Abs(got-want) > 1e-6 {
				t.Errorf("fails = %g, want %g", got, want)
			}
			if got, want := o.Bytes, 4e6*c.want; math.Abs(got-want) > 1e-3*math.Max(1, want) {
				t.Errorf("bytes = %g, want %g", got, want)
			}
			if got, want := o.Reqs, 4*c.want+1; math.Abs(got-want) > 1e-5 {
				t.Errorf("reqs = %g, want %g", got, want)
			}
			if o.Idle != int64(c.gap)-3 {
				t.Errorf("idle = %v, want %v", time.Duration(o.Idle), c.gap)
			}
		})
	}
}

func TestOutOfOrderNeverMovesTimeBack(t *testing.T) {
	tr := newTracker(t, Params{})
	var p Profile
	step(tr, &p, mkEvent(time.Hour, "198.51.100.7", "/v1/me", withStatus(401)), true)
	o := step(tr, &p, mkEvent(0, "198.51.100.7", "/v1/me", withStatus(401)), true)
	if o.Skew != int64(time.Hour) || o.Idle != 0 || o.Now != t0.Add(time.Hour).UnixNano() {
		t.Fatalf("late event: skew %v idle %v now %v", time.Duration(o.Skew), time.Duration(o.Idle), o.Now)
	}
	if o.Fails != 2 { // no decay, no growth from negative elapsed time
		t.Errorf("fails = %g, want 2", o.Fails)
	}
	if p.LastSeen() != t0.Add(time.Hour).UnixNano() {
		t.Error("profile clock moved backwards")
	}
	// A far older event still yields finite numbers.
	o = step(tr, &p, mkEvent(-400*24*time.Hour, "198.51.100.7", "/v1/me", withBytes(5)), true)
	for _, x := range []float64{o.Reqs, o.Fails, o.Bytes, o.Rate.Mean, o.Rate.SD, o.Size.Mean, o.Size.SD} {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			t.Fatalf("non-finite or negative measurement after a late event: %+v", o)
		}
	}
}

func TestWindowForgets(t *testing.T) {
	tr := newTracker(t, Params{Window: 20 * time.Minute})
	var p Profile
	for i, ip := range []string{"198.51.100.1", "203.0.113.9", "192.0.2.44", "198.18.0.5"} {
		step(tr, &p, mkEvent(time.Duration(i)*time.Minute, ip, "/v1/me"), true)
	}
	var o Observation
	e := mkEvent(5*time.Minute, "100.64.0.1", "/v1/me")
	tr.Observe(&p, e, &o)
	if n, _ := o.Window(DimIP); n != 5 {
		t.Errorf("5 addresses within 5 minutes: window count %d", n)
	}
	if n, _ := o.Window(DimNet); n != 5 {
		t.Errorf("5 /24 networks within 5 minutes: window count %d", n)
	}
	tr.Learn(&p, e, &o, Trusted)
	// An hour later the earlier addresses are outside the window.
	tr.Observe(&p, mkEvent(65*time.Minute, "198.51.100.1", "/v1/me"), &o)
	if n, _ := o.Window(DimIP); n != 1 {
		t.Errorf("after the window: count %d, want 1", n)
	}
	if !o.Seen[DimIP] {
		t.Error("an address seen an hour ago is forgotten by the table")
	}
}

func TestEstablishNeedsTrustedUses(t *testing.T) {
	tr := newTracker(t, Params{Establish: 2})
	var p Profile
	attacker := func(i int) *event.Event {
		return mkEvent(time.Duration(i)*time.Second, "203.0.113.66", "/v1/export", withASN(14061, "NL"))
	}
	for i := range 10 { // ten requests, none allowed
		o := step(tr, &p, attacker(i), false)
		if o.Known[DimASN] || o.Known[DimIP] {
			t.Fatalf("untrusted request %d made the attacker's network known", i)
		}
	}
	step(tr, &p, attacker(10), true)
	if o := step(tr, &p, attacker(11), true); o.Known[DimASN] {
		t.Fatal("known after one trusted use")
	}
	// Observe reports what was known before the event: the third sees two.
	o := step(tr, &p, attacker(12), true)
	if !o.Known[DimASN] {
		t.Fatal("not known after two trusted uses")
	}
	if p.known[DimASN] != 1 || o.Established[DimASN] != 1 {
		t.Errorf("known count %d, established-before %d", p.known[DimASN], o.Established[DimASN])
	}
}

func TestEvictionKeepsEstablishedValues(t *testing.T) {
	tr := newTracker(t, Params{})
	var p Profile
	// The owner's home network, used for weeks.
	for i := range 200 {
		step(tr, &p, mkEvent(time.Duration(i)*2*time.Hour, "198.51.100.7", "/v1/me", withASN(64500, "DE")), true)
	}
	// Then a burst of one-off networks, more than the table holds.
	at := 400 * time.Hour
	for i := range 50 {
		ip := netip.AddrFrom4([4]byte{10, byte(i), 0, 1}).String()
		step(tr, &p, mkEvent(at+time.Duration(i)*time.Second, ip, "/v1/me", withASN(uint32(65000+i), "US")), false)
	}
	o := step(tr, &p, mkEvent(at+time.Hour, "198.51.100.7", "/v1/me", withASN(64500, "DE")), true)
	if !o.Known[DimNet] || !o.Known[DimASN] || !o.Known[DimCountry] {
		t.Errorf("the owner's established network was evicted by one-offs: %+v %+v", o.Known, o.Seen)
	}
}

func TestRateBaseline(t *testing.T) {
	tr := newTracker(t, Params{Bucket: time.Minute})
	var p Profile
	// 30 active minutes of 10 requests each, one every 2 minutes.
	for m := range 30 {
		for r := range 10 {
			step(tr, &p, mkEvent(time.Duration(2*m)*time.Minute+time.Duration(r)*time.Second, "198.51.100.7", "/v1/me", withBytes(2000)), true)
		}
	}
	var o Observation
	tr.Observe(&p, mkEvent(2*time.Hour, "198.51.100.7", "/v1/me", withBytes(2000)), &o)
	if got := o.Rate.Typical(); math.Abs(got-10) > 0.01 || o.Rate.N != 30 {
		t.Errorf("rate baseline: typical %.3f over %d buckets, want 10 over 30", got, o.Rate.N)
	}
	if got := o.Size.Typical(); math.Abs(got-2000) > 1 || o.Size.N != 300 {
		t.Errorf("size baseline: typical %.1f over %d, want 2000 over 300", got, o.Size.N)
	}
	if got := o.Volume.Typical(); math.Abs(got-20000) > 20 {
		t.Errorf("volume baseline: typical %.1f, want 20000", got)
	}
	if o.BucketReqs != 1 || !o.closing {
		t.Errorf("new bucket: reqs %g closing %v", o.BucketReqs, o.closing)
	}
	tr.Learn(&p, mkEvent(2*time.Hour, "198.51.100.7", "/v1/me", withBytes(2000)), &o, Trusted)

	// A bucket holding untrusted traffic is not learned; the clean 2h
	// bucket before it is.
	n := p.rate.n + 1
	for r := range 500 {
		step(tr, &p, mkEvent(3*time.Hour+time.Duration(r)*time.Millisecond, "203.0.113.66", "/v1/me", withBytes(9e6)), false)
	}
	step(tr, &p, mkEvent(4*time.Hour, "198.51.100.7", "/v1/me"), true)
	if p.rate.n != n {
		t.Errorf("tainted bucket learned: %d buckets, want %d", p.rate.n, n)
	}
	if got := math.Expm1(float64(p.vol.mean)); got > 1e5 {
		t.Errorf("volume baseline learned the attacker's 4.5 GB minute: %g", got)
	}
}

func TestGeoRemembered(t *testing.T) {
	tr := newTracker(t, Params{})
	var p Profile
	o := step(tr, &p, mkEvent(0, "198.51.100.7", "/v1/me", withGeo(52.52, 13.40)), true)
	if o.PrevGeo {
		t.Fatal("previous location on the first event")
	}
	o = step(tr, &p, mkEvent(time.Hour, "198.51.100.7", "/v1/me"), true)
	if !o.PrevGeo || math.Abs(o.PrevLat-52.52) > 1e-4 || o.GeoIdle != int64(time.Hour) {
		t.Errorf("previous location: %v %g %g %v", o.PrevGeo, o.PrevLat, o.PrevLon, time.Duration(o.GeoIdle))
	}
}

func TestIPv6NetworksAreSlash64(t *testing.T) {
	var k Keyer
	a := &event.Event{SourceIP: netip.MustParseAddr("2001:db8:1:2::1"), Endpoint: "/"}
	b := &event.Event{SourceIP: netip.MustParseAddr("2001:db8:1:2:ffff::9"), Endpoint: "/"}
	c := &event.Event{SourceIP: netip.MustParseAddr("2001:db8:1:3::1"), Endpoint: "/"}
	k.Fill(a)
	k.Fill(b)
	k.Fill(c)
	if a.Keys.V[DimNet] != b.Keys.V[DimNet] || a.Keys.V[DimNet] == c.Keys.V[DimNet] {
		t.Error("IPv6 addresses are not grouped by /64")
	}
	if a.Keys.V[DimIP] == b.Keys.V[DimIP] {
		t.Error("distinct IPv6 addresses share a key")
	}
	v4a := &event.Event{SourceIP: netip.MustParseAddr("198.51.100.1"), Endpoint: "/"}
	v4b := &event.Event{SourceIP: netip.MustParseAddr("198.51.100.254"), Endpoint: "/"}
	k.Fill(v4a)
	k.Fill(v4b)
	if v4a.Keys.V[DimNet] != v4b.Keys.V[DimNet] {
		t.Error("IPv4 addresses of one /24 differ")
	}
}

func TestMissingFieldsHaveNoKeys(t *testing.T) {
	var k Keyer
	e := &event.Event{SourceIP: netip.MustParseAddr("198.51.100.1"), Endpoint: "/v1/me"}
	k.Fill(e)
	for _, d := range []Dim{DimASN, DimCountry, DimAgent} {
		if e.Keys.V[d] != 0 {
			t.Errorf("%v has a key without a value", d)
		}
	}
	tr := newTracker(t, Params{})
	var p Profile
	var o Observation
	tr.Observe(&p, e, &o)
	if o.Present[DimASN] || o.Present[DimCountry] || o.Present[DimAgent] {
		t.Error("absent dimensions reported present")
	}
	if n, _ := o.Window(DimASN); n != 0 {
		t.Error("absent dimension has a window count")
	}
}

func TestAgentFamily(t *testing.T) {
	for _, c := range []struct{ ua, want string }{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "chrome/windows"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "chrome/windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "safari/macos"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "firefox/linux"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1", "chrome/ios"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0", "edge/windows"},
		{"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36", "chrome/android"},
		{"python-requests/2.31.0", "python-requests"},
		{"python-requests/2.32.3", "python-requests"},
		{"curl/8.4.0", "curl"},
		{"Go-http-client/1.1", "Go-http-client"},
		{"okhttp/4.12.0", "okhttp"},
		{"Salesforce-Integration (v2)", "Salesforce-Integration"},
		{"  ", "unknown"},
		{"/weird", "unknown"},
	} {
		if got := AgentFamily(c.ua); got != c.want {
			t.Errorf("AgentFamily(%q) = %q, want %q", c.ua, got, c.want)
		}
	}
}

func TestNewTrackerValidates(t *testing.T) {
	for _, p := range []Params{
		{HalfLife: time.Millisecond},
		{Window: time.Millisecond},
		{Window: 400 * 24 * time.Hour},
		{Bucket: time.Millisecond},
		{Learning: 1.5},
		{Learning: -0.1},
		{Establish: 300},
		{Establish: -1},
	} {
		if _, err := NewTracker(p); err == nil {
			t.Errorf("NewTracker(%+v) accepted", p)
		}
	}
	tr := newTracker(t, Params{})
	if tr.HalfLife() != DefaultHalfLife || tr.Window() != DefaultWindow || tr.Bucket() != DefaultBucket {
		t.Error("defaults not applied")
	}
}

// TestProbation: a value used on allowed requests that scored too high to
// learn from becomes known after uses on two different days, not sooner.
func TestProbation(t *testing.T) {
	tr := newTracker(t, Params{Establish: 2})
	var p Profile
	vpn := func(at time.Duration) *event.Event {
		return mkEvent(at, "146.70.107.9", "/v1/me", withASN(9009, "DE"))
	}
	learn := func(e *event.Event, trust Trust) Observation {
		var o Observation
		tr.Observe(&p, e, &o)
		tr.Learn(&p, e, &o, trust)
		return o
	}
	for i := range 50 { // fifty allowed uses on day one
		learn(vpn(time.Duration(i)*time.Minute), Allowed)
	}
	if o := learn(vpn(5*time.Hour), Allowed); o.Known[DimASN] {
		t.Fatal("known after one day of allowed uses")
	}
	learn(vpn(30*time.Hour), Allowed) // day two
	if o := learn(vpn(31*time.Hour), Allowed); !o.Known[DimASN] {
		t.Fatal("not known after allowed uses on two days")
	}
	// Untrusted uses never count.
	var q Profile
	for d := range 5 {
		e := vpn(time.Duration(d) * 24 * time.Hour)
		var o Observation
		tr.Observe(&q, e, &o)
		if o.Known[DimASN] {
			t.Fatal("untrusted uses established a value")
		}
		tr.Learn(&q, e, &o, Untrusted)
	}
}

// TestHostingClassLearnedOnProbation: a hosting provider's network that
// becomes known through probation (a VPN's exit provider) makes the
// credential one that uses hosting networks, as a trusted use would.
func TestHostingClassLearnedOnProbation(t *testing.T) {
	tr := newTracker(t, Params{Establish: 2})
	var p Profile
	learn := func(at time.Duration, trust Trust) Observation {
		e := mkEvent(at, "146.70.107.9", "/v1/me", withASN(9009, "DE"))
		e.Keys.Hosting = true
		var o Observation
		tr.Observe(&p, e, &o)
		tr.Learn(&p, e, &o, trust)
		return o
	}
	learn(0, Allowed)
	if o := learn(time.Hour, Allowed); o.HostingKnown {
		t.Fatal("hosting use known after one day of probation")
	}
	learn(25*time.Hour, Allowed)
	if o := learn(26*time.Hour, Allowed); !o.HostingKnown {
		t.Fatal("hosting use not known once the hosting network is established")
	}
}
