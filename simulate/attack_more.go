package simulate

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// usedASN reports whether any of the credential's usual networks is in
// n's autonomous system.
func usedASN(v *Credential, n *Network) bool {
	return slices.ContainsFunc(v.Networks, func(o *Network) bool { return o.ASN == n.ASN })
}

// substitute replaces the {id} of a template with id.
func substitute(tmpl, id string) string { return strings.Replace(tmpl, "{id}", id, 1) }

// ---------------------------------------------------------------------------

// bola is object-level authorization probing (OWASP API1, BOLA): the
// attacker takes the owner's detail routes and walks object ids, counting
// up from one it has seen or guessing at random, a few per second, to find
// objects of other tenants the API forgets to protect. Most answers are
// 404 (no such object) or 403 (not yours); the 200s are the leak.
type bola struct{}

func (bola) Name() string { return "bola" }

func (bola) Victims() []string {
	return []string{"mobile", "browser", "multiregion", "poller", "vpn"}
}

func (bola) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	var tmpls []*Endpoint
	for _, ep := range v.Endpoints {
		if ep.Method == "GET" && strings.Contains(ep.Template, "{id}") {
			tmpls = append(tmpls, ep)
		}
	}
	if len(tmpls) == 0 {
		tmpls = []*Endpoint{e.w.api.contact, e.w.api.account}
	}
	hosts := e.w.nets.filter(func(n *Network) bool { return n.Kind == Hosting && !usedASN(v, n) })
	net := pick(r, hosts)
	addr := net.Addr(r)
	ua := v.UserAgent
	if r.IntN(2) == 0 {
		ua = "python-httpx/0.27.2"
	}
	all, _, _ := reads(v)
	t := e.Emit(Request{At: start, Net: net, Addr: addr, Endpoint: pick(r, all), UserAgent: ua})
	rounds, total := 2+r.IntN(2), 0
	for range rounds {
		t = t.Add(minutes(uniform(r, 1, 5)))
		ep := pick(r, tmpls)
		sequential := r.Float64() < 0.7
		next := r.Uint64N(1 << 50)
		for range 150 + r.IntN(350) {
			id := next
			if sequential {
				next += 1 + r.Uint64N(3)
			} else {
				id = r.Uint64N(1 << 50)
			}
			status := 0
			switch x := r.Float64(); {
			case sequential && x < 0.5, !sequential && x < 0.9:
				status = 404
			case sequential && x < 0.87, !sequential && x < 0.98:
				status = 403
			}
			path := substitute(ep.Template, resource(ep.Template)+"_"+pad10(strconv.FormatUint(id, 36)))
			t = e.Emit(Request{At: t, Net: net, Addr: addr, Endpoint: ep, Path: path, Status: status, UserAgent: ua}).
				Add(seconds(uniform(r, 0.1, 0.6)))
			total++
		}
		t = t.Add(minutes(uniform(r, 20, 90)))
	}
	return fmt.Sprintf("enumerates object ids on the owner's detail routes from %s: %d requests in %d rounds, mostly 404 and 403, a few objects of other tenants leaked",
		net.Label(), total, rounds)
}

func pad10(s string) string {
	if len(s) >= 10 {
		return s
	}
	return strings.Repeat("0", 10-len(s)) + s
}

// ---------------------------------------------------------------------------

// lowSlow is exfiltration meant to stay under every threshold: one
// residential address in the owner's own country (a compromised home
// router, a residential proxy pinned to one exit), the owner's user agent,
// a few requests an hour around the clock, paging through the owner's
// lists with somewhat larger pages than the owner asks for, for about a
// day.
type lowSlow struct{}

func (lowSlow) Name() string { return "lowslow" }

func (lowSlow) Victims() []string {
	return []string{"browser", "mobile", "vpn", "traveller", "multiregion"}
}

func (lowSlow) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	home := e.w.nets.filter(func(n *Network) bool { return n.Kind == Residential && n.Country == v.Locale.Country })
	if fresh := slices.DeleteFunc(slices.Clone(home), func(n *Network) bool { return slices.Contains(v.Networks, n) }); len(fresh) > 0 {
		home = fresh
	}
	net := pick(r, home)
	addr := net.Addr(r)
	all, bulk, _ := reads(v)
	var lists []*Endpoint
	for _, ep := range bulk {
		if ep.Kind == List {
			lists = append(lists, ep)
		}
	}
	if len(lists) == 0 {
		lists = all
	}
	page := make(map[*Endpoint]int)
	stop := start.Add(time.Duration(uniform(r, 20, 30) * float64(time.Hour)))
	n := 0
	for t := start; t.Before(stop); t = t.Add(pause(r, 60*60/4, 120, 3600)) {
		ep := pick(r, all)
		q := Request{At: t, Net: net, Addr: addr, Endpoint: ep}
		if r.Float64() < 0.7 {
			ep = pick(r, lists)
			page[ep]++
			q.Endpoint, q.Query = ep, fmt.Sprintf("?limit=100&page=%d", page[ep])
			q.Bytes = int64(float64(ep.Response(r)) * uniform(r, 1.5, 3))
		}
		e.Emit(q)
		n++
	}
	return fmt.Sprintf("pages through the owner's lists from one new home address in the owner's country (%s), with the owner's user agent, about 4 requests an hour for %.0f hours, pages 2–3× the usual size",
		net.Label(), stop.Sub(start).Hours())
}

// ---------------------------------------------------------------------------

// dormant is a credential nobody uses any more (a decommissioned job, an
// uninstalled integration, a former employee's token) but nobody revoked,
// found in an old repository or a leaked backup and reactivated weeks
// later from a new network: a check that it still works, a look around
// the owner's endpoints, then bulk pulls.
type dormant struct{}

// dormancy is how long a victim of the dormant attack has been silent at
// least.
const dormancy = 30 * 24 * time.Hour

func (dormant) Name() string { return "dormant" }

func (dormant) Victims() []string { return []string{"etl", "browser", "poller", "mobile"} }

// Eligible takes credentials whose owner went quiet for good at least 30
// days before the attack.
func (dormant) Eligible(c *Credential, earliest time.Time) bool {
	return !c.Quiet.IsZero() && c.Resume.IsZero() && earliest.Sub(c.Quiet) >= dormancy
}

func (dormant) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r := e.r
	hosts := e.w.nets.filter(func(n *Network) bool { return n.Kind == Hosting && !usedASN(v, n) })
	net := pick(r, hosts)
	addr := net.Addr(r)
	const ua = "python-requests/2.32.4"
	all, bulk, _ := reads(v)
	call := func(t time.Time, ep *Endpoint, query string, big bool) time.Time {
		q := Request{At: t, Net: net, Addr: addr, Endpoint: ep, Query: query, UserAgent: ua}
		if big && ep.Kind != Export {
			q.Bytes = int64(float64(ep.Response(r)) * uniform(r, 4, 20))
		}
		return e.Emit(q)
	}
	t := call(start, all[0], "", false)
	for _, ep := range shuffled(r, all)[:min(len(all), 3+r.IntN(6))] {
		t = call(t.Add(pause(r, 40, 5, 180)), ep, "", false)
	}
	n := 0
	for range 1 + r.IntN(2) {
		t = t.Add(minutes(uniform(r, 15, 120)))
		page := make(map[*Endpoint]int)
		for range 60 + r.IntN(200) {
			ep := pick(r, bulk)
			page[ep]++
			t = call(t, ep, fmt.Sprintf("?page=%d&limit=1000", page[ep]), true).Add(seconds(uniform(r, 0.3, 3)))
			n++
		}
	}
	silent := start.Sub(v.Quiet).Hours() / 24
	return fmt.Sprintf("reactivates a credential silent for %.0f days from %s (python-requests): a check, a look around, then %d bulk pages",
		silent, net.Label(), n)
}

// ---------------------------------------------------------------------------

// minted is the Gainsight/Salesloft pattern on the OAuth client level: the
// attacker holds an integration's refresh token (or client secret) and
// mints new access tokens of that client — new token_ids with the known
// client_id and no history of their own — and uses each at once, from
// hosting and VPN networks the client never used, to dump objects.
type minted struct{}

func (minted) Name() string { return "minted" }

func (minted) Victims() []string { return []string{"poller", "multiregion", "etl"} }

// Eligible takes active credentials of an OAuth client: the minted tokens
// carry its client_id.
func (minted) Eligible(c *Credential, earliest time.Time) bool {
	return c.ClientID != "" && activeBefore(c, earliest)
}

func (minted) Traffic(e *Emitter, v *Credential, start, end time.Time) string {
	r, a := e.r, e.w.api
	nets := e.w.nets.filter(func(n *Network) bool { return n.Kind == Hosting && !usedASN(v, n) })
	lists := []*Endpoint{a.accounts, a.contacts, a.opportunities, a.cases, a.search}
	exports := []*Endpoint{a.exportAccounts, a.exportContacts, a.exportOpportunities}
	k := 2 + r.IntN(3)
	used := make(map[string]bool)
	t := start
	for i := range k {
		tok := tokenID(r)
		net := pick(r, nets)
		used[net.Label()] = true
		addrs := []netip.Addr{net.Addr(r)}
		if r.IntN(2) == 0 {
			addrs = append(addrs, net.Addr(r))
		}
		ua := v.UserAgent
		if i%2 == 0 {
			ua = "python-requests/2.32.4"
		}
		page := make(map[*Endpoint]int)
		call := func(t time.Time, ep *Endpoint, query string, status int, big bool) time.Time {
			q := Request{At: t, Net: net, Addr: pick(r, addrs), Endpoint: ep, Query: query, Status: status, UserAgent: ua, TokenID: tok}
			if big {
				q.Bytes = int64(float64(ep.Response(r)) * uniform(r, 3, 10))
			}
			return e.Emit(q)
		}
		tt := call(t, a.me, "", 0, false)
		for range 40 + r.IntN(160) {
			tt = tt.Add(seconds(uniform(r, 0.3, 2.5)))
			switch x := r.Float64(); {
			case x < 0.35 && len(v.Endpoints) > 0:
				ep := pick(r, v.Endpoints)
				q := ""
				if ep.Kind == Poll {
					page[ep]++
					q = fmt.Sprintf("?since=0&limit=1000&cursor=%d", page[ep])
				}
				tt = call(tt, ep, q, 0, ep.Kind == Poll)
			case x < 0.9:
				ep := pick(r, lists)
				page[ep]++
				tt = call(tt, ep, fmt.Sprintf("?limit=200&page=%d", page[ep]), 0, true)
			default:
				tt = call(tt, pick(r, exports), "?page=1&page_size=5000", 403, false)
			}
		}
		t = tt.Add(minutes(uniform(r, 20, 150)))
	}
	return fmt.Sprintf("mints %d new tokens of the client %q with its stolen refresh token and uses each at once from networks the client never used (%d of them), dumping lists",
		k, v.ClientID, len(used))
}

// Interface guards.
var (
	_ VictimFilter = dormant{}
	_ VictimFilter = minted{}
)
