package simulate

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
)

// defaultMix is the default mix with seed 1, generated once for the tests
// that read it (several seconds under the race detector).
var defaultTraffic = sync.OnceValues(func() (*Traffic, error) {
	o, err := Mix("default", 1, 0)
	if err != nil {
		return nil, err
	}
	return Generate(o)
})

func mixTraffic(t *testing.T, name string, seed uint64) *Traffic {
	t.Helper()
	o, err := Mix(name, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	return generate(t, o)
}

// checkTraffic checks what every generated traffic must satisfy: time
// order, unique request ids, labels that match their events, attackers
// only on credentials with an owner's history (new tokens for minted),
// dormant victims silent for 30 days first.
func checkTraffic(t *testing.T, tr *Traffic) {
	t.Helper()
	owners := make(map[string]*Credential)
	for _, c := range tr.Credentials {
		owners[c.TokenID] = c
	}
	firstOwner := make(map[string]int64) // token → first owner request
	lastOwner := make(map[string]int64)  // before the token's first attacker request
	firstAttack := make(map[string]int64)
	ids := make(map[string]bool, len(tr.Items))
	for i := range tr.Items {
		it := &tr.Items[i]
		ev, lb := &it.Event, &it.Label
		if i > 0 && ev.Time < tr.Items[i-1].Event.Time {
			t.Fatalf("item %d is earlier than item %d", i, i-1)
		}
		if ev.Time < tr.From.UnixNano() || ev.Time >= tr.End.UnixNano() {
			t.Fatalf("item %d at %v is outside %v – %v", i, ev.Timestamp(), tr.From, tr.End)
		}
		if ids[ev.RequestID] || ev.RequestID != lb.RequestID || lb.TokenID != ev.TokenID {
			t.Fatalf("item %d: request id %q repeats or label %+v does not match", i, ev.RequestID, *lb)
		}
		ids[ev.RequestID] = true
		tok := ev.TokenID
		switch lb.Role {
		case Owner:
			c := owners[tok]
			if c == nil || c.Archetype != lb.Scenario {
				t.Fatalf("item %d: owner request of %q on token %s", i, lb.Scenario, tok)
			}
			if _, ok := firstOwner[tok]; !ok {
				firstOwner[tok] = ev.Time
			}
			if _, ok := firstAttack[tok]; !ok {
				lastOwner[tok] = ev.Time
			}
		case Attacker:
			if _, ok := firstAttack[tok]; !ok {
				firstAttack[tok] = ev.Time
			}
			if lb.Scenario == "minted" {
				if owners[tok] != nil {
					t.Fatalf("item %d: minted request on an owner's token", i)
				}
				continue
			}
			first, ok := firstOwner[tok]
			if !ok || ev.Time-first < int64(12*time.Hour) {
				t.Fatalf("item %d: %s request before its victim's owner had half a day of history", i, lb.Scenario)
			}
		}
	}
	for _, a := range tr.Attacks {
		if len(a.Tokens) == 0 {
			continue // the window ended first
		}
		switch a.Attack {
		case "dormant":
			tok := a.Victim.TokenID
			if silent := time.Duration(firstAttack[tok] - lastOwner[tok]); silent < dormancy {
				t.Errorf("dormant on %s: owner silent only %v before the attack", a.Victim.Name, silent)
			}
		case "minted":
			for _, tok := range a.Tokens {
				if tok == a.Victim.TokenID || owners[tok] != nil {
					t.Errorf("minted used the existing token %s", tok)
				}
			}
		}
	}
}

func TestDefaultMix(t *testing.T) {
	t.Parallel()
	tr, err := defaultTraffic()
	if err != nil {
		t.Fatal(err)
	}
	checkTraffic(t, tr)
	if n := len(tr.Items); n < 100_000 || n > 350_000 {
		t.Errorf("%d events, want 100k–350k", n)
	}
	if d := tr.End.Sub(tr.Start); d != MixDuration {
		t.Errorf("window %v", d)
	}
	creds := make(map[string]int)
	for _, c := range tr.Credentials {
		creds[c.Archetype]++
	}
	count := make(map[Label]int)
	for _, it := range tr.Items {
		count[Label{Role: it.Label.Role, Scenario: it.Label.Scenario}]++
	}
	for _, b := range DefaultCatalog().Benign {
		if creds[b.Name()] < 3 || count[Label{Role: Owner, Scenario: b.Name()}] == 0 {
			t.Errorf("%s: %d credentials, %d requests", b.Name(), creds[b.Name()], count[Label{Role: Owner, Scenario: b.Name()}])
		}
	}
	victims := make(map[string][]string)
	for _, a := range tr.Attacks {
		if slices.Contains(victims[a.Attack], a.Victim.Name) {
			t.Errorf("%s twice on %s", a.Attack, a.Victim.Name)
		}
		victims[a.Attack] = append(victims[a.Attack], a.Victim.Name)
	}
	for _, a := range DefaultCatalog().Attacks {
		if len(victims[a.Name()]) < 2 || count[Label{Role: Attacker, Scenario: a.Name()}] == 0 {
			t.Errorf("%s: victims %v, %d requests", a.Name(), victims[a.Name()], count[Label{Role: Attacker, Scenario: a.Name()}])
		}
	}
	if !tr.From.Before(tr.Start.Add(-30 * 24 * time.Hour)) {
		t.Errorf("history begins %v, not weeks before the window", tr.From)
	}
}

func TestMixes(t *testing.T) {
	t.Parallel()
	for _, m := range Mixes() {
		if m[0] == "default" || m[0] == "benign" {
			continue // TestDefaultMix; the same population
		}
		t.Run(m[0], func(t *testing.T) {
			t.Parallel()
			o, err := Mix(m[0], 2, 48*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			tr := generate(t, o)
			checkTraffic(t, tr)
			if len(tr.Attacks) == 0 {
				t.Error("no attack")
			}
		})
	}
	if _, err := Mix("nope", 1, 0); err == nil || !strings.Contains(err.Error(), `no mix "nope"`) {
		t.Errorf("unknown mix: %v", err)
	}
	o, err := Mix("benign", 1, 0)
	if err != nil || len(o.Attacks) != 0 || len(o.Cohorts) == 0 {
		t.Errorf("benign mix: %+v, %v", o, err)
	}
}

func byToken(tr *Traffic, role Role, tok string) []event.Event {
	var out []event.Event
	for _, it := range tr.Items {
		if it.Label.Role == role && it.Event.TokenID == tok {
			out = append(out, it.Event)
		}
	}
	return out
}

func km(a, b *event.Event) float64 {
	const rad = math.Pi / 180
	dlat, dlon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * 6371 * math.Asin(math.Sqrt(h))
}

// The new archetypes and attacks have the shapes they claim.
func TestMoreArchetypes(t *testing.T) {
	t.Parallel()
	tr := shared(t)
	checkTraffic(t, tr)
	cred := func(arch string) *Credential {
		for _, c := range tr.Credentials {
			if c.Archetype == arch {
				return c
			}
		}
		t.Fatalf("no %s credential", arch)
		return nil
	}
	run := func(attack string) AttackRun {
		a := attackOn(tr, attack)
		if a.Victim == nil || len(a.Tokens) == 0 {
			t.Fatalf("no %s attack with requests", attack)
		}
		return a
	}
	addrs := func(evs []event.Event) int {
		return distinct(evs, func(ev *event.Event) netip.Addr { return ev.SourceIP })
	}
	for _, tc := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"ci: dozens of endpoints in bursts from many runner addresses", func(t *testing.T) {
			evs := byToken(tr, Owner, cred("ci").TokenID)
			perMin := make(map[int64]int)
			peak := 0
			for _, ev := range evs {
				perMin[ev.Time/int64(time.Minute)]++
				peak = max(peak, perMin[ev.Time/int64(time.Minute)])
			}
			eps := distinct(evs, func(ev *event.Event) string { return ev.Endpoint })
			if eps < 20 || addrs(evs) < 30 || peak < 20 {
				t.Errorf("%d endpoints, %d addresses, peak %d a minute", eps, addrs(evs), peak)
			}
		}},
		{"multiregion: three continents within the same minute", func(t *testing.T) {
			evs := byToken(tr, Owner, cred("multiregion").TokenID)
			perMin := make(map[int64]map[string]bool)
			best := 0
			for _, ev := range evs {
				m := ev.Time / int64(time.Minute)
				if perMin[m] == nil {
					perMin[m] = make(map[string]bool)
				}
				perMin[m][ev.Country] = true
				best = max(best, len(perMin[m]))
			}
			if best != 3 || distinct(evs, func(ev *event.Event) string { return ev.Country }) != 3 {
				t.Errorf("at most %d countries in a minute", best)
			}
		}},
		{"healthcheck: /healthz every few seconds from several networks", func(t *testing.T) {
			evs := byToken(tr, Owner, cred("healthcheck").TokenID)
			health := 0
			for _, ev := range evs {
				if ev.Endpoint == "/healthz" {
					health++
					if ev.Has&event.HasScope != 0 {
						t.Fatal("/healthz with a scope")
					}
				}
			}
			span := time.Duration(evs[len(evs)-1].Time - evs[0].Time)
			gap := span / time.Duration(len(evs))
			if health < len(evs)*8/10 || gap > 45*time.Second || distinct(evs, func(ev *event.Event) uint32 { return ev.ASN }) < 2 {
				t.Errorf("%d of %d on /healthz, a request every %v", health, len(evs), gap)
			}
		}},
		{"traveller: abroad after a flight, never faster than a plane", func(t *testing.T) {
			c := cred("traveller")
			evs := byToken(tr, Owner, c.TokenID)
			abroad := 0
			for i := range evs {
				if evs[i].Country != c.Locale.Country {
					abroad++
				}
				if i == 0 || evs[i].Country == evs[i-1].Country {
					continue
				}
				h := float64(evs[i].Time-evs[i-1].Time) / float64(time.Hour)
				if d := km(&evs[i-1], &evs[i]); d/h > 900 {
					t.Errorf("%.0f km in %.1f h", d, h)
				}
			}
			if abroad < 50 {
				t.Errorf("%d of %d requests abroad", abroad, len(evs))
			}
		}},
		{"vpn: VPN exits with changing addresses", func(t *testing.T) {
			evs := byToken(tr, Owner, cred("vpn").TokenID)
			vpn := 0
			for _, ev := range evs {
				if ev.ASN == 9009 || ev.ASN == 60068 {
					vpn++
				}
			}
			if vpn < len(evs)*8/10 || addrs(evs) < 15 {
				t.Errorf("%d of %d through the VPN, %d addresses", vpn, len(evs), addrs(evs))
			}
		}},
		{"bola: many object ids on the owner's routes, mostly refused", func(t *testing.T) {
			a := run("bola")
			own := make(map[string]bool)
			for _, ev := range byToken(tr, Owner, a.Victim.TokenID) {
				own[ev.Endpoint] = true
			}
			evs := byScenario(tr, Attacker, "bola")
			refused := 0
			evs = slices.DeleteFunc(evs, func(ev event.Event) bool { return !strings.Contains(ev.Endpoint, "{id}") })
			for _, ev := range evs {
				if ev.Status == 403 || ev.Status == 404 {
					refused++
				}
				if !own[ev.Endpoint] || !strings.HasPrefix(ev.Path, strings.TrimSuffix(ev.Endpoint, "{id}")) {
					t.Fatalf("%s %s: not the owner's route with an id", ev.Endpoint, ev.Path)
				}
			}
			paths := distinct(evs, func(ev *event.Event) string { return ev.Path })
			if paths < 200 || refused < len(evs)*3/4 {
				t.Errorf("%d requests, %d paths, %d refused", len(evs), paths, refused)
			}
		}},
		{"lowslow: one new home address in the owner's country, a few an hour", func(t *testing.T) {
			a := run("lowslow")
			evs := byScenario(tr, Attacker, "lowslow")
			perHour := make(map[int64]int)
			for _, ev := range evs {
				if ev.Country != a.Victim.Locale.Country {
					t.Fatalf("from %s, owner in %s", ev.Country, a.Victim.Locale.Country)
				}
				perHour[ev.Time/int64(time.Hour)]++
			}
			peak := 0
			for _, n := range perHour {
				peak = max(peak, n)
			}
			owner := byToken(tr, Owner, a.Victim.TokenID)
			if addrs(evs) != 1 || slices.ContainsFunc(owner, func(ev event.Event) bool { return ev.SourceIP == evs[0].SourceIP }) {
				t.Errorf("%d addresses, or the owner's", addrs(evs))
			}
			if span := time.Duration(evs[len(evs)-1].Time - evs[0].Time); peak > 12 || span < min(18*time.Hour, tr.End.Sub(a.Start)-2*time.Hour) {
				t.Errorf("%d requests over %v, peak %d an hour", len(evs), span, peak)
			}
		}},
		{"dormant: a credential silent for weeks, from a new network", func(t *testing.T) {
			a := run("dormant")
			owner := byToken(tr, Owner, a.Victim.TokenID)
			if len(owner) == 0 || a.Start.Sub(owner[len(owner)-1].Timestamp()) < dormancy {
				t.Fatalf("owner's %d requests, the last at %v, attack at %v", len(owner), owner[len(owner)-1].Timestamp(), a.Start)
			}
			for _, ev := range byScenario(tr, Attacker, "dormant") {
				if slices.ContainsFunc(a.Victim.Networks, func(n *Network) bool { return n.ASN == ev.ASN }) {
					t.Fatalf("attacker in the owner's AS%d", ev.ASN)
				}
			}
		}},
		{"minted: new tokens of a known client from networks it never used", func(t *testing.T) {
			a := run("minted")
			client := make(map[uint32]bool)
			for _, it := range tr.Items {
				if it.Label.Role == Owner && it.Event.ClientID == a.Victim.ClientID {
					client[it.Event.ASN] = true
				}
			}
			if len(a.Tokens) < 2 {
				t.Errorf("%d minted tokens", len(a.Tokens))
			}
			for _, ev := range byScenario(tr, Attacker, "minted") {
				if ev.ClientID != a.Victim.ClientID || client[ev.ASN] {
					t.Fatalf("client %q from AS%d", ev.ClientID, ev.ASN)
				}
			}
		}},
	} {
		t.Run(tc.name, tc.check)
	}
}

// A cohort's owners keep to their span: history before the window, quiet,
// back again.
func TestCohorts(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	tr := generate(t, Options{Seed: 5, Credentials: map[string]int{},
		Cohorts: []Cohort{
			{Archetype: "poller", Count: 1, Tag: "leave", History: 10 * day, QuietAfter: 2 * day, ResumeAfter: 11 * day},
			{Archetype: "mobile", Count: 2, Tag: "new", History: -day},
		}})
	if len(tr.Credentials) != 3 || tr.Credentials[0].Name != "poller-leave-1" || tr.Credentials[2].Name != "mobile-new-2" {
		t.Fatalf("credentials %v", tr.Credentials)
	}
	if want := tr.Start.Add(-10 * day); !tr.From.Equal(want) {
		t.Errorf("from %v, want %v", tr.From, want)
	}
	for _, it := range tr.Items {
		at := it.Event.Timestamp()
		switch c := it.Event.TokenID; c {
		case tr.Credentials[0].TokenID:
			if !at.Before(tr.Start.Add(-8*day)) && at.Before(tr.Start.Add(day)) {
				t.Fatalf("poller-leave-1 active at %v", at)
			}
		default:
			if at.Before(tr.Start.Add(day)) {
				t.Fatalf("a new mobile credential used at %v", at)
			}
		}
	}
}
