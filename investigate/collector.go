package investigate

import (
	"cmp"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/score"
)

// Defaults and bounds of Options.
const (
	DefaultMaxCredentials = 100_000
	DefaultMaxTimeline    = 500
	// MinTimeline is the smallest MaxTimeline: smaller values are raised
	// to it.
	MinTimeline = 64
)

// Bounds on what is kept per credential (see doc.go).
const (
	// Values kept of the events before a deviation, per dimension.
	maxBeforeAddrs     = 32
	maxBeforeASNs      = 16
	maxBeforeCountries = 16
	maxBeforeEndpoints = 32
	// Points of the risk series before a deviation.
	maxBeforeSeries = 32
	// Values kept of the suspicious events, per dimension, and endpoints
	// kept of the events since the deviation.
	maxDuringValues    = 64
	maxDuringEndpoints = 256
	// The endpoint table shared by all credentials: distinct endpoints
	// and their bytes. Endpoints beyond it are "(other endpoints)".
	maxEndpoints     = 1 << 16
	maxEndpointBytes = 16 << 20
	// Bits of the filter that remembers dropped credentials.
	droppedBits = 1 << 20
)

// Options configure a Collector. The zero value is usable.
type Options struct {
	// Model names the reasons and renders their details; it must be the
	// engine's (app.Parts.Model). Without it reasons are named by number
	// and have no details.
	Model *score.Model
	// MinLevel is the decision from which an event is suspicious; zero
	// (allow) means policy.Throttle, the lowest that makes sense. Levels
	// above block are taken as block.
	MinLevel policy.Level
	// MaxCredentials bounds the credentials tracked; 0 means
	// DefaultMaxCredentials. Beyond it the least risky tenth are dropped
	// and counted (Report.Dropped).
	MaxCredentials int
	// MaxTimeline bounds the points kept per credential; 0 means
	// DefaultMaxTimeline, and values below MinTimeline are raised to it.
	// Half of them are suspicious events in full (the first quarter of the
	// budget for the earliest, a quarter for the latest), half a
	// downsampled risk series of all of its events (at most 32 points
	// before its deviation, the rest from it on).
	MaxTimeline int
	// Thresholds are the policy's (app.Parts.Ladder), drawn on the charts;
	// the zero Ladder draws none.
	Thresholds policy.Ladder
}

func (o *Options) setDefaults() {
	if o.MinLevel == policy.Allow {
		o.MinLevel = policy.Throttle
	}
	o.MinLevel = min(o.MinLevel, policy.Block)
	if o.MaxCredentials <= 0 {
		o.MaxCredentials = DefaultMaxCredentials
	}
	if o.MaxTimeline <= 0 {
		o.MaxTimeline = DefaultMaxTimeline
	}
	o.MaxTimeline = max(o.MaxTimeline, MinTimeline)
}

// Collector gathers, event by event, what an investigation reports. It is
// not safe for concurrent use: Observe and Report must not overlap. As
// replay.Options.Observe it is called on the engine's goroutine, and the
// report is taken after replay.Run returns.
type Collector struct {
	opts  Options
	seed  maphash.Seed
	creds map[string]*cred
	eps   endpointTable

	// Budgets derived from opts.MaxTimeline.
	headCap, tailCap          int // suspicious events kept in full
	beforeSeries, afterSeries int // points of the risk series

	events, suspicious int64
	levels             [policy.NumLevels]int64
	first, last        int64
	admitted           int // credentials started (a dropped one seen again twice)
	dropped            int
	droppedSuspicious  int
	droppedSeen        *[droppedBits / 64]uint64

	scratch []byte
}

// NewCollector returns a Collector.
func NewCollector(o Options) *Collector {
	o.setDefaults()
	detail := o.MaxTimeline / 2
	c := &Collector{
		opts:    o,
		seed:    maphash.MakeSeed(),
		creds:   make(map[string]*cred),
		eps:     endpointTable{ids: make(map[string]uint32), names: []string{"(other endpoints)"}},
		headCap: (detail + 1) / 2,
		tailCap: detail / 2,
	}
	c.beforeSeries = min(maxBeforeSeries, o.MaxTimeline/8) &^ 1
	c.afterSeries = (o.MaxTimeline - detail - c.beforeSeries) &^ 1
	return c
}

// cred is one credential's state.
type cred struct {
	tokenID, clientID string
	first, last       int64
	events            int64
	suspicious        int64
	peak              point
	readmitted        bool // possibly dropped earlier: its history is partial

	// Of the events before the deviation (all of them until there is one).
	addrs     tally[netip.Addr]
	asns      tally[uint32]
	countries tally[uint16]
	endpoints tally[uint32]
	series    series

	dev *deviation // nil until the first suspicious event
}

// point is an event's risk and decision, exact.
type point struct {
	t     int64
	risk  float64
	level policy.Level
}

// deviation is what is kept of a credential from its first suspicious
// event on.
type deviation struct {
	first   entry
	reasons []Explanation // all of the first suspicious event's
	before  int64         // events before it

	// Of the suspicious events.
	addrs     tally[netip.Addr]
	asns      tally[uint32]
	countries tally[uint16]
	signals   [score.MaxReasons]signalTally

	// Of all events since the deviation.
	activity    activity
	endpoints   []endpointUse
	endpointIdx map[uint32]int
	otherEPs    int64

	head    []entry // the first suspicious events
	tail    []entry // a ring of the latest ones after head
	tailPos int
	series  series
}

type activity struct {
	events, suspicious    int64
	bytes, suspectBytes   int64
	c4xx, c5xx, authFails int64
}

type endpointUse struct {
	id                              uint32
	events, suspicious, bytes, errs int64
	fresh                           bool
}

type signalTally struct {
	events    int64
	max       float64
	example   string
	exampleAt int64
}

// entry is one suspicious event, kept in full.
type entry struct {
	t        int64
	ip       netip.Addr
	asn      uint32
	country  uint16
	endpoint string
	status   int
	bytes    int64
	risk     float64
	level    policy.Level
	signal   int // the top reason's signal, -1 for none
	contrib  float64
	detail   string
}

// endpointTable interns endpoints: credentials keep small ids, and the
// strings are copied once.
type endpointTable struct {
	ids   map[string]uint32
	names []string // names[0] stands for the endpoints beyond the bounds
	bytes int
}

func (t *endpointTable) id(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	if len(t.names) >= maxEndpoints || t.bytes+len(s) > maxEndpointBytes {
		return 0
	}
	s = strings.Clone(s)
	id := uint32(len(t.names))
	t.ids[s] = id
	t.names = append(t.names, s)
	t.bytes += len(s)
	return id
}

// country packs an ISO code ("DE") into 16 bits; 0 is none.
func country(ev *event.Event) uint16 {
	if ev.Has&event.HasCountry == 0 || len(ev.Country) != 2 {
		return 0
	}
	return uint16(ev.Country[0])<<8 | uint16(ev.Country[1])
}

func countryName(c uint16) string { return string([]byte{byte(c >> 8), byte(c)}) }

// Observe records one judged event. It copies what it keeps: ev's strings
// need only be valid during the call. For an event below MinLevel of a
// credential already tracked it allocates nothing once the credential's
// bounded state has grown.
func (c *Collector) Observe(ev *event.Event, v *engine.Verdict) {
	cr := c.creds[ev.TokenID]
	if cr == nil {
		cr = c.admit(ev)
	}
	t := ev.Time
	if c.events == 0 || t < c.first {
		c.first = t
	}
	if c.events == 0 || t > c.last {
		c.last = t
	}
	c.events++
	level := min(v.Level, policy.Block)
	c.levels[level]++
	suspicious := level >= c.opts.MinLevel

	if cr.events == 0 || t < cr.first {
		cr.first = t
	}
	if cr.events == 0 || t > cr.last {
		cr.last = t
	}
	cr.events++
	if cr.events == 1 || v.Risk > cr.peak.risk {
		cr.peak = point{t, v.Risk, level}
	}
	s := sample{t: t, risk: float32(v.Risk), level: level}

	if cr.dev == nil && !suspicious {
		cr.addrs.count(ev.SourceIP, t, maxBeforeAddrs, true, c.seed)
		if ev.Has&event.HasASN != 0 {
			cr.asns.count(ev.ASN, t, maxBeforeASNs, true, c.seed)
		}
		if cc := country(ev); cc != 0 {
			cr.countries.count(cc, t, maxBeforeCountries, true, c.seed)
		}
		cr.endpoints.count(c.eps.id(ev.Endpoint), t, maxBeforeEndpoints, true, c.seed)
		cr.series.add(s)
		return
	}
	if cr.dev == nil {
		c.deviate(cr, ev, v, level)
	}
	d := cr.dev
	d.series.add(s)
	c.since(cr, d, ev, suspicious)
	if suspicious {
		c.suspicious++
		cr.suspicious++
		c.suspect(cr, d, ev, v, level)
	}
}

// admit starts tracking ev's credential, dropping the least risky ones
// first if the bound is reached.
func (c *Collector) admit(ev *event.Event) *cred {
	if len(c.creds) >= c.opts.MaxCredentials {
		c.evict()
	}
	cr := &cred{tokenID: strings.Clone(ev.TokenID)}
	if ev.Has&event.HasClientID != 0 {
		cr.clientID = strings.Clone(ev.ClientID)
	}
	cr.series.limit = c.beforeSeries
	if c.droppedSeen != nil {
		h := maphash.String(c.seed, cr.tokenID) % droppedBits
		cr.readmitted = c.droppedSeen[h/64]&(1<<(h%64)) != 0
	}
	c.creds[cr.tokenID] = cr
	c.admitted++
	return cr
}

// evict drops the least risky tenth of the credentials tracked: those
// without suspicious events first, the lowest peak risk first, then the
// fewest suspicious events and the longest unseen. The order is total,
// so what is dropped does not depend on map order.
func (c *Collector) evict() {
	all := make([]*cred, 0, len(c.creds))
	for _, cr := range c.creds {
		all = append(all, cr)
	}
	slices.SortFunc(all, func(a, b *cred) int {
		return cmp.Or(
			cmp.Compare(min(a.suspicious, 1), min(b.suspicious, 1)),
			cmp.Compare(a.peak.risk, b.peak.risk),
			cmp.Compare(a.suspicious, b.suspicious),
			cmp.Compare(a.last, b.last),
			strings.Compare(a.tokenID, b.tokenID),
		)
	})
	if c.droppedSeen == nil {
		c.droppedSeen = new([droppedBits / 64]uint64)
	}
	for _, cr := range all[:max(1, c.opts.MaxCredentials/10)] {
		delete(c.creds, cr.tokenID)
		c.dropped++
		if cr.suspicious > 0 {
			c.droppedSuspicious++
		}
		h := maphash.String(c.seed, cr.tokenID) % droppedBits
		c.droppedSeen[h/64] |= 1 << (h % 64)
	}
}

// deviate starts the deviation of cr at ev, its first suspicious event.
func (c *Collector) deviate(cr *cred, ev *event.Event, v *engine.Verdict, level policy.Level) {
	d := &deviation{before: cr.events - 1, endpointIdx: make(map[uint32]int)}
	d.series.limit = c.afterSeries
	d.first = c.entry(ev, v, level)
	d.reasons = make([]Explanation, v.N)
	for i := range v.N {
		r := &v.Reasons[i]
		d.reasons[i] = Explanation{Signal: c.signalIndexName(int(r.Signal)), Contribution: r.Contribution, Detail: c.detail(ev, r)}
	}
	cr.dev = d
}

// since counts ev, an event at or after the deviation.
func (c *Collector) since(cr *cred, d *deviation, ev *event.Event, suspicious bool) {
	a := &d.activity
	a.events++
	a.bytes += ev.PayloadBytes
	if suspicious {
		a.suspicious++
		a.suspectBytes += ev.PayloadBytes
	}
	failed := ev.Status >= 400
	switch {
	case ev.Status >= 500:
		a.c5xx++
	case ev.Status >= 400:
		a.c4xx++
	}
	if ev.IsAuthFailure() {
		a.authFails++
	}
	id := c.eps.id(ev.Endpoint)
	i, ok := d.endpointIdx[id]
	if !ok {
		if len(d.endpoints) >= maxDuringEndpoints {
			d.otherEPs++
			return
		}
		i = len(d.endpoints)
		d.endpointIdx[id] = i
		d.endpoints = append(d.endpoints, endpointUse{id: id, fresh: id != 0 && cr.endpoints.unseen(id, c.seed)})
	}
	u := &d.endpoints[i]
	u.events++
	u.bytes += ev.PayloadBytes
	if suspicious {
		u.suspicious++
	}
	if failed {
		u.errs++
	}
}

// suspect records ev, a suspicious event.
func (c *Collector) suspect(cr *cred, d *deviation, ev *event.Event, v *engine.Verdict, level policy.Level) {
	d.addrs.countNew(ev.SourceIP, maxDuringValues, &cr.addrs, c.seed)
	if ev.Has&event.HasASN != 0 {
		d.asns.countNew(ev.ASN, maxDuringValues, &cr.asns, c.seed)
	}
	if cc := country(ev); cc != 0 {
		d.countries.countNew(cc, maxDuringValues, &cr.countries, c.seed)
	}
	for i := range v.N {
		r := &v.Reasons[i]
		st := &d.signals[r.Signal%score.MaxReasons]
		st.events++
		if r.Contribution > st.max {
			st.max, st.exampleAt = r.Contribution, ev.Time
			st.example = c.detail(ev, r)
		}
	}
	switch {
	case len(d.head) < c.headCap:
		d.head = append(d.head, c.entry(ev, v, level))
	case len(d.tail) < c.tailCap:
		d.tail = append(d.tail, c.entry(ev, v, level))
	case c.tailCap > 0:
		d.tail[d.tailPos] = c.entry(ev, v, level)
		d.tailPos = (d.tailPos + 1) % c.tailCap
	}
}

// entry copies what a timeline shows of ev.
func (c *Collector) entry(ev *event.Event, v *engine.Verdict, level policy.Level) entry {
	e := entry{
		t: ev.Time, ip: ev.SourceIP, country: country(ev), status: ev.Status,
		bytes: ev.PayloadBytes, risk: v.Risk, level: level, signal: -1,
	}
	if ev.Has&event.HasASN != 0 {
		e.asn = ev.ASN
	}
	if id := c.eps.id(ev.Endpoint); id != 0 {
		e.endpoint = c.eps.names[id]
	} else {
		e.endpoint = strings.Clone(ev.Endpoint)
	}
	top := -1
	for i := range v.N {
		if top < 0 || v.Reasons[i].Contribution > v.Reasons[top].Contribution {
			top = i
		}
	}
	if top >= 0 {
		r := &v.Reasons[top]
		e.signal, e.contrib, e.detail = int(r.Signal), r.Contribution, c.detail(ev, r)
	}
	return e
}

func (c *Collector) detail(ev *event.Event, r *score.Reason) string {
	m := c.opts.Model
	if m == nil || int(r.Signal) >= len(m.Signals) {
		return ""
	}
	c.scratch = m.AppendDetail(c.scratch[:0], ev, r)
	return string(c.scratch)
}
