package investigate_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/config"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/internal/app"
	"github.com/vigil-sec/vigil/investigate"
	"github.com/vigil-sec/vigil/policy"
)

// The story: three credentials used normally for five working days, each
// from its own network; on the sixth night tk_victim is used from a
// hosting provider's network in Singapore that downloads exports, probes
// an endpoint whose name carries markup and a terminal escape, while its
// owner goes on working the next morning.
var (
	storyStart  = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday
	attackStart = time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)
	ownerNet    = netip.MustParseAddr("198.51.100.10")
	thiefNet    = netip.MustParseAddr("203.0.113.50")
)

// hostileEndpoint is a value a log could carry to attack whoever reads
// the report: markup for the HTML, an escape sequence for the terminal.
const hostileEndpoint = "/v1/<script>alert(1)</script>\x1b[2J"

type owner struct {
	token, client, agent string
	ip                   netip.Addr
	asn                  uint32
	country              string
	endpoints            []string
}

var owners = []owner{
	{"tk_victim", "billing-sync", "BillingSync/2.1", ownerNet, 64500, "DE",
		[]string{"/v1/invoices", "/v1/invoices/{id}", "/v1/customers/{id}"}},
	{"tk_reports", "", "ReportBot/1.0", netip.MustParseAddr("192.0.2.20"), 64501, "US",
		[]string{"/v1/reports", "/v1/reports/{id}"}},
	{"tk_mobile", "acme-ios", "AcmeApp/5.2 (iPhone; iOS 19.1)", netip.MustParseAddr("100.64.7.9"), 64502, "FR",
		[]string{"/v1/me", "/v1/orders", "/v1/orders/{id}"}},
}

func ev(t time.Time, o owner, ip netip.Addr, asn uint32, country, endpoint, agent string, status int, bytes int64) event.Event {
	e := event.Event{
		Time: t.UnixNano(), TokenID: o.token, SourceIP: ip, Endpoint: endpoint, Status: status,
		PayloadBytes: bytes, UserAgent: agent, Country: country, ASN: asn, Method: "GET",
		Has: event.HasPayloadBytes | event.HasUserAgent | event.HasCountry | event.HasASN | event.HasMethod,
	}
	if o.client != "" {
		e.ClientID, e.Has = o.client, e.Has|event.HasClientID
	}
	return e
}

// storyEvents returns the story's events in time order.
func storyEvents() []event.Event {
	var evs []event.Event
	for day := range 5 {
		for k := range 30 { // 08:00 to 17:40, every 20 minutes
			for i, o := range owners {
				t := storyStart.Add(time.Duration(day)*24*time.Hour + 8*time.Hour + time.Duration(k)*20*time.Minute + time.Duration(i)*time.Minute)
				status := 200
				if (day*30+k)%37 == 5 {
					status = 404
				}
				evs = append(evs, ev(t, o, o.ip, o.asn, o.country, o.endpoints[k%len(o.endpoints)], o.agent, status, int64(1200+(k*97+i*31)%2800)))
			}
		}
	}
	v := owners[0]
	const thief = "python-requests/2.31.0"
	for k := range 24 { // every 20 s for 8 minutes
		t := attackStart.Add(time.Duration(k) * 20 * time.Second)
		switch {
		case k == 9:
			evs = append(evs, ev(t, v, thiefNet, 14061, "SG", hostileEndpoint, thief, 404, 120))
		case k%3 == 0:
			evs = append(evs, ev(t, v, thiefNet, 14061, "SG", "/v1/customers/{id}", thief, 200, 3400))
		default:
			evs = append(evs, ev(t, v, thiefNet, 14061, "SG", "/v1/exports/{id}", thief, 200, int64(5_000_000+k*131_072)))
		}
	}
	// The owner, the next morning, as every day.
	for k := range 3 {
		t := attackStart.Add(6*time.Hour + time.Duration(k)*20*time.Minute)
		evs = append(evs, ev(t, v, v.ip, v.asn, v.country, v.endpoints[k], v.agent, 200, 2100))
	}
	slices.SortStableFunc(evs, func(a, b event.Event) int { return int(a.Time - b.Time) })
	return evs
}

// judge runs the default configuration's engine over evs.
func judge(t testing.TB, evs []event.Event) (*app.Parts, []engine.Verdict) {
	t.Helper()
	parts, err := app.Build(config.Default(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	eng, err := parts.NewEngine()
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	vs := make([]engine.Verdict, len(evs))
	eng.ProcessBatch(evs, vs)
	return parts, vs
}

// investigateStory returns the story's report.
func investigateStory(t testing.TB, o investigate.Options) investigate.Report {
	t.Helper()
	evs := storyEvents()
	parts, vs := judge(t, evs)
	if o.Model == nil {
		o.Model, o.Thresholds = parts.Model, parts.Ladder
	}
	c := investigate.NewCollector(o)
	for i := range evs {
		c.Observe(&evs[i], &vs[i])
	}
	return c.Report()
}

func TestStory(t *testing.T) {
	r := investigateStory(t, investigate.Options{})
	if len(r.Credentials) != 1 {
		for _, c := range r.Credentials {
			t.Logf("%s peak %v at %v", c.TokenID, c.Peak.Risk, c.Peak.Time)
		}
		t.Fatalf("%d suspicious credentials, want only tk_victim", len(r.Credentials))
	}
	c := r.Credentials[0]
	if c.TokenID != "tk_victim" || c.ClientID != "billing-sync" {
		t.Fatalf("suspect %s (client %s), want tk_victim", c.TokenID, c.ClientID)
	}
	if !c.Deviation.Time.Equal(attackStart) {
		t.Errorf("first deviation at %v, want the first request of the thief at %v", c.Deviation.Time, attackStart)
	}
	if c.Deviation.IP != thiefNet || c.Deviation.EventsBefore != 150 {
		t.Errorf("deviation from %v after %d events, want %v after 150", c.Deviation.IP, c.Deviation.EventsBefore, thiefNet)
	}
	if r.MinLevel != policy.Throttle || r.Events != int64(len(storyEvents())) {
		t.Errorf("min level %v, %d events", r.MinLevel, r.Events)
	}

	want := map[string]struct{ during, before string }{
		"address": {"203.0.113.50", "198.51.100.10"},
		"ASN":     {"AS14061", "AS64500"},
		"country": {"SG", "DE"},
	}
	for _, o := range c.Origins {
		w := want[o.Kind]
		if len(o.During) != 1 || o.During[0].Value != w.during || !o.During[0].New {
			t.Errorf("%s of the suspicious events: %+v, want %s, new", o.Kind, o.During, w.during)
		}
		if len(o.Before) != 1 || o.Before[0].Value != w.before || o.Before[0].Events != 150 {
			t.Errorf("%s before the deviation: %+v, want %s 150 times", o.Kind, o.Before, w.before)
		}
	}

	eps := map[string]investigate.EndpointUse{}
	for _, u := range c.Activity.Endpoints {
		eps[u.Endpoint] = u
	}
	if u := eps["/v1/exports/{id}"]; !u.New || u.Events != 16 || u.Bytes < 16*5_000_000 {
		t.Errorf("/v1/exports/{id}: %+v, want new, 16 events, over 80 MB", u)
	}
	if u := eps["/v1/customers/{id}"]; u.New || u.Events != 7+1 || u.Suspicious != 7 {
		t.Errorf("/v1/customers/{id}: %+v, want known, 7 events of the thief and 1 of the owner", u)
	}
	if u := eps[hostileEndpoint]; !u.New || u.Errors != 1 {
		t.Errorf("hostile endpoint: %+v", u)
	}
	a := c.Activity
	if a.Events != 27 || a.Status4xx != 1 || a.AuthFailures != 0 || a.Suspicious != c.Suspicious {
		t.Errorf("activity %+v, suspicious events %d", a, c.Suspicious)
	}
	var signals []string
	for _, x := range c.Reasons {
		signals = append(signals, x.Signal)
		if x.Example == "" {
			t.Errorf("reason %s without an example", x.Signal)
		}
	}
	if !slices.Contains(signals, "new_network") {
		t.Errorf("reasons %v, want new_network among them", signals)
	}
	if r.Others.Credentials != 2 || c.Suspicious == 0 || int64(len(c.Timeline)) != c.Suspicious {
		t.Errorf("others %+v; timeline %d of %d", r.Others, len(c.Timeline), c.Suspicious)
	}
	// 150 events before the deviation fit in 32 points; the 27 since then
	// are all there.
	var before, since int
	for _, p := range c.Series {
		if p.Time.Before(attackStart) {
			before++
		} else {
			since++
		}
	}
	if before > 32 || since != 27 {
		t.Errorf("series of %d points before the deviation and %d since, want ≤ 32 and 27", before, since)
	}
}

// TestMinLevel: with block as the bar, the deviation is the first block.
func TestMinLevel(t *testing.T) {
	r := investigateStory(t, investigate.Options{MinLevel: policy.Block})
	for _, c := range r.Credentials {
		if c.Deviation.Level != policy.Block {
			t.Errorf("%s deviated at %v", c.TokenID, c.Deviation.Level)
		}
		for _, e := range c.Timeline {
			if e.Level != policy.Block {
				t.Errorf("timeline entry at %v", e.Level)
			}
		}
	}
}
