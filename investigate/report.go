package investigate

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/policy"
)

// Report is an investigation: which credentials were abused, since when,
// from where, doing what, and why vigil thinks so.
type Report struct {
	// MinLevel is the decision from which an event counted as suspicious.
	MinLevel policy.Level
	// Thresholds are the policy's, as Options gave them (zero: unknown).
	Thresholds policy.Ladder

	// Events judged, and those at or above MinLevel.
	Events, SuspiciousEvents int64
	// Decisions counts the events per decision.
	Decisions [policy.NumLevels]int64
	// First and Last are the earliest and latest event times (zero
	// without events).
	First, Last time.Time
	// CredentialsSeen counts the credentials; when some were dropped it is
	// an upper bound, as one seen again after being dropped counts twice.
	CredentialsSeen int
	// Dropped credentials were no longer tracked to stay within
	// Options.MaxCredentials; DroppedSuspicious of them had suspicious
	// events.
	Dropped, DroppedSuspicious int

	// Credentials are those tracked with at least one suspicious event,
	// the highest peak risk first, then the most suspicious events.
	Credentials []Credential
	// Omitted counts suspicious credentials left out by Top.
	Omitted int
	// Others summarizes the credentials without suspicious events.
	Others Others
}

// Suspicious returns the number of suspicious credentials tracked, listed
// or omitted.
func (r *Report) Suspicious() int { return len(r.Credentials) + r.Omitted }

// Top returns r with at most n credentials listed (all for n ≤ 0); the
// others are counted in Omitted.
func (r Report) Top(n int) Report {
	if n > 0 && len(r.Credentials) > n {
		r.Omitted += len(r.Credentials) - n
		r.Credentials = r.Credentials[:n:n]
	}
	return r
}

// Others summarizes the credentials without suspicious events.
type Others struct {
	Credentials int
	Events      int64
	// Riskiest are the five with the highest peak risk above 0: the
	// nearest misses.
	Riskiest []Brief
}

// Brief is a credential in one line.
type Brief struct {
	TokenID, ClientID string
	Events            int64
	Peak              Point
}

// Credential is the investigation of one credential with suspicious events.
type Credential struct {
	TokenID  string
	ClientID string // the client of its first event, if any
	// FirstSeen and LastSeen are its earliest and latest event times.
	FirstSeen, LastSeen time.Time
	Events              int64
	Suspicious          int64 // events at or above MinLevel
	// Peak is its highest risk, at its first event that reached it.
	Peak Point
	// Deviation is its first event at or above MinLevel.
	Deviation Deviation
	// Origins are where its suspicious events came from compared with
	// where its events before the deviation did: addresses, ASNs and
	// countries, in that order.
	Origins []Origin
	// Activity is what it did from the deviation on.
	Activity Activity
	// Reasons are the signals behind its suspicious events, the most
	// frequent first.
	Reasons []ReasonCount
	// Timeline holds suspicious events in full, in input order: the first
	// ones, then the latest ones; TimelineOmitted suspicious events
	// between the two were not kept (they are at TimelineGap).
	Timeline        []Entry
	TimelineOmitted int64
	TimelineGap     int
	// Series is the risk of all of its events over time, downsampled: each
	// point is the riskiest of the Events it stands for.
	Series []Point
	// HistoryIncomplete is set for a credential that may have been dropped
	// before (MaxCredentials) and tracked again: what it did before, and
	// so what is "new", is partly forgotten.
	HistoryIncomplete bool
}

// Point is a risk at a time.
type Point struct {
	Time   time.Time
	Risk   float64
	Level  policy.Level
	Events int64 // the events it stands for (series points)
}

// Deviation is the first suspicious event of a credential.
type Deviation struct {
	Entry
	// Reasons are all of the event's reasons, in the model's order.
	Reasons []Explanation
	// EventsBefore counts the credential's events before it.
	EventsBefore int64
}

// Entry is one event in full.
type Entry struct {
	Time     time.Time
	IP       netip.Addr
	ASN      uint32 // 0: unknown
	Country  string // "": unknown
	Endpoint string
	Status   int
	Bytes    int64 // payload (response) bytes
	Risk     float64
	Level    policy.Level
	// Reason is the reason that contributed most (Signal "" for none).
	Reason Explanation
}

// Explanation is one reason of one event.
type Explanation struct {
	Signal       string
	Contribution float64
	Detail       string
}

// Origin compares one dimension of where a credential's requests came
// from: the values of its suspicious events and of its events before the
// deviation, each with the most events first.
type Origin struct {
	Kind   string // "address", "ASN" or "country"
	During []Place
	Before []Place
	// DuringOther and BeforeOther count events whose value was beyond
	// the bound on values kept.
	DuringOther, BeforeOther int64
}

// Place is one value of an Origin.
type Place struct {
	Value  string // "203.0.113.7", "AS14061", "SG"
	Events int64
	// New: no event before the deviation had this value. It is set only
	// when that is certain (values beyond the bounds are remembered
	// hashed, so a collision can only hide novelty, never invent it).
	New bool
	// Since is, for a value of the suspicious events that the history
	// before the deviation had too, when the credential first used it: an
	// attacker's first requests may have stayed under the alert.
	Since time.Time
}

// Activity is what a credential did from its deviation on, suspicious
// events or not.
type Activity struct {
	Events, Suspicious int64
	// Bytes are payload (response) bytes; SuspiciousBytes those of the
	// suspicious events.
	Bytes, SuspiciousBytes int64
	// Status4xx and Status5xx count error answers; AuthFailures the 401
	// and 403 among them.
	Status4xx, Status5xx, AuthFailures int64
	// Endpoints, the most suspicious events first, then the most events.
	Endpoints []EndpointUse
	// OtherEndpoints counts events on endpoints beyond the bound.
	OtherEndpoints int64
}

// EndpointUse is one endpoint's use since a deviation.
type EndpointUse struct {
	Endpoint                  string
	Events, Suspicious, Bytes int64
	Errors                    int64 // 4xx and 5xx
	// New: the credential never used it before the deviation (certain,
	// as for Place.New).
	New bool
}

// ReasonCount is one signal across a credential's suspicious events.
type ReasonCount struct {
	Signal string
	Events int64   // suspicious events it contributed to
	Max    float64 // its largest contribution
	// Example is the detail of the event where it contributed Max, the
	// first such, at ExampleAt.
	Example   string
	ExampleAt time.Time
}

// nearMisses is the length of Others.Riskiest.
const nearMisses = 5

// Report returns the investigation of the events observed so far.
func (c *Collector) Report() Report {
	r := Report{
		MinLevel:          c.opts.MinLevel,
		Thresholds:        c.opts.Thresholds,
		Events:            c.events,
		SuspiciousEvents:  c.suspicious,
		Decisions:         c.levels,
		CredentialsSeen:   c.admitted,
		Dropped:           c.dropped,
		DroppedSuspicious: c.droppedSuspicious,
	}
	if c.events > 0 {
		r.First, r.Last = utc(c.first), utc(c.last)
	}
	for _, cr := range c.creds {
		if cr.dev == nil {
			r.Others.Credentials++
			r.Others.Events += cr.events
			if cr.peak.risk > 0 {
				r.Others.Riskiest = append(r.Others.Riskiest, Brief{
					TokenID: cr.tokenID, ClientID: cr.clientID, Events: cr.events, Peak: cr.peak.public(),
				})
			}
			continue
		}
		r.Credentials = append(r.Credentials, c.credential(cr))
	}
	slices.SortFunc(r.Credentials, func(a, b Credential) int {
		return cmp.Or(
			cmp.Compare(b.Peak.Risk, a.Peak.Risk),
			cmp.Compare(b.Suspicious, a.Suspicious),
			strings.Compare(a.TokenID, b.TokenID),
		)
	})
	slices.SortFunc(r.Others.Riskiest, func(a, b Brief) int {
		return cmp.Or(cmp.Compare(b.Peak.Risk, a.Peak.Risk), strings.Compare(a.TokenID, b.TokenID))
	})
	if len(r.Others.Riskiest) > nearMisses {
		r.Others.Riskiest = r.Others.Riskiest[:nearMisses:nearMisses]
	}
	return r
}

func utc(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func (p point) public() Point { return Point{Time: utc(p.t), Risk: p.risk, Level: p.level, Events: 1} }

func (c *Collector) credential(cr *cred) Credential {
	d := cr.dev
	out := Credential{
		TokenID:           cr.tokenID,
		ClientID:          cr.clientID,
		FirstSeen:         utc(cr.first),
		LastSeen:          utc(cr.last),
		Events:            cr.events,
		Suspicious:        cr.suspicious,
		Peak:              cr.peak.public(),
		HistoryIncomplete: cr.readmitted,
		Deviation: Deviation{
			Entry:        c.publicEntry(&d.first),
			Reasons:      d.reasons,
			EventsBefore: d.before,
		},
	}
	out.Origins = []Origin{
		origin("address", &d.addrs, &cr.addrs, netip.Addr.String),
		origin("ASN", &d.asns, &cr.asns, func(a uint32) string { return "AS" + itoa(int64(a)) }),
		origin("country", &d.countries, &cr.countries, countryName),
	}

	a := &d.activity
	out.Activity = Activity{
		Events: a.events, Suspicious: a.suspicious, Bytes: a.bytes, SuspiciousBytes: a.suspectBytes,
		Status4xx: a.c4xx, Status5xx: a.c5xx, AuthFailures: a.authFails, OtherEndpoints: d.otherEPs,
	}
	for _, u := range d.endpoints {
		out.Activity.Endpoints = append(out.Activity.Endpoints, EndpointUse{
			Endpoint: c.eps.names[u.id], Events: u.events, Suspicious: u.suspicious,
			Bytes: u.bytes, Errors: u.errs, New: u.fresh,
		})
	}
	slices.SortFunc(out.Activity.Endpoints, func(a, b EndpointUse) int {
		return cmp.Or(cmp.Compare(b.Suspicious, a.Suspicious), cmp.Compare(b.Events, a.Events), strings.Compare(a.Endpoint, b.Endpoint))
	})

	for i := range d.signals {
		st := &d.signals[i]
		if st.events == 0 {
			continue
		}
		out.Reasons = append(out.Reasons, ReasonCount{
			Signal: c.signalIndexName(i), Events: st.events, Max: st.max,
			Example: st.example, ExampleAt: utc(st.exampleAt),
		})
	}
	slices.SortFunc(out.Reasons, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), cmp.Compare(b.Max, a.Max), strings.Compare(a.Signal, b.Signal))
	})

	for i := range d.head {
		out.Timeline = append(out.Timeline, c.publicEntry(&d.head[i]))
	}
	out.TimelineGap = len(out.Timeline)
	for i := range d.tail {
		out.Timeline = append(out.Timeline, c.publicEntry(&d.tail[(d.tailPos+i)%len(d.tail)]))
	}
	out.TimelineOmitted = cr.suspicious - int64(len(out.Timeline))

	for i, p := range cr.series.pts {
		out.Series = append(out.Series, Point{Time: utc(p.t), Risk: float64(p.risk), Level: p.level, Events: cr.series.events(i)})
	}
	for i, p := range d.series.pts {
		out.Series = append(out.Series, Point{Time: utc(p.t), Risk: float64(p.risk), Level: p.level, Events: d.series.events(i)})
	}
	return out
}

func origin[K comparable](kind string, during, before *tally[K], name func(K) string) Origin {
	o := Origin{Kind: kind, DuringOther: during.other, BeforeOther: before.other}
	for _, it := range during.items {
		pl := Place{Value: name(it.key), Events: it.n, New: it.fresh}
		if i := before.find(it.key); i >= 0 {
			pl.Since = utc(before.items[i].first)
		}
		o.During = append(o.During, pl)
	}
	for _, it := range before.items {
		o.Before = append(o.Before, Place{Value: name(it.key), Events: it.n})
	}
	byEvents := func(a, b Place) int {
		return cmp.Or(cmp.Compare(b.Events, a.Events), strings.Compare(a.Value, b.Value))
	}
	slices.SortFunc(o.During, byEvents)
	slices.SortFunc(o.Before, byEvents)
	return o
}

func (c *Collector) publicEntry(e *entry) Entry {
	out := Entry{
		Time: utc(e.t), IP: e.ip, ASN: e.asn, Endpoint: e.endpoint, Status: e.status,
		Bytes: e.bytes, Risk: e.risk, Level: e.level,
	}
	if e.country != 0 {
		out.Country = countryName(e.country)
	}
	if e.signal >= 0 {
		out.Reason = Explanation{Signal: c.signalIndexName(e.signal), Contribution: e.contrib, Detail: e.detail}
	}
	return out
}

func (c *Collector) signalIndexName(i int) string {
	if m := c.opts.Model; m != nil && i < len(m.Signals) {
		return m.Signals[i].Name()
	}
	return "signal " + itoa(int64(i))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
