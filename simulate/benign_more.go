package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// The benign archetypes below are the ones that trip naive rules: many
// addresses, many endpoints, impossible travel, hosting networks, bursts,
// machine-like regularity. All of it is how these owners normally work.

// ---------------------------------------------------------------------------

// ciRunner is the API key of an integration-test suite run by CI: every
// push starts a run of one to four parallel shards, each on a fresh runner
// VM from a cloud provider's pool (a new address every time, in several
// regions), each calling dozens of endpoints within a minute or two,
// including administrative ones and deliberate 404s and 422s. A nightly
// run exercises everything.
type ciRunner struct{}

type ciState struct {
	pools   []*Network
	suite   []*Endpoint
	perDay  float64 // mean runs per working day
	nightly float64 // UTC hour of the nightly run
}

func (ciRunner) Name() string { return "ci" }

func (ciRunner) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	a := w.api
	st := &ciState{
		pools: []*Network{w.nets.get("Azure East US", "US"), w.nets.get("Azure West US 2", "US"),
			w.nets.get("Azure Central US", "US")},
		perDay:  uniform(r, 6, 22),
		nightly: 1 + float64(r.IntN(8))*0.25,
	}
	for _, ep := range a.all {
		if ep.Kind != Admin || ep.Method == "GET" && r.Float64() < 0.5 {
			st.suite = append(st.suite, ep)
		}
	}
	return &Credential{
		TokenID:   tokenID(r),
		UserAgent: "Go-http-client/2.0",
		Locale:    loc,
		Endpoints: st.suite,
		Networks:  st.pools,
		Summary: fmt.Sprintf("API key of the integration tests in CI: ~%.0f runs a working day plus a nightly one, 1–4 shards each on a fresh runner from Azure's pool, %d endpoints in a burst",
			st.perDay, len(st.suite)),
		State: st,
	}
}

func (ci ciRunner) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st := e.r, c.State.(*ciState)
	e.fresh = 0.7 // tests create their fixtures
	days(start, end, c.Locale.Zone, func(day time.Time) {
		n := poisson(r, 0.7)
		if weekday(day) {
			n = poisson(r, st.perDay)
		}
		for range n {
			ci.run(e, c, clock(day, uniform(r, 8.5, 19.5)), 1+r.IntN(4))
		}
		utc := day.UTC()
		ci.run(e, c, clock(time.Date(utc.Year(), utc.Month(), utc.Day(), 0, 0, 0, 0, time.UTC), st.nightly), 4)
	})
}

// run is one pipeline run: shards start together, each on its own runner.
func (ciRunner) run(e *Emitter, c *Credential, t time.Time, shards int) {
	r, st := e.r, c.State.(*ciState)
	for range shards {
		net := pick(r, st.pools)
		addr := net.Addr(r)
		tt := t.Add(seconds(uniform(r, 25, 120))) // boot, checkout, build
		for _, ep := range shuffled(r, st.suite)[:min(len(st.suite), 12+r.IntN(20))] {
			status := 0
			switch x := r.Float64(); {
			case ep.Kind == Detail && x < 0.08:
				status = 404 // "returns 404 for a deleted object"
			case ep.Kind == Write && x < 0.1:
				status = 422 // "rejects an invalid body"
			case x > 0.998:
				status = 503
			}
			q := Request{At: tt, Net: net, Addr: addr, Endpoint: ep, Status: status}
			if ep.Kind == List || ep.Kind == Export {
				q.Query = "?limit=10"
			}
			tt = e.Emit(q).Add(seconds(uniform(r, 0.02, 0.4)))
		}
	}
}

// ---------------------------------------------------------------------------

// multiRegion is a customer-support platform's backend, deployed in three
// cloud regions on three continents, each calling the API for its own
// users at the same time: requests from Virginia, Dublin and Singapore
// within the same second, each region busy in its own daytime.
type multiRegion struct{}

type region struct {
	net   *Network
	addrs []netip.Addr
	zone  *time.Location
}

type multiState struct {
	regions []region
	peak    float64 // tickets a minute per region at its busiest
}

func (multiRegion) Name() string { return "multiregion" }

func (multiRegion) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	st := &multiState{peak: uniform(r, 0.25, 0.6)}
	for _, x := range []struct {
		name, country string
		offset        int
	}{{"AWS us-east-1", "US", -5}, {"AWS eu-west-1", "IE", 0}, {"AWS ap-southeast-1", "SG", 8}} {
		g := region{net: w.nets.get(x.name, x.country), zone: time.FixedZone(x.country, x.offset*3600)}
		for range 2 + r.IntN(2) {
			g.addrs = append(g.addrs, g.net.Addr(r))
		}
		st.regions = append(st.regions, g)
	}
	a := w.api
	nets := make([]*Network, len(st.regions))
	for i, g := range st.regions {
		nets[i] = g.net
	}
	return &Credential{
		TokenID:   tokenID(r),
		ClientID:  "supportdesk",
		UserAgent: "SupportDesk/2.7.3 (+https://supportdesk.example)",
		Locale:    loc,
		Endpoints: []*Endpoint{a.me, a.search, a.contact, a.contacts, a.account, a.cases, a.caseComment, a.contactUpdate},
		Networks:  nets,
		Summary: fmt.Sprintf("support platform's OAuth grant, its backend in three regions at once (%s, %s, %s), each busy in its own daytime",
			nets[0].Label(), nets[1].Label(), nets[2].Label()),
		State: st,
	}
}

func (multiRegion) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st, a := e.r, c.State.(*multiState), e.w.api
	for _, g := range st.regions {
		// A Poisson process at the peak rate, thinned by the region's hour.
		for t := start.Add(pause(r, 60/st.peak, 0, 1e6)); t.Before(end); t = t.Add(pause(r, 60/st.peak, 0.2, 1e6)) {
			local := t.In(g.zone)
			busy := 0.08
			if h := local.Hour(); h >= 8 && h < 20 {
				busy = 1
				if !weekday(local) {
					busy = 0.3
				}
			}
			if r.Float64() >= busy {
				continue
			}
			addr := pick(r, g.addrs)
			call := func(t time.Time, ep *Endpoint, query string) time.Time {
				return e.Emit(Request{At: t, Net: g.net, Addr: addr, Endpoint: ep, Query: query, Status: statusFor(r, ep)})
			}
			// A ticket: find the customer, read them, maybe note the case.
			done := t
			if r.Float64() < 0.5 {
				done = call(done, a.search, "?q=email&limit=5")
			}
			done = call(done.Add(seconds(uniform(r, 0.01, 0.1))), a.contact, "")
			switch x := r.Float64(); {
			case x < 0.3:
				done = call(done.Add(seconds(uniform(r, 0.01, 0.1))), a.cases, "?contact=current&limit=10")
			case x < 0.45:
				done = call(done.Add(seconds(uniform(r, 0.01, 0.1))), a.account, "")
			}
			if r.Float64() < 0.25 {
				call(done.Add(seconds(uniform(r, 20, 600))), a.caseComment, "")
			}
		}
	}
}

// ---------------------------------------------------------------------------

// healthCheck is an uptime monitor's API key: every probe location calls
// /healthz (and now and then an authenticated /v1/me) on a fixed period,
// day and night, so the key makes a request every few seconds from
// several hosting networks in several countries.
type healthCheck struct{}

type probe struct {
	net   *Network
	addrs []netip.Addr
}

type healthState struct {
	probes []probe
	period time.Duration
}

func (healthCheck) Name() string { return "healthcheck" }

func (healthCheck) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	loc := pick(r, w.locales)
	sites := []*Network{w.nets.get("AWS us-east-1", "US"), w.nets.get("AWS eu-central-1", "DE"),
		w.nets.get("DigitalOcean SGP1", "SG"), w.nets.get("DigitalOcean AMS3", "NL"),
		w.nets.get("Google Cloud us-central1", "US"), w.nets.get("AWS eu-west-1", "IE")}
	st := &healthState{period: pick(r, []time.Duration{60, 90, 120, 120}) * time.Second}
	for _, net := range shuffled(r, sites)[:3+r.IntN(2)] {
		p := probe{net: net}
		for range 1 + r.IntN(2) {
			p.addrs = append(p.addrs, net.Addr(r))
		}
		st.probes = append(st.probes, p)
	}
	a := w.api
	nets := make([]*Network, len(st.probes))
	for i, p := range st.probes {
		nets[i] = p.net
	}
	return &Credential{
		TokenID:   tokenID(r),
		UserAgent: "UptimeMonitor/2.0 (+https://uptime.example/bot)",
		Locale:    loc,
		Endpoints: []*Endpoint{a.health, a.me},
		Networks:  nets,
		Summary: fmt.Sprintf("uptime monitor's API key: /healthz every %v from each of %d probe locations, day and night",
			st.period, len(st.probes)),
		State: st,
	}
}

func (healthCheck) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st, a := e.r, c.State.(*healthState), e.w.api
	// Incidents: a few minutes of 503s that every probe sees.
	var down [][2]time.Time
	for range poisson(r, end.Sub(start).Hours()/72) {
		t := start.Add(time.Duration(r.Int64N(int64(end.Sub(start)))))
		down = append(down, [2]time.Time{t, t.Add(minutes(uniform(r, 2, 15)))})
	}
	for _, p := range st.probes {
		k := 0
		for t := start.Add(time.Duration(r.Int64N(int64(st.period)))); t.Before(end); t = t.Add(st.period + time.Duration(r.IntN(1500))*time.Millisecond) {
			ep, status := a.health, 0
			if k%10 == 9 {
				ep = a.me
			}
			k++
			if slices.ContainsFunc(down, func(d [2]time.Time) bool { return !t.Before(d[0]) && t.Before(d[1]) }) {
				status = 503
			}
			e.Emit(Request{At: t, Net: p.net, Addr: pick(r, p.addrs), Endpoint: ep, Status: status})
		}
	}
}

// ---------------------------------------------------------------------------

// traveller is a web-app user who flies to another country during the
// window: office and home as usual, then a flight whose length matches the
// distance, then work from a hotel network in the destination's daytime,
// and maybe the flight back.
type traveller struct{}

type travelState struct {
	browser *browserState
	hotel   *Network
	zone    *time.Location // the destination's
	depart  float64        // days after the owner's start
	stay    float64        // days away
}

func (traveller) Name() string { return "traveller" }

func (traveller) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	c := browserUser{}.NewCredential(w, r, n)
	dests := w.nets.filter(func(x *Network) bool { return x.Kind == Residential && x.Country != c.Locale.Country })
	hotel := pick(r, dests)
	st := &travelState{browser: c.State.(*browserState), hotel: hotel,
		zone:   time.FixedZone(hotel.Country, int(math.Round(hotel.Lon/15))*3600),
		depart: uniform(r, 1.2, 3.5), stay: uniform(r, 2.5, 5)}
	c.Networks = append(c.Networks, hotel)
	c.Summary = fmt.Sprintf("sales rep in %s on the web app, flying to %s %.1f days in for %.1f days, working from a hotel there (%s)",
		c.Locale.City, hotel.City, st.depart, st.stay, hotel.Label())
	c.State = st
	return c
}

// flight returns how long the trip from a to b takes, door to gate to
// hotel: great-circle distance at 800 km/h plus two hours.
func flight(a, b *Network) time.Duration {
	const rad = math.Pi / 180
	dlat, dlon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	km := 2 * 6371 * math.Asin(math.Sqrt(h))
	return time.Duration((km/800 + 2) * float64(time.Hour))
}

func (tv traveller) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st := e.r, c.State.(*travelState)
	b := st.browser
	home := c.Locale.Office
	depart := start.Add(time.Duration(st.depart * 24 * float64(time.Hour)))
	arrive := depart.Add(flight(home, st.hotel))
	leave := arrive.Add(time.Duration(st.stay * 24 * float64(time.Hour)))
	back := leave.Add(flight(st.hotel, home))
	hotelAddrs := []netip.Addr{st.hotel.Addr(r), st.hotel.Addr(r)}
	ua := c.UserAgent
	run := func(from, to time.Time, zone *time.Location, away bool) {
		days(from, to, zone, func(day time.Time) {
			for _, s := range dayPlan(r, day) {
				if s.from.Before(from) || !s.to.Before(to) {
					continue
				}
				net, addr := b.office, pick(r, b.officeAddrs)
				switch {
				case away:
					net, addr = st.hotel, pick(r, hotelAddrs)
				case !s.office:
					net, addr = b.home.net, b.home.at(r, s.from)
				}
				browserUser{}.session(e, c, s.from, s.to, net, addr, ua)
			}
		})
	}
	run(start, depart, c.Locale.Zone, false)
	// Checked in and online in the evening: the first request abroad.
	run(arrive.Add(minutes(uniform(r, 60, 150))), leave, st.zone, true)
	run(back.Add(minutes(uniform(r, 60, 240))), end, c.Locale.Zone, false)
}

// ---------------------------------------------------------------------------

// vpnUser works from home through a commercial VPN: every connection gets
// another exit address, usually in the home country, sometimes in a
// second country the provider routes through; now and then the VPN is off.
type vpnUser struct{}

type vpnState struct {
	browser *browserState
	exits   []*Network // [0] in the home country
}

func (vpnUser) Name() string { return "vpn" }

func (vpnUser) NewCredential(w *World, r *rand.Rand, n int) *Credential {
	c := browserUser{}.NewCredential(w, r, n)
	st := &vpnState{browser: c.State.(*browserState)}
	st.exits = append(st.exits, w.nets.get("M247 VPN exit", c.Locale.Country))
	if r.IntN(3) > 0 {
		st.exits = append(st.exits, pick(r, w.nets.filter(func(x *Network) bool { return x.ASN == 60068 })))
	}
	c.Networks = append(slices.Clone(st.exits), st.browser.home.net)
	c.Summary = fmt.Sprintf("remote worker in %s on the web app through a commercial VPN: a new exit address each connection (%d exit countries), rarely without it (%s)",
		c.Locale.City, len(st.exits), st.browser.home.net.Label())
	c.State = st
	return c
}

func (vpnUser) Traffic(e *Emitter, c *Credential, start, end time.Time) {
	r, st := e.r, c.State.(*vpnState)
	days(start, end, c.Locale.Zone, func(day time.Time) {
		for _, s := range dayPlan(r, day) {
			// The VPN reconnects every so often, each time to another exit.
			for t := s.from; t.Before(s.to); {
				to := earliest(s.to, t.Add(minutes(uniform(r, 15, 90))))
				net := st.exits[0]
				if len(st.exits) > 1 && r.Float64() < 0.3 {
					net = st.exits[1]
				}
				addr := net.Addr(r)
				if r.Float64() < 0.08 {
					net, addr = st.browser.home.net, st.browser.home.at(r, t)
				}
				browserUser{}.session(e, c, t, to, net, addr, c.UserAgent)
				t = to
			}
		}
	})
}
