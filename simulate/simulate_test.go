package simulate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/event"
)

// allAttacks is four days of one credential per benign archetype, a
// retired ETL job with weeks of history, and every attack.
func allAttacks(seed uint64) Options {
	o := quietly(seed)
	o.Attacks = slices.Clone(allAttackNames)
	return o
}

// quietly is allAttacks without the attacks.
func quietly(seed uint64) Options {
	return Options{Seed: seed, Duration: 96 * time.Hour, Cohorts: dormantCohorts(1)}
}

// sharedTraffic is allAttacks(7), generated once for the tests that only
// read it (generating takes seconds under the race detector).
var sharedTraffic = sync.OnceValues(func() (*Traffic, error) { return Generate(allAttacks(7)) })

// sharedEventLines is sharedTraffic's events as JSON lines.
var sharedEventLines = sync.OnceValues(func() ([]byte, error) {
	tr, err := sharedTraffic()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = WriteEvents(&buf, tr.Items)
	return buf.Bytes(), err
})

func sharedEvents(t *testing.T) []byte {
	t.Helper()
	b, err := sharedEventLines()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shared(t *testing.T) *Traffic {
	t.Helper()
	tr, err := sharedTraffic()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func generate(t *testing.T, opts Options) *Traffic {
	t.Helper()
	tr, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func jsonLines(t *testing.T, items []Item, write func(w *bytes.Buffer, items []Item) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf, items); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeEvents(w *bytes.Buffer, items []Item) error { return WriteEvents(w, items) }
func writeLabels(w *bytes.Buffer, items []Item) error { return WriteLabels(w, items) }

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a := shared(t)
	b := generate(t, allAttacks(7))
	c := generate(t, Options{Seed: 8, Credentials: map[string]int{"poller": 1}})
	if len(a.Items) == 0 {
		t.Fatal("no traffic")
	}
	if !reflect.DeepEqual(a.Items, b.Items) {
		t.Error("the same seed gave different traffic")
	}
	if reflect.DeepEqual(a.Items[:100], c.Items[:100]) {
		t.Error("different seeds gave the same traffic")
	}
}

// Streams are independent: adding an attack leaves the owners' traffic as
// it was.
func TestStreamsAreIndependent(t *testing.T) {
	t.Parallel()
	quiet := generate(t, quietly(7))
	attacked := shared(t)
	var owners []Item
	for _, it := range attacked.Items {
		if it.Label.Role == Owner {
			owners = append(owners, it)
		}
	}
	if len(owners) != len(quiet.Items) {
		t.Fatalf("owners made %d requests with attacks, %d without", len(owners), len(quiet.Items))
	}
	for i := range owners {
		a, b := owners[i].Event, quiet.Items[i].Event
		a.RequestID, b.RequestID = "", ""
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("owner request %d differs:\n%+v\n%+v", i, a, b)
		}
	}
}

func TestGenerateOrderAndRange(t *testing.T) {
	t.Parallel()
	opts := Options{Seed: 11, Attacks: []string{"cloud_exfil", "proxy_replay", "scope_probe"}}
	opts.Credentials = map[string]int{"browser": 2, "mobile": 2, "etl": 1, "poller": 1}
	tr := generate(t, opts)
	start, end := tr.Start.UnixNano(), tr.End.UnixNano()
	if tr.Start != DefaultStart() || tr.End.Sub(tr.Start) != DefaultDuration {
		t.Errorf("range %v – %v, want the defaults", tr.Start, tr.End)
	}
	for i, it := range tr.Items {
		if i > 0 && it.Event.Time < tr.Items[i-1].Event.Time {
			t.Fatalf("item %d is earlier than item %d", i, i-1)
		}
		if it.Event.Time < start || it.Event.Time >= end {
			t.Fatalf("item %d at %v is outside the range", i, it.Event.Timestamp())
		}
	}
	if len(tr.Credentials) != 6 || len(tr.Attacks) != 3 {
		t.Fatalf("%d credentials and %d attacks, want 6 and 3", len(tr.Credentials), len(tr.Attacks))
	}
	victims := make(map[string]bool)
	for _, a := range tr.Attacks {
		if victims[a.Victim.Name] {
			t.Errorf("%s attacked twice", a.Victim.Name)
		}
		victims[a.Victim.Name] = true
		if a.Start.Before(tr.Start.Add(48 * time.Hour)) {
			t.Errorf("%s starts at %v, before the owners have two days of history", a.Attack, a.Start)
		}
	}
}

func TestLabelsMatchEvents(t *testing.T) {
	t.Parallel()
	tr := shared(t)
	evLines := bytes.Split(bytes.TrimSuffix(sharedEvents(t), []byte("\n")), []byte("\n"))
	lbLines := bytes.Split(bytes.TrimSuffix(jsonLines(t, tr.Items, writeLabels), []byte("\n")), []byte("\n"))
	if len(evLines) != len(tr.Items) || len(lbLines) != len(tr.Items) {
		t.Fatalf("%d event lines, %d label lines, %d items", len(evLines), len(lbLines), len(tr.Items))
	}
	owner := make(map[string]*Credential)
	for _, c := range tr.Credentials {
		owner[c.TokenID] = c
	}
	victim := make(map[string][]string) // attack → tokens
	for _, a := range tr.Attacks {
		victim[a.Attack] = a.Tokens
		if a.Attack != "minted" && !slices.Equal(a.Tokens, []string{a.Victim.TokenID}) {
			t.Errorf("%s used tokens %v, not its victim's", a.Attack, a.Tokens)
		}
	}
	seen := map[Role]int{}
	ids := make(map[string]bool)
	for i := range tr.Items {
		var ev struct {
			RequestID string `json:"request_id"`
			TokenID   string `json:"token_id"`
		}
		var lb map[string]string
		if i > 2000 && tr.Items[i].Label.Role == Owner && i%50 != 0 {
			continue // the rest of the owners' lines: a sample is enough
		}
		if err := json.Unmarshal(evLines[i], &ev); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(lbLines[i], &lb); err != nil {
			t.Fatal(err)
		}
		if len(lb) != 4 || lb["request_id"] != ev.RequestID || ev.RequestID == "" || lb["token_id"] != ev.TokenID {
			t.Fatalf("line %d: label %v for event %s", i+1, lb, ev.RequestID)
		}
		if ids[ev.RequestID] {
			t.Fatalf("request id %s repeats", ev.RequestID)
		}
		ids[ev.RequestID] = true
		c := owner[ev.TokenID]
		if c == nil && lb["scenario"] != "minted" {
			t.Fatalf("line %d: token %s belongs to no credential", i+1, ev.TokenID)
		}
		switch lb["label"] {
		case "owner":
			seen[Owner]++
			if c == nil || lb["scenario"] != c.Archetype {
				t.Fatalf("line %d: owner of %s labelled %q", i+1, c.Name, lb["scenario"])
			}
		case "attacker":
			seen[Attacker]++
			if !slices.Contains(victim[lb["scenario"]], ev.TokenID) {
				t.Fatalf("line %d: attack %q on the wrong token", i+1, lb["scenario"])
			}
		default:
			t.Fatalf("line %d: label %q", i+1, lb["label"])
		}
	}
	if seen[Owner] == 0 || seen[Attacker] == 0 {
		t.Errorf("labels: %v", seen)
	}
}

// Every event written is valid under the contract and decodes to itself.
func TestEventsRoundTrip(t *testing.T) {
	t.Parallel()
	tr := shared(t)
	dec := event.NewDecoder(nil)
	sc := bufio.NewScanner(bytes.NewReader(sharedEvents(t)))
	sc.Buffer(nil, event.MaxLineBytes)
	i := 0
	for sc.Scan() {
		var got event.Event
		if err := dec.Decode(slices.Clone(sc.Bytes()), &got); err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, sc.Bytes())
		}
		if want := tr.Items[i].Event; !reflect.DeepEqual(got, want) {
			t.Fatalf("line %d decodes to\n%+v\nwant\n%+v", i+1, got, want)
		}
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(tr.Items) {
		t.Fatalf("%d lines for %d items", i, len(tr.Items))
	}
}

func TestOptionsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"short", Options{Duration: time.Minute}, "duration"},
		{"unknown archetype", Options{Credentials: map[string]int{"fax": 1}}, `no benign archetype "fax"`},
		{"negative count", Options{Credentials: map[string]int{"browser": -1}}, "must not be negative"},
		{"unknown attack", Options{Attacks: []string{"sql_injection"}}, `no attack "sql_injection"`},
		{"attack after the end", Options{AttackAfter: 100 * time.Hour}, "attack_after"},
		{"no victim left", Options{Credentials: map[string]int{"etl": 1}, Attacks: []string{"cloud_exfil", "scope_probe"}}, "no credential left"},
		{"no dormant victim", Options{Attacks: []string{"dormant"}}, "attack dormant: no credential left"},
		{"window too long", Options{AttackAfter: 48 * time.Hour, AttackWindow: 48 * time.Hour}, "attack_window"},
		{"cohort archetype", Options{Cohorts: []Cohort{{Archetype: "fax", Tag: "x", Count: 1}}}, `cohort 1: no benign archetype "fax"`},
		{"cohort tag", Options{Cohorts: []Cohort{{Archetype: "etl", Count: 1}}}, "tag"},
		{"cohort tags repeat", Options{Cohorts: []Cohort{{Archetype: "etl", Tag: "a"}, {Archetype: "vpn", Tag: "a"}}}, `tag "a"`},
		{"cohort resumes first", Options{Cohorts: []Cohort{{Archetype: "etl", Tag: "a", QuietAfter: 48 * time.Hour, ResumeAfter: time.Hour}}}, "resume after quiet"},
		{"cohort starts after the end", Options{Cohorts: []Cohort{{Archetype: "etl", Tag: "a", History: -100 * time.Hour}}}, "history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNetworks(t *testing.T) {
	t.Parallel()
	r := streamRand(1, "networks")
	for _, n := range Networks() {
		if len(n.Country) != 2 || strings.ToUpper(n.Country) != n.Country || n.ASN == 0 || len(n.Prefixes) == 0 {
			t.Errorf("%s: country %q, ASN %d, %d prefixes", n.Name, n.Country, n.ASN, len(n.Prefixes))
		}
		for range 200 {
			a := n.Addr(r)
			if !slices.ContainsFunc(n.Prefixes, func(p netip.Prefix) bool { return p.Contains(a) }) {
				t.Fatalf("%s: address %v outside its prefixes", n.Name, a)
			}
			lat, lon := n.Geo(a)
			if lat2, lon2 := n.Geo(a); lat != lat2 || lon != lon2 {
				t.Fatalf("%s: geolocation of %v is not stable", n.Name, a)
			}
			if d := max(lat-n.Lat, n.Lat-lat, lon-n.Lon, n.Lon-lon); d > 0.1 {
				t.Fatalf("%s: %v placed at %v,%v, far from %v,%v", n.Name, a, lat, lon, n.Lat, n.Lon)
			}
		}
	}
	if tbl := Networks(); &tbl[0] == &networkTable[0] {
		t.Error("Networks returns the table itself")
	}
}

// byScenario returns the events of one label.
func byScenario(tr *Traffic, role Role, scenario string) []event.Event {
	var out []event.Event
	for _, it := range tr.Items {
		if it.Label.Role == role && it.Label.Scenario == scenario {
			out = append(out, it.Event)
		}
	}
	return out
}

func distinct[K comparable](evs []event.Event, key func(*event.Event) K) int {
	m := make(map[K]bool)
	for i := range evs {
		m[key(&evs[i])] = true
	}
	return len(m)
}

func attackOn(tr *Traffic, name string) AttackRun {
	for _, a := range tr.Attacks {
		if a.Attack == name {
			return a
		}
	}
	return AttackRun{}
}

// Each archetype has the shape it claims.
func TestArchetypes(t *testing.T) {
	t.Parallel()
	tr := shared(t)
	hours := int(tr.End.Sub(tr.Start).Hours())
	cred := func(arch string) *Credential {
		for _, c := range tr.Credentials {
			if c.Archetype == arch {
				return c
			}
		}
		t.Fatalf("no %s credential", arch)
		return nil
	}
	ownerEndpoints := func(c *Credential) map[string]bool {
		m := make(map[string]bool)
		for _, it := range tr.Items {
			if it.Label.Role == Owner && it.Event.TokenID == c.TokenID {
				m[it.Event.Endpoint] = true
			}
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"browser works from the office on working days", func(t *testing.T) {
			c := cred("browser")
			evs := byScenario(tr, Owner, "browser")
			office := 0
			for _, ev := range evs {
				if ev.ASN == c.Locale.Office.ASN {
					office++
					if h := ev.Timestamp().In(c.Locale.Zone).Hour(); h < 8 || h > 19 {
						t.Errorf("office request at %v local", h)
					}
				}
			}
			if len(evs) < 500 || office < len(evs)/2 {
				t.Errorf("%d requests, %d from the office", len(evs), office)
			}
		}},
		{"mobile gets a new carrier address each session", func(t *testing.T) {
			c := cred("mobile")
			st := c.State.(*mobileState)
			var carrier []event.Event
			for _, ev := range byScenario(tr, Owner, "mobile") {
				if ev.ASN == st.carrier.ASN {
					carrier = append(carrier, ev)
				}
			}
			// A session is a run of requests less than 10 minutes apart.
			sessions := 0
			for i := range carrier {
				if i == 0 || carrier[i].Time-carrier[i-1].Time > int64(10*time.Minute) {
					sessions++
				}
			}
			addrs := distinct(carrier, func(ev *event.Event) netip.Addr { return ev.SourceIP })
			if sessions < 10 || addrs < sessions {
				t.Errorf("%d carrier sessions from %d addresses", sessions, addrs)
			}
		}},
		{"etl pulls large pages at night from one address", func(t *testing.T) {
			var evs []event.Event
			for _, ev := range byScenario(tr, Owner, "etl") {
				if ev.TokenID == cred("etl").TokenID {
					evs = append(evs, ev)
				}
			}
			var big int
			for _, ev := range evs {
				if ev.PayloadBytes > 500_000 {
					big++
				}
				if h := ev.Timestamp().In(cred("etl").Locale.Zone).Hour(); h < 2 || h > 4 {
					t.Fatalf("etl request at %d h local", h)
				}
			}
			if a := distinct(evs, func(ev *event.Event) netip.Addr { return ev.SourceIP }); a != 1 || big < len(evs)*9/10 {
				t.Errorf("%d addresses, %d of %d responses over 500 kB", a, big, len(evs))
			}
		}},
		{"poller polls steadily from one cloud region", func(t *testing.T) {
			evs := byScenario(tr, Owner, "poller")
			active := distinct(evs, func(ev *event.Event) int64 { return ev.Time / int64(time.Hour) })
			nets := distinct(evs, func(ev *event.Event) [2]any { return [2]any{ev.ASN, ev.Country} })
			if active != hours || nets != 1 {
				t.Errorf("active in %d hours of %d, from %d networks", active, hours, nets)
			}
		}},
		{"cloud_exfil: hosting abroad, owner's endpoints, large and fast", func(t *testing.T) {
			a := attackOn(tr, "cloud_exfil")
			evs := byScenario(tr, Attacker, "cloud_exfil")
			used := ownerEndpoints(a.Victim)
			var bytes int64
			perMin := make(map[int64]int)
			for _, ev := range evs {
				for _, n := range a.Victim.Networks {
					if ev.Country == n.Country {
						t.Fatalf("attacker in %s, a country of the owner's", ev.Country)
					}
				}
				if !used[ev.Endpoint] {
					t.Fatalf("attacker used %s, which the owner never does", ev.Endpoint)
				}
				bytes += ev.PayloadBytes
				perMin[ev.Time/int64(time.Minute)]++
			}
			peak := 0
			for _, n := range perMin {
				peak = max(peak, n)
			}
			if bytes < 500e6 || peak < 60 {
				t.Errorf("%d requests, %d bytes, peak %d a minute", len(evs), bytes, peak)
			}
		}},
		{"proxy_replay: many networks within minutes", func(t *testing.T) {
			a := attackOn(tr, "proxy_replay")
			evs := byScenario(tr, Attacker, "proxy_replay")
			first := evs[0].Time
			var burst []event.Event
			for _, ev := range evs {
				if ev.Time-first < int64(10*time.Minute) {
					burst = append(burst, ev)
				}
				if ev.UserAgent != a.Victim.UserAgent {
					t.Fatalf("attacker user agent %q, owner's %q", ev.UserAgent, a.Victim.UserAgent)
				}
			}
			asns := distinct(burst, func(ev *event.Event) uint32 { return ev.ASN })
			countries := distinct(burst, func(ev *event.Event) string { return ev.Country })
			if asns < 8 || countries < 5 {
				t.Errorf("first 10 minutes: %d requests from %d ASNs in %d countries", len(burst), asns, countries)
			}
		}},
		{"scope_probe: 403s on endpoints the owner never used", func(t *testing.T) {
			a := attackOn(tr, "scope_probe")
			used := ownerEndpoints(a.Victim)
			refused := make(map[string]bool)
			for _, ev := range byScenario(tr, Attacker, "scope_probe") {
				if ev.Status == 403 {
					if used[ev.Endpoint] {
						t.Errorf("refused on %s, which the owner uses", ev.Endpoint)
					}
					refused[ev.Endpoint] = true
				}
			}
			if len(refused) < 10 {
				t.Errorf("refused on %d endpoints", len(refused))
			}
		}},
	} {
		t.Run(tc.name, tc.check)
	}
}
