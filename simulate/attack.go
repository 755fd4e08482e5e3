package simulate

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// reads returns the victim's GET endpoints, and among them those that
// return many objects per call.
func reads(v *Credential) (all, bulk, detail []*Endpoint) {
	for _, ep := range v.Endpoints {
		if ep.Method != "GET" {
			continue
		}
		all = append(all, ep)
		switch ep.Kind {
		case List, Poll, Export:
			bulk = append(bulk, ep)
		case Detail:
			detail = append(detail, ep)
		}
	}
	if len(bulk) == 0 {
		bulk = all
	}
	if len(detail) == 0 {
		detail = all
	}
	return all, bulk, detail
}

func shuffled[T any](r *rand.Rand, xs []T) []T {
	out := slices.Clone(xs)
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// ---------------------------------------------------------------------------

// cloudExfil is the Salesloft/Drift pattern: the stolen token replayed from
// rented servers in another country, calling only the endpoints the owner
// calls, but pulling the largest pages the API serves, with parallel
// workers, until the data is gone.
type cloudExfil struct{}

func (cloudExfil) Name() string { return "cloud_exfil" }

func (cloudExfil) Victims() []string { return []string{"poller", "etl", "browser", "mobile"} }

func (cloudExfil) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	// Rented servers in a country where the owner never is.
	hosts := e.w.nets.base.filter(func(n *Network) bool {
		if n.Kind != Hosting || n.ASN == 9009 || n.Country == v.Locale.Country {
			return false
		}
		return !slices.ContainsFunc(v.Networks, func(o *Network) bool { return o.Country == n.Country })
	})
	net := pick(r, hosts)
	addrs := []netip.Addr{net.Addr(r), net.Addr(r)}
	const ua = "python-requests/2.32.4"
	all, bulk, detail := reads(v)
	page := make(map[*Endpoint]int)
	req := func(t time.Time, addr netip.Addr, ep *Endpoint, big bool) time.Time {
		q := Request{At: t, Net: net, Addr: addr, Endpoint: ep, UserAgent: ua}
		if big {
			page[ep]++
			switch ep.Kind {
			case Poll:
				q.Query = fmt.Sprintf("?since=0&limit=5000&cursor=%d", page[ep])
			case Export:
				q.Query = fmt.Sprintf("?page=%d&page_size=5000", page[ep])
			default:
				q.Query = fmt.Sprintf("?limit=2000&page=%d", page[ep])
			}
			if ep.Kind != Export {
				q.Bytes = logNormal(r, 1_200_000, 0.35, 1000)
			}
		}
		return e.Emit(q)
	}
	// Reconnaissance: a few of the owner's calls, by hand, to see the data.
	t := start
	for _, ep := range shuffled(r, all)[:min(4, len(all))] {
		t = req(t, addrs[0], ep, false).Add(pause(r, 10, 2, 30))
	}
	// Exfiltration: workers page through everything.
	burst := func(t time.Time, workers int, d time.Duration) {
		stop := t.Add(d)
		for w := range workers {
			addr := addrs[w%len(addrs)]
			for tt := t.Add(time.Duration(r.IntN(1000)) * time.Millisecond); tt.Before(stop); {
				big := r.Float64() < 0.65
				ep := pick(r, detail)
				if big {
					ep = pick(r, bulk)
				}
				tt = req(tt, addr, ep, big).Add(seconds(uniform(r, 0.3, 1.5)))
			}
		}
	}
	t = t.Add(minutes(uniform(r, 1, 4)))
	burst(t, 2, minutes(uniform(r, 12, 20)))
	burst(t.Add(minutes(uniform(r, 180, 360))), 1, minutes(uniform(r, 5, 10)))
	return fmt.Sprintf("replays the token from %s (python-requests, 2 servers), calling only the owner's endpoints but pulling MB-sized pages with parallel workers, then again hours later",
		net.Label())
}

// ---------------------------------------------------------------------------

// proxyReplay is a stolen session token used through a rotating
// residential proxy pool: the owner's user agent and endpoints, ordinary
// response sizes, but a different home connection somewhere in the world
// for almost every request.
type proxyReplay struct{}

func (proxyReplay) Name() string { return "proxy_replay" }

func (proxyReplay) Victims() []string { return []string{"browser", "mobile", "poller", "etl"} }

func (proxyReplay) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	pool := e.w.nets.base.filter(func(n *Network) bool { return n.Kind == Residential })
	all, _, _ := reads(v)
	used := make(map[uint32]bool)
	countries := make(map[string]bool)
	t := start
	for range 3 {
		n := 40 + r.IntN(50)
		gap := minutes(uniform(r, 4, 10)) / time.Duration(n)
		var net *Network
		var addr netip.Addr
		for i := range n {
			if i == 0 || r.Float64() < 0.8 { // the pool rotates the exit
				net = pick(r, pool)
				addr = net.Addr(r)
				used[net.ASN], countries[net.Country] = true, true
			}
			ep := pick(r, all)
			q := Request{At: t, Net: net, Addr: addr, Endpoint: ep}
			if ep.Kind == List {
				q.Query = fmt.Sprintf("?limit=100&page=%d", 1+i/3)
			}
			e.Emit(q)
			t = t.Add(time.Duration(float64(gap) * uniform(r, 0.3, 1.7)))
		}
		t = t.Add(minutes(uniform(r, 45, 180)))
	}
	return fmt.Sprintf("replays the token through a rotating residential proxy pool (%d networks in %d countries), with the owner's user agent and endpoints, in three bursts of a few minutes",
		len(used), len(countries))
}

// ---------------------------------------------------------------------------

// scopeProbe is an attacker finding out what a stolen token can reach:
// after one call the owner makes, a walk through administrative and bulk
// endpoints the credential has never used, most refused with 403, from a
// VPN exit in the owner's country.
type scopeProbe struct{}

func (scopeProbe) Name() string { return "scope_probe" }

func (scopeProbe) Victims() []string { return []string{"mobile", "browser", "poller", "etl"} }

func (scopeProbe) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	exits := e.w.nets.base.filter(func(n *Network) bool { return n.ASN == 9009 && n.Country == v.Locale.Country })
	if len(exits) == 0 {
		exits = e.w.nets.base.filter(func(n *Network) bool { return n.Kind == Hosting })
	}
	net := pick(r, exits)
	addr := net.Addr(r)
	const ua = "curl/8.5.0"
	all, _, _ := reads(v)
	probes := shuffled(r, e.w.api.admin)
	call := func(t time.Time, ep *Endpoint, status int) time.Time {
		return e.Emit(Request{At: t, Net: net, Addr: addr, Endpoint: ep, Status: status, UserAgent: ua})
	}
	round := func(t time.Time, probes []*Endpoint) {
		t = call(t, pick(r, all), 0) // is the token still good?
		for _, ep := range probes {
			t = call(t.Add(pause(r, 12, 2, 45)), ep, 403)
			if r.Float64() < 0.2 {
				t = call(t.Add(pause(r, 8, 1, 30)), pick(r, all), 0)
			}
		}
	}
	k := 8 + r.IntN(4)
	round(start, probes[:k])
	round(start.Add(minutes(uniform(r, 60, 180))), probes[k:])
	return fmt.Sprintf("probes what the token can reach from a VPN exit (%s, curl): %d administrative and bulk endpoints the owner never used, refused with 403, in two rounds",
		net.Label(), len(probes))
}
