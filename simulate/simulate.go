// Package simulate generates labeled API traffic in vigil's event contract
// (docs/events.md): credentials used by their owners, some of them stolen
// and replayed by an attacker while the owner keeps working.
//
// Traffic is made of archetypes. A Benign archetype is a kind of owner (a
// browser user, a mobile app, a nightly ETL job, a polling integration): it
// makes credentials and the owner's requests on them. An Attack archetype
// is a way of abusing a stolen credential: it picks a victim among the
// benign credentials and makes the attacker's requests on that same
// token_id. Each credential's owner and each attack is a stream with its
// own random source, derived from the seed and the stream's name, so adding
// a credential or an attack does not change the traffic of the others.
// Generate merges the streams into one time-ordered sequence of Items, each
// an event and its label (owner or attacker, and the scenario).
//
// To add an archetype, implement Benign or Attack and put it in the Catalog
// given to Generate (Options.Catalog): it builds requests with its
// Emitter, from the World's networks and endpoints.
//
// Everything is deterministic for a seed: math/rand/v2 PCG, no wall clock,
// no map iteration in the output path.
package simulate

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/event"
)

// Role is who made a request with a credential.
type Role uint8

const (
	Owner    Role = iota // the credential's legitimate user
	Attacker             // someone replaying the stolen credential
)

// String returns "owner" or "attacker", the label in the label stream.
func (r Role) String() string {
	if r == Attacker {
		return "attacker"
	}
	return "owner"
}

// Label is the ground truth of one event.
type Label struct {
	RequestID string
	// TokenID is the event's credential: the victim's for most attacks, a
	// newly minted one for the minted attack.
	TokenID string
	Role    Role
	// Scenario is the benign archetype's name for owner traffic and the
	// attack's name for attacker traffic.
	Scenario string
}

// Item is one generated request: the event as vigil receives it and its
// label, which vigil never sees.
type Item struct {
	Event event.Event
	Label Label
}

// Credential is one simulated credential and what is known of its owner.
type Credential struct {
	Name      string // archetype and number, e.g. "browser-1"
	Archetype string
	TokenID   string
	ClientID  string
	UserAgent string
	Locale    *Locale
	// Endpoints are the routes the owner uses; attackers that mimic the
	// owner pick from them.
	Endpoints []*Endpoint
	// Networks are the owner's usual networks.
	Networks []*Network
	// Summary describes the owner in one line, for reports.
	Summary string
	// State is the archetype's own data about the credential.
	State any

	// Active is when the owner began using the credential: Traffic.Start,
	// or earlier for a cohort with a History. Quiet is when the owner
	// stopped (zero: never) and Resume when it came back (zero: never).
	Active, Quiet, Resume time.Time
}

// AttackRun is one attack in the traffic.
type AttackRun struct {
	Attack string
	Victim *Credential
	Start  time.Time
	// Tokens are the token ids the attacker used: the victim's, or for the
	// minted attack the new tokens of the victim's client.
	Tokens []string
	// Summary describes the attack in one line, for reports.
	Summary string
}

// Traffic is the generated traffic.
type Traffic struct {
	// Start and End bound the evaluation window. From is the first
	// instant of traffic: Start, or earlier when a cohort has a History.
	Start, End  time.Time
	From        time.Time
	Items       []Item // in time order
	Credentials []*Credential
	Attacks     []AttackRun
}

// Benign is an archetype of legitimate credential use.
type Benign interface {
	// Name names the archetype in options and labels.
	Name() string
	// NewCredential makes the archetype's n-th credential (n from 1).
	NewCredential(w *World, r *rand.Rand, n int) *Credential
	// Traffic emits the owner's requests on c between start and end.
	Traffic(e *Emitter, c *Credential, start, end time.Time)
}

// Attack is an archetype of abuse of a stolen credential.
type Attack interface {
	// Name names the attack in options and labels.
	Name() string
	// Victims lists the benign archetypes whose credentials the attack
	// prefers, best first.
	Victims() []string
	// Traffic emits the attacker's requests on the victim's credential
	// from start (the theft has happened) to end, and returns a one-line
	// summary of what the attacker does.
	Traffic(e *Emitter, victim *Credential, start, end time.Time) string
}

// VictimFilter is implemented by attacks that need a particular kind of
// victim. Eligible reports whether c can be the victim of an attack that
// starts at earliest or later. Attacks without it take credentials whose
// owner began using them at least 12 hours before earliest and has not
// gone quiet.
type VictimFilter interface {
	Eligible(c *Credential, earliest time.Time) bool
}

// Catalog is the set of archetypes a generator can use.
type Catalog struct {
	Benign  []Benign
	Attacks []Attack
}

// DefaultCatalog returns the built-in archetypes.
func DefaultCatalog() *Catalog {
	return &Catalog{
		Benign: []Benign{browserUser{}, mobileApp{}, nightlyETL{}, pollingIntegration{},
			ciRunner{}, multiRegion{}, healthCheck{}, traveller{}, vpnUser{}},
		Attacks: []Attack{cloudExfil{}, proxyReplay{}, scopeProbe{},
			bola{}, lowSlow{}, dormant{}, minted{}},
	}
}

func (c *Catalog) benign(name string) Benign {
	for _, b := range c.Benign {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

func (c *Catalog) attack(name string) Attack {
	for _, a := range c.Attacks {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

// Options configure Generate. The zero value is three days of one
// credential per benign archetype, with no attack.
type Options struct {
	Seed uint64
	// Start of the traffic; zero means DefaultStart.
	Start time.Time
	// Duration of the traffic; zero means 72h.
	Duration time.Duration
	// Credentials per benign archetype, by name. Nil means one of each;
	// archetypes missing from a non-nil map get none.
	Credentials map[string]int
	// Cohorts are further credentials with a life of their own: a history
	// before Start, a period of silence, a first use inside the window.
	Cohorts []Cohort
	// Attacks to run, by name, each on its own victim. A name may repeat:
	// the k-th run of an attack starts its search for a victim at the k-th
	// archetype it prefers, so repeated runs hit different kinds of owner.
	Attacks []string
	// AttackAfter is how long after Start the attacks may begin, so that
	// owners have some history first; zero means two thirds of Duration.
	AttackAfter time.Duration
	// AttackWindow: each attack starts at a random time within this long
	// after Start+AttackAfter; zero means a quarter of the time that
	// remains.
	AttackWindow time.Duration
	// Catalog of archetypes; nil means DefaultCatalog.
	Catalog *Catalog
}

// Cohort is a group of credentials of one benign archetype whose owners
// are not simply active throughout the window.
type Cohort struct {
	Archetype string
	Count     int
	// Tag names the cohort's credentials "<archetype>-<tag>-<n>" and seeds
	// their streams; it must be unique among the cohorts.
	Tag string
	// History: the owners begin this long before Start (their requests
	// before Start are part of the traffic). Negative: they begin this long
	// after Start, as a credential issued during the window.
	History time.Duration
	// QuietAfter: the owners stop this long after they began; zero means
	// they never stop. ResumeAfter: they come back this long after they
	// began; zero means they do not.
	QuietAfter, ResumeAfter time.Duration
}

// DefaultStart returns the start used when Options.Start is zero: Monday
// 2 March 2026, 00:00 UTC, so that the default three days are working days.
func DefaultStart() time.Time { return time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) }

// DefaultDuration is the traffic's length when Options.Duration is zero.
const DefaultDuration = 72 * time.Hour

const maxCredentials = 100_000

func (o *Options) setDefaults() error {
	if o.Catalog == nil {
		o.Catalog = DefaultCatalog()
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart()
	}
	o.Start = o.Start.UTC()
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	var errs []error
	if o.Duration < time.Hour || o.Duration > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("duration %v: must be between 1h and 8784h", o.Duration))
	}
	if o.Credentials == nil {
		o.Credentials = make(map[string]int, len(o.Catalog.Benign))
		for _, b := range o.Catalog.Benign {
			o.Credentials[b.Name()] = 1
		}
	}
	total := 0
	for _, name := range slices.Sorted(maps.Keys(o.Credentials)) {
		n := o.Credentials[name]
		if o.Catalog.benign(name) == nil {
			errs = append(errs, fmt.Errorf("credentials: no benign archetype %q (have %s)", name, o.Catalog.benignNames()))
		}
		if n < 0 {
			errs = append(errs, fmt.Errorf("credentials: %s: %d must not be negative", name, n))
		}
		total += max(n, 0)
	}
	for _, name := range o.Attacks {
		if o.Catalog.attack(name) == nil {
			errs = append(errs, fmt.Errorf("attacks: no attack %q (have %s)", name, o.Catalog.attackNames()))
		}
	}
	if o.AttackAfter == 0 {
		o.AttackAfter = o.Duration * 2 / 3
	}
	if o.AttackAfter < 0 || o.AttackAfter >= o.Duration {
		errs = append(errs, fmt.Errorf("attack_after %v: must be between 0 and the duration %v", o.AttackAfter, o.Duration))
	}
	if o.AttackWindow < 0 || o.AttackAfter+o.AttackWindow > o.Duration {
		errs = append(errs, fmt.Errorf("attack_window %v: must be between 0 and the time after attack_after (%v)", o.AttackWindow, o.Duration-o.AttackAfter))
	}
	tags := make(map[string]bool)
	for i, c := range o.Cohorts {
		switch {
		case o.Catalog.benign(c.Archetype) == nil:
			errs = append(errs, fmt.Errorf("cohort %d: no benign archetype %q (have %s)", i+1, c.Archetype, o.Catalog.benignNames()))
		case c.Tag == "" || tags[c.Tag]:
			errs = append(errs, fmt.Errorf("cohort %d: tag %q must be non-empty and unique", i+1, c.Tag))
		case c.Count < 0:
			errs = append(errs, fmt.Errorf("cohort %s: count %d must not be negative", c.Tag, c.Count))
		case c.History > 5*366*24*time.Hour || -c.History >= o.Duration:
			errs = append(errs, fmt.Errorf("cohort %s: history %v out of range", c.Tag, c.History))
		case c.QuietAfter < 0 || c.ResumeAfter < 0 || c.ResumeAfter > 0 && c.ResumeAfter <= c.QuietAfter:
			errs = append(errs, fmt.Errorf("cohort %s: quiet_after %v and resume_after %v: must be ≥ 0, resume after quiet", c.Tag, c.QuietAfter, c.ResumeAfter))
		}
		tags[c.Tag] = true
		total += max(c.Count, 0)
	}
	if total > maxCredentials {
		errs = append(errs, fmt.Errorf("credentials: %d in all, at most %d", total, maxCredentials))
	}
	return errors.Join(errs...)
}

func (c *Catalog) benignNames() string {
	var b []byte
	for i, x := range c.Benign {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, x.Name()...)
	}
	return string(b)
}

func (c *Catalog) attackNames() string {
	var b []byte
	for i, x := range c.Attacks {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, x.Name()...)
	}
	return string(b)
}

// World is what archetypes build traffic from: the API, the networks and
// the places owners live. It is read-only.
type World struct {
	api     *api
	nets    *netIndex
	locales []*Locale
}

func newWorld() *World {
	x := newNetIndex()
	return &World{api: newAPI(), nets: x, locales: locales(x)}
}

// Locales returns the places owners live.
func (w *World) Locales() []*Locale { return w.locales }

// Networks returns the networks for which keep is true, in table order.
func (w *World) Networks(keep func(*Network) bool) []*Network { return w.nets.filter(keep) }

// Endpoints returns the simulated API's routes: the ordinary ones, the
// administrative ones (Kind Admin), and /healthz last.
func (w *World) Endpoints() []*Endpoint { return w.api.all }

// Generate makes the traffic opts describe.
func Generate(opts Options) (*Traffic, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	w := newWorld()
	start, end := opts.Start, opts.Start.Add(opts.Duration)
	tr := &Traffic{Start: start, End: end, From: start}

	var streams [][]Item
	owner := func(b Benign, name string, n int, c0 Cohort) {
		r := streamRand(opts.Seed, "owner/"+name)
		c := b.NewCredential(w, r, n)
		c.Name, c.Archetype = name, b.Name()
		c.Active = start.Add(-c0.History)
		tr.From = earliest(tr.From, c.Active)
		spans := [][2]time.Time{{c.Active, end}}
		if c0.QuietAfter > 0 {
			c.Quiet = c.Active.Add(c0.QuietAfter)
			spans[0][1] = earliest(c.Quiet, end)
			if c0.ResumeAfter > 0 {
				c.Resume = c.Active.Add(c0.ResumeAfter)
				spans = append(spans, [2]time.Time{c.Resume, end})
			}
		}
		tr.Credentials = append(tr.Credentials, c)
		e := newEmitter(w, r, c, Owner, b.Name(), c.Active, end)
		for _, s := range spans {
			if s[0].Before(s[1]) {
				e.start, e.end = s[0].UnixNano(), s[1].UnixNano()
				b.Traffic(e, c, s[0], s[1])
			}
		}
		streams = append(streams, e.items)
	}
	for _, b := range opts.Catalog.Benign {
		for n := 1; n <= opts.Credentials[b.Name()]; n++ {
			owner(b, b.Name()+"-"+strconv.Itoa(n), n, Cohort{})
		}
	}
	for _, c0 := range opts.Cohorts {
		b := opts.Catalog.benign(c0.Archetype)
		for n := 1; n <= c0.Count; n++ {
			owner(b, b.Name()+"-"+c0.Tag+"-"+strconv.Itoa(n), n, c0)
		}
	}

	attacked := make(map[*Credential]bool)
	runs := make(map[string]int)
	earliestAttack := start.Add(opts.AttackAfter)
	for i, name := range opts.Attacks {
		a := opts.Catalog.attack(name)
		eligible := func(c *Credential) bool { return activeBefore(c, earliestAttack) }
		if f, ok := a.(VictimFilter); ok {
			eligible = func(c *Credential) bool { return f.Eligible(c, earliestAttack) }
		}
		prefs := a.Victims()
		if k := runs[name]; len(prefs) > 0 {
			k %= len(prefs)
			prefs = append(slices.Clone(prefs[k:]), prefs[:k]...)
		}
		runs[name]++
		v := pickVictim(tr.Credentials, prefs, attacked, eligible)
		if v == nil {
			return nil, fmt.Errorf("simulate: attack %s: no credential left to attack (%d credentials, %d attacks)", name, len(tr.Credentials), len(opts.Attacks))
		}
		attacked[v] = true
		r := streamRand(opts.Seed, "attack/"+strconv.Itoa(i)+"/"+name+"/"+v.Name)
		room := opts.AttackWindow
		if room == 0 {
			room = (opts.Duration - opts.AttackAfter) / 4
		}
		at := start.Add(opts.AttackAfter + time.Duration(r.Int64N(int64(room)+1))).Truncate(time.Second)
		e := newEmitter(w, r, v, Attacker, name, at, end)
		e.fresh = 0.9
		summary := a.Traffic(e, v, at, end)
		run := AttackRun{Attack: name, Victim: v, Start: at, Summary: summary}
		seen := make(map[string]bool)
		for _, it := range e.items {
			if !seen[it.Event.TokenID] {
				seen[it.Event.TokenID] = true
				run.Tokens = append(run.Tokens, it.Event.TokenID)
			}
		}
		tr.Attacks = append(tr.Attacks, run)
		streams = append(streams, e.items)
	}

	tr.Items = merge(streams)
	for i := range tr.Items {
		id := "req-" + fmt.Sprintf("%06d", i+1)
		tr.Items[i].Event.RequestID = id
		tr.Items[i].Event.Has |= event.HasRequestID
		tr.Items[i].Label.RequestID = id
		tr.Items[i].Label.TokenID = tr.Items[i].Event.TokenID
	}
	return tr, nil
}

// activeBefore reports whether c's owner began using it at least 12 hours
// before t and has not gone quiet: the victims of most attacks.
func activeBefore(c *Credential, t time.Time) bool {
	return c.Quiet.IsZero() && !c.Active.After(t.Add(-12*time.Hour))
}

// pickVictim returns the first eligible credential not yet attacked of the
// first preferred archetype that has one, else of any archetype.
func pickVictim(creds []*Credential, prefer []string, attacked map[*Credential]bool, eligible func(*Credential) bool) *Credential {
	for _, arch := range prefer {
		for _, c := range creds {
			if c.Archetype == arch && !attacked[c] && eligible(c) {
				return c
			}
		}
	}
	for _, c := range creds {
		if !attacked[c] && eligible(c) {
			return c
		}
	}
	return nil
}

func streamRand(seed uint64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// merge sorts each stream by time (stably: archetypes with parallel
// workers emit slightly out of order) and merges them; ties go to the
// earlier stream.
func merge(streams [][]Item) []Item {
	total := 0
	for _, s := range streams {
		if byTime := func(a, b Item) int { return cmpInt(a.Event.Time, b.Event.Time) }; !slices.IsSortedFunc(s, byTime) {
			slices.SortStableFunc(s, byTime)
		}
		total += len(s)
	}
	out := make([]Item, 0, total)
	h := make(mergeHeap, 0, len(streams))
	for i, s := range streams {
		if len(s) > 0 {
			h = append(h, cursor{stream: i, items: s})
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		c := &h[0]
		out = append(out, c.items[0])
		c.items = c.items[1:]
		if len(c.items) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type cursor struct {
	stream int
	items  []Item
}

type mergeHeap []cursor

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].items[0].Event.Time, h[j].items[0].Event.Time
	return a < b || a == b && h[i].stream < h[j].stream
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Emitter collects one stream's requests: one credential's owner, or one
// attack on it.
type Emitter struct {
	w          *World
	r          *rand.Rand
	cred       *Credential
	role       Role
	scenario   string
	start, end int64
	items      []Item
	// fresh is the chance that an object id in a path is one not used
	// before; owners mostly revisit the same objects.
	fresh float64
	ids   map[string][]string
}

func newEmitter(w *World, r *rand.Rand, c *Credential, role Role, scenario string, start, end time.Time) *Emitter {
	return &Emitter{w: w, r: r, cred: c, role: role, scenario: scenario,
		start: start.UnixNano(), end: end.UnixNano(), fresh: 0.15, ids: make(map[string][]string)}
}

// Rand returns the stream's random source.
func (e *Emitter) Rand() *rand.Rand { return e.r }

// World returns the simulated world.
func (e *Emitter) World() *World { return e.w }

// Len returns the number of requests emitted so far.
func (e *Emitter) Len() int { return len(e.items) }

// Request is one call to emit.
type Request struct {
	At       time.Time
	Net      *Network
	Addr     netip.Addr
	Endpoint *Endpoint
	// Path is the raw path; empty means the endpoint's template with
	// object ids. Query is appended to it.
	Path, Query string
	// Status; zero means the endpoint's success status.
	Status int
	// Bytes of the response; zero means drawn from the endpoint (or from
	// the error's size for an error status).
	Bytes int64
	// UserAgent; empty means the credential's.
	UserAgent string
	// TokenID; empty means the credential's. The minted attack uses new
	// tokens of the victim's client.
	TokenID string
}

// Emit records q and returns when its response completed, for callers that
// chain requests. Requests outside the stream's time range are dropped.
func (e *Emitter) Emit(q Request) time.Time {
	ep, r := q.Endpoint, e.r
	status := q.Status
	if status == 0 {
		status = ep.Status
	}
	bytes := q.Bytes
	if bytes == 0 {
		switch {
		case status < 300:
			bytes = ep.Response(r)
		case status == 304:
			bytes = 0
		case status < 500:
			bytes = logNormal(r, 150, 0.15, 40)
		default:
			bytes = logNormal(r, 60, 0.1, 20)
		}
	}
	lat := ep.Time(r, bytes)
	if status >= 400 && status < 500 {
		lat = math.Round(max(1, 12*math.Exp(0.4*r.NormFloat64()))*10) / 10
	}
	path := q.Path
	if path == "" {
		path = e.path(ep.Template)
	}
	path += q.Query
	ua := q.UserAgent
	if ua == "" {
		ua = e.cred.UserAgent
	}
	t := q.At.UnixNano() / 1e6 * 1e6 // millisecond resolution, as gateways log
	done := q.At.Add(time.Duration(lat * float64(time.Millisecond)))
	if t < e.start || t >= e.end {
		return done
	}
	lat0, lon0 := q.Net.Geo(q.Addr)
	tok := q.TokenID
	if tok == "" {
		tok = e.cred.TokenID
	}
	ev := event.Event{
		Time:         t,
		TokenID:      tok,
		SourceIP:     q.Addr,
		Endpoint:     ep.Template,
		Status:       status,
		Method:       ep.Method,
		Path:         path,
		Scope:        ep.Scope,
		UserAgent:    ua,
		ClientID:     e.cred.ClientID,
		Country:      q.Net.Country,
		LatencyMS:    lat,
		PayloadBytes: bytes,
		ASN:          q.Net.ASN,
		Lat:          lat0,
		Lon:          lon0,
		Has: event.HasMethod | event.HasPath | event.HasLatency | event.HasPayloadBytes |
			event.HasUserAgent | event.HasCountry | event.HasASN | event.HasGeo,
	}
	if ev.Scope != "" {
		ev.Has |= event.HasScope
	}
	if ev.ClientID != "" {
		ev.Has |= event.HasClientID
	}
	if ep.Body > 0 {
		ev.RequestBytes = logNormal(r, ep.Body, 0.4, 2)
		ev.Has |= event.HasRequestBytes
	}
	e.items = append(e.items, Item{Event: ev, Label: Label{Role: e.role, Scenario: e.scenario}})
	return done
}

// path fills the template's {id} placeholders with object ids, reusing the
// stream's earlier ids unless a fresh one is drawn.
func (e *Emitter) path(tmpl string) string {
	res := resource(tmpl)
	if res == "" {
		return tmpl
	}
	out := make([]byte, 0, len(tmpl)+16)
	for i := 0; i < len(tmpl); {
		if tmpl[i] == '{' {
			j := i + 1
			for j < len(tmpl) && tmpl[j] != '}' {
				j++
			}
			out = append(out, e.objectID(res)...)
			i = j + 1
			continue
		}
		out = append(out, tmpl[i])
		i++
	}
	return string(out)
}

func (e *Emitter) objectID(res string) string {
	ids := e.ids[res]
	if len(ids) > 0 && e.r.Float64() >= e.fresh {
		// Favour recent objects: a skewed pick over the working set.
		k := len(ids) - 1 - int(float64(len(ids))*math.Pow(e.r.Float64(), 2.5))
		return ids[max(k, 0)]
	}
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 0, len(res)+11)
	b = append(b, res...)
	b = append(b, '_')
	for range 10 {
		b = append(b, digits[e.r.IntN(len(digits))])
	}
	id := string(b)
	if len(ids) >= 64 {
		ids = ids[1:]
	}
	e.ids[res] = append(ids, id)
	return id
}

// tokenID returns a token id in the form vigil's fingerprints take.
func tokenID(r *rand.Rand) string {
	return fmt.Sprintf("%s%016x%016x", event.FingerprintPrefix, r.Uint64(), r.Uint64())
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func itoa(n int) string { return strconv.Itoa(n) }
