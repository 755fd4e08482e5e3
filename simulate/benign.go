package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Helpers for schedules. Times of day are in the owner's zone.

// days calls f with the local midnight of every day that overlaps
// [start, end).
func days(start, end time.Time, zone *time.Location, f func(day time.Time)) {
	s := start.In(zone)
	for d := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, zone); d.Before(end); d = d.AddDate(0, 0, 1) {
		f(d)
	}
}

// clock returns the time h hours after the local midnight day.
func clock(day time.Time, h float64) time.Time {
	return day.Add(time.Duration(h * float64(time.Hour)))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func weekday(day time.Time) bool {
	return day.Weekday() != time.Saturday && day.Weekday() != time.Sunday
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// pause draws an exponential think time with the given mean, clamped.
func pause(r *rand.Rand, mean, lo, hi float64) time.Duration {
	return seconds(min(hi, max(lo, r.ExpFloat64()*mean)))
}

func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// lease gives a subscriber's address on a network at time t: one address
// for the whole run, or a new one every Lease.
type lease struct {
	net   *Network
	phase time.Duration
	addrs map[int64]netip.Addr
}

func newLease(r *rand.Rand, n *Network) *lease {
	l := &lease{net: n, addrs: make(map[int64]netip.Addr)}
	if n.Lease > 0 {
		l.phase = time.Duration(r.Int64N(int64(n.Lease)))
	}
	return l
}

func (l *lease) at(r *rand.Rand, t time.Time) netip.Addr {
	var k int64
	if l.net.Lease > 0 {
		k = int64(t.Add(l.phase).Sub(time.Unix(0, 0)) / l.net.Lease)
	}
	a, ok := l.addrs[k]
	if !ok {
		a = l.net.Addr(r)
		l.addrs[k] = a
	}
	return a
}

// statusFor returns an occasional error for an owner's request: a 404 for
// an object deleted meanwhile, or a transient 503.
func statusFor(r *rand.Rand, ep *Endpoint) int {
	x := r.Float64()
	switch {
	case ep.Kind == Detail && x < 0.006:
		return 404
	case x > 0.998:
		return 503
	}
	return 0
}

// ---------------------------------------------------------------------------

// browserUser is a person using the web app: from the office network on
// working days, from home some mornings and evenings, pages that load a
// few API calls each.
type browserUser struct{}

type browserState struct {
	home        *lease
	office      *Network
	officeAddrs []netip.Addr
	agent       string // printf template with the browser's major version
	version     int
	upgrade     float64 // fraction of the run after which the browser updates; > 1 never
}

var browserAgents = []string{
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%[1]d.0.0.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:%d.0) Gecko/20100101 Firefox/%[1]d.0",
}

func (browserUser) Name() string { return "browser" }

func (browserUser) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	home := pick(r, loc.Residential)
	st := &browserState{home: newLease(r, home), office: loc.Office,
		agent: pick(r, browserAgents), version: 133 + r.IntN(3), upgrade: uniform(r, 0.2, 2)}
	for range 2 + r.IntN(3) {
		st.officeAddrs = append(st.officeAddrs, loc.Office.Addr(r))
	}
	a := w.api
	return &Credential{
		TokenID:   tokenID(r),
		ClientID:  "acme-web",
		UserAgent: fmt.Sprintf(st.agent, st.version),
		Locale:    loc,
		Endpoints: []*Endpoint{a.me, a.notifications, a.accounts, a.account, a.contacts, a.contact,
			a.contactUpdate, a.opportunities, a.opportunity, a.cases, a.caseComment, a.search},
		Networks: []*Network{loc.Office, home},
		Summary: fmt.Sprintf("sales rep in %s on the web app: office (%s) on working days, home (%s) some mornings and evenings",
			loc.City, loc.Office.Label(), home.Label()),
		State: st,
	}
}

func (b browserUser) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st := e.r, c.State.(*browserState)
	upgradeAt := start.Add(time.Duration(st.upgrade * float64(end.Sub(start))))
	days(start, end, c.Locale.Zone, func(day time.Time) {
		for _, s := range dayPlan(r, day) {
			net, addr := st.office, pick(r, st.officeAddrs)
			if !s.office {
				net, addr = st.home.net, st.home.at(r, s.from)
			}
			ua := c.UserAgent
			if !s.from.Before(upgradeAt) {
				ua = fmt.Sprintf(st.agent, st.version+1)
			}
			b.session(e, c, s.from, s.to, net, addr, ua)
		}
	})
}

// slot is a sitting in front of the web app, at the office or elsewhere.
type slot struct {
	from, to time.Time
	office   bool
}

// dayPlan is an office worker's day: maybe a look at home before work,
// sittings at the office between meetings, maybe one in the evening; on
// weekends, now and then a short one.
func dayPlan(r *rand.Rand, day time.Time) []slot {
	var plan []slot
	if weekday(day) {
		if r.Float64() < 0.35 {
			t := clock(day, uniform(r, 7, 8.2))
			plan = append(plan, slot{t, t.Add(minutes(uniform(r, 5, 20))), false})
		}
		t, leave := clock(day, uniform(r, 8.5, 9.75)), clock(day, uniform(r, 17, 18.75))
		for t.Before(leave) {
			to := t.Add(minutes(uniform(r, 20, 75)))
			plan = append(plan, slot{t, earliest(to, leave), true})
			t = to.Add(minutes(uniform(r, 10, 50)))
		}
		if r.Float64() < 0.45 {
			t := clock(day, uniform(r, 19.5, 22))
			plan = append(plan, slot{t, t.Add(minutes(uniform(r, 5, 30))), false})
		}
	} else if r.Float64() < 0.3 {
		t := clock(day, uniform(r, 10, 20))
		plan = append(plan, slot{t, t.Add(minutes(uniform(r, 5, 25))), false})
	}
	return plan
}

// session is one sitting in front of the app: a dashboard first, then
// pages picked by habit, a think time between pages.
func (browserUser) session(e *Emitter, c *Credential, t, to time.Time, net *Network, addr netip.Addr, ua string) {
	r, a := e.r, e.w.api
	call := func(t time.Time, ep *Endpoint, query string) time.Time {
		return e.Emit(Request{At: t, Net: net, Addr: addr, Endpoint: ep, Query: query, Status: statusFor(r, ep), UserAgent: ua})
	}
	// A page's calls go out together; the page is done when the slowest is.
	page := func(t time.Time, eps []*Endpoint, queries ...string) time.Time {
		done := t
		for i, ep := range eps {
			q := ""
			if i < len(queries) {
				q = queries[i]
			}
			done = latest(done, call(t.Add(time.Duration(r.IntN(40))*time.Millisecond), ep, q))
		}
		return done
	}
	first := true
	for t.Before(to) {
		var done time.Time
		switch x := r.Float64(); {
		case first || x < 0.08:
			done = page(t, []*Endpoint{a.me, a.notifications, a.opportunities, a.cases}, "", "", "?owner=me&limit=25", "?status=open&limit=25")
		case x < 0.38:
			done = page(t, []*Endpoint{a.account, a.contacts, a.opportunities}, "", "?account=current&limit=25", "?account=current&limit=25")
		case x < 0.66:
			done = page(t, []*Endpoint{a.contact})
		case x < 0.76:
			done = page(t, []*Endpoint{a.opportunity})
		case x < 0.88:
			done = page(t, []*Endpoint{a.search}, "?q=term&limit=20")
		case x < 0.94:
			done = page(t, []*Endpoint{pick(r, []*Endpoint{a.contacts, a.accounts})}, fmt.Sprintf("?limit=50&page=%d", 1+r.IntN(4)))
		case x < 0.985:
			done = call(t, a.contactUpdate, "")
			done = call(done.Add(seconds(uniform(r, 0.05, 0.3))), a.contact, "")
		default:
			done = call(t, a.caseComment, "")
		}
		first = false
		t = done.Add(pause(r, 35, 3, 300))
	}
}

// ---------------------------------------------------------------------------

// mobileApp is the phone app: short sessions all day, over the carrier's
// network (a new address from its NAT pool each session) or home Wi-Fi.
type mobileApp struct{}

type mobileState struct {
	carrier *Network
	home    *lease
}

func (mobileApp) Name() string { return "mobile" }

func (mobileApp) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	carrier, home := pick(r, loc.Mobile), pick(r, loc.Residential)
	client, ua := "acme-ios", "AcmeCRM/5.12.0 CFNetwork/1494.0.7 Darwin/23.4.0"
	if r.IntN(2) == 0 {
		client, ua = "acme-android", "AcmeCRM-Android/5.12.0 okhttp/4.12.0"
	}
	a := w.api
	return &Credential{
		TokenID:   tokenID(r),
		ClientID:  client,
		UserAgent: ua,
		Locale:    loc,
		Endpoints: []*Endpoint{a.me, a.notifications, a.contacts, a.contact, a.account, a.search, a.activities, a.contactUpdate},
		Networks:  []*Network{carrier, home},
		Summary: fmt.Sprintf("field rep in %s on the phone app: %s (a new address from its NAT pool each session) or home Wi-Fi (%s)",
			loc.City, carrier.Label(), home.Label()),
		State: &mobileState{carrier: carrier, home: newLease(r, home)},
	}
}

func (m mobileApp) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st := e.r, c.State.(*mobileState)
	days(start, end, c.Locale.Zone, func(day time.Time) {
		n := 3 + r.IntN(6)
		if weekday(day) {
			n = 8 + r.IntN(9)
		}
		hours := make([]float64, n)
		for i := range hours {
			hours[i] = uniform(r, 7, 23.5)
		}
		slices.Sort(hours)
		next := day
		for _, h := range hours {
			t := latest(clock(day, h), next)
			pWiFi := 0.1
			if h < 8.5 || h > 18.5 { // likely at home
				pWiFi = 0.6
			}
			wifi := r.Float64() < pWiFi
			net, addr := st.carrier, st.carrier.Addr(r) // CGNAT: a new address each session
			if wifi {
				net, addr = st.home.net, st.home.at(r, t)
			}
			next = m.session(e, t, net, addr).Add(time.Minute)
		}
	})
}

func (mobileApp) session(e *Emitter, t time.Time, net *Network, addr netip.Addr) time.Time {
	r, a := e.r, e.w.api
	call := func(t time.Time, ep *Endpoint, query string) time.Time {
		return e.Emit(Request{At: t, Net: net, Addr: addr, Endpoint: ep, Query: query, Status: statusFor(r, ep)})
	}
	done := latest(call(t, a.me, ""), call(t.Add(15*time.Millisecond), a.notifications, "?unread=true"))
	for range 2 + r.IntN(14) {
		t = done.Add(pause(r, 9, 1, 60))
		switch x := r.Float64(); {
		case x < 0.4:
			done = call(t, a.contact, "")
		case x < 0.55:
			done = call(t, a.search, "?q=term&limit=10")
		case x < 0.7:
			done = call(t, a.contacts, "?recent=true&limit=20")
		case x < 0.82:
			done = call(t, a.account, "")
		case x < 0.95:
			done = call(t, a.activities, "")
		default:
			done = call(t, a.contactUpdate, "")
		}
	}
	return done
}

// ---------------------------------------------------------------------------

// nightlyETL is a service account that copies the CRM into a warehouse
// every night: one cloud address, a few hundred export pages of a megabyte
// or more, one after another.
type nightlyETL struct{}

type etlState struct {
	net   *Network
	addr  netip.Addr
	hour  float64 // local start time of the job
	pages [3]float64
}

func (nightlyETL) Name() string { return "etl" }

func (nightlyETL) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	a := w.api
	st := &etlState{net: loc.Cloud, addr: loc.Cloud.Addr(r), hour: 2 + float64(r.IntN(4))*0.25,
		pages: [3]float64{uniform(r, 40, 60), uniform(r, 110, 170), uniform(r, 30, 50)}}
	return &Credential{
		TokenID:   tokenID(r),
		ClientID:  "warehouse-etl",
		UserAgent: "python-requests/2.31.0",
		Locale:    loc,
		Endpoints: []*Endpoint{a.me, a.exportAccounts, a.exportContacts, a.exportOpportunities},
		Networks:  []*Network{loc.Cloud},
		Summary: fmt.Sprintf("service account of the data warehouse: nightly export job at %02d:%02d local from one address in %s",
			int(st.hour), int(st.hour*60)%60, loc.Cloud.Label()),
		State: st,
	}
}

func (nightlyETL) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st, a := e.r, c.State.(*etlState), e.w.api
	night := 0
	days(start, end, c.Locale.Zone, func(day time.Time) {
		t := clock(day, st.hour).Add(seconds(uniform(r, 0, 90))) // cron plus start-up
		call := func(t time.Time, ep *Endpoint, query string) time.Time {
			for {
				status := 0
				if r.Float64() < 0.004 {
					status = 503
				}
				done := e.Emit(Request{At: t, Net: st.net, Addr: st.addr, Endpoint: ep, Query: query, Status: status})
				if status == 0 {
					return done
				}
				t = done.Add(seconds(uniform(r, 2, 6))) // retry with back-off
			}
		}
		t = call(t, a.me, "")
		for i, ep := range []*Endpoint{a.exportAccounts, a.exportContacts, a.exportOpportunities} {
			pages := int(st.pages[i] * (1 + 0.005*float64(night)))
			for p := 1; p <= pages; p++ {
				t = call(t.Add(seconds(uniform(r, 0.03, 0.2))), ep, fmt.Sprintf("?page=%d&page_size=5000", p))
			}
		}
		night++
	})
}

// ---------------------------------------------------------------------------

// pollingIntegration is a third-party integration (a chat or marketing
// tool) with an OAuth grant: it polls the change feed every minute around
// the clock from its cloud region, fetches what changed and writes a few
// activities back.
type pollingIntegration struct{}

type pollState struct {
	net    *Network
	addrs  []netip.Addr // NAT gateways, one per availability zone
	period time.Duration
	zone   *time.Location // the customer's, which drives how much changes
}

func (pollingIntegration) Name() string { return "poller" }

func (pollingIntegration) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	vendor := w.nets.get("AWS us-east-1", "US")
	st := &pollState{net: vendor, period: time.Duration(45+r.IntN(4)*15) * time.Second, zone: loc.Zone}
	for range 2 + r.IntN(2) {
		st.addrs = append(st.addrs, vendor.Addr(r))
	}
	a := w.api
	return &Credential{
		TokenID:   tokenID(r),
		ClientID:  "chatsync",
		UserAgent: "ChatSync/3.4.1 (+https://chatsync.example/bot)",
		Locale:    loc,
		Endpoints: []*Endpoint{a.changes, a.contact, a.account, a.activities},
		Networks:  []*Network{vendor},
		Summary: fmt.Sprintf("chat integration's OAuth grant: polls /v1/changes every %d s around the clock from %s (%d NAT addresses)",
			int(st.period.Seconds()), vendor.Label(), len(st.addrs)),
		State: st,
	}
}

func (pollingIntegration) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st, a := e.r, c.State.(*pollState), e.w.api
	cursor := 1_700_000 + r.IntN(100_000)
	for t := start.Add(seconds(uniform(r, 0, st.period.Seconds()))); t.Before(end); {
		addr := pick(r, st.addrs)
		call := func(t time.Time, ep *Endpoint, query string) time.Time {
			return e.Emit(Request{At: t, Net: st.net, Addr: addr, Endpoint: ep, Query: query, Status: statusFor(r, ep)})
		}
		local := t.In(st.zone)
		lambda := 0.08
		if weekday(local) && local.Hour() >= 8 && local.Hour() < 18 {
			lambda = 1.1
		}
		changed := poisson(r, lambda)
		done := e.Emit(Request{At: t, Net: st.net, Addr: addr, Endpoint: a.changes,
			Query: fmt.Sprintf("?since=%d&limit=100", cursor), Bytes: int64(180 + changed*420 + r.IntN(60))})
		cursor += changed
		for range changed {
			ep := a.contact
			if r.Float64() < 0.3 {
				ep = a.account
			}
			done = call(done.Add(seconds(uniform(r, 0.02, 0.15))), ep, "")
			if r.Float64() < 0.15 {
				done = call(done.Add(seconds(uniform(r, 0.02, 0.1))), a.activities, "")
			}
		}
		t = t.Add(st.period + seconds(r.NormFloat64()*1.5))
	}
}
