package profile

import (
	"encoding/binary"
	"math"
	mbits "math/bits"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/vigil-sec/vigil/event"
)

// Baseline is a learned distribution of a log-scaled quantity.
type Baseline struct {
	Mean float64 // of log1p(x)
	SD   float64
	N    uint32 // samples learned
}

// log1p is log(1+x) for the x ≥ 0 that baselines learn (counts and byte
// sizes), where 1+x is exact. It runs up to three times per event, so it
// uses a short series instead of math.Log1p (about 4× the cost here):
// ln(m) = 2·atanh((m-1)/(m+1)) with m reduced to [√½, √2), which is
// within 1e-9 of math.Log1p — baselines need three digits (TestLog1p).
func log1p(x float64) float64 {
	y := 1 + x
	if !(y >= 1 && y < math.Inf(1)) { // NaN, negative or infinite input
		return math.Log1p(x)
	}
	bits := math.Float64bits(y)
	e := int64(bits>>52) - 1023
	m := math.Float64frombits(bits&(1<<52-1) | 1023<<52)
	if m > math.Sqrt2 {
		m *= 0.5
		e++
	}
	t := (m - 1) / (m + 1)
	t2 := t * t
	return float64(e)*math.Ln2 + 2*t*(1+t2*(1.0/3+t2*(1.0/5+t2*(1.0/7+t2*(1.0/9)))))
}

// Typical returns the baseline's central value on the original scale.
func (b Baseline) Typical() float64 { return math.Expm1(b.Mean) }

// Z returns how many standard deviations log1p(x) lies above the mean, with
// the deviation floored at sdFloor so a perfectly regular history does not
// turn the smallest change into an outlier.
func (b Baseline) Z(x, sdFloor float64) float64 {
	return (log1p(x) - b.Mean) / max(b.SD, sdFloor)
}

func (e ewma) baseline() Baseline {
	return Baseline{Mean: float64(e.mean), SD: math.Sqrt(float64(e.vari)), N: e.n}
}

// Observation is an event measured against a profile as it was before the
// event. Observe fills it; the scorer reads it; Learn commits it.
type Observation struct {
	Now    int64  // Unix ns: the event time, or the profile's clock if that is later
	Skew   int64  // ns by which the event's own time lay before the profile's clock
	First  bool   // the credential's first event
	Events uint64 // events learned before this one
	Age    int64  // ns since the credential was first seen
	Idle   int64  // ns since its previous event

	// Decayed counters including this event.
	Reqs, Fails, NotFound, Bytes float64

	// Per dimension.
	Present     [NumDims]bool   // the event carries a value of this dimension
	Seen        [NumDims]bool   // the value was in the profile before this event
	Known       [NumDims]bool   // the value was established (trusted uses) before this event
	Distinct    [NumDims]uint8  // values remembered after this event (saturates at TableSize)
	Established [NumDims]uint8  // established values before this event
	Keys        [NumDims]uint32 // hashes of this event's values (ev.Keys)

	// Activity in the current bucket, this event included, and baselines.
	BucketReqs  float64
	BucketBytes float64
	Rate        Baseline // requests per active bucket
	Volume      Baseline // response bytes per active bucket
	Size        Baseline // response bytes per request
	HasSize     bool
	SizeBytes   float64 // this event's response bytes

	// Peer is the same event observed against the profile of the
	// credential's client (its client_id), or nil. A new credential has no
	// history of its own; its client's credentials do.
	Peer *Observation

	// Hosting: this request comes from a hosting or cloud provider's ASN;
	// HostingKnown: the credential has used one before (trusted).
	Hosting, HostingKnown bool
	// SinceWake is the time since the credential's last reactivation (a
	// request after Params.Dormancy of silence, this one included), or -1.
	SinceWake int64

	// Machine: every trusted request of the credential came from hosting
	// providers, never with a browser — a service or integration, not a
	// person (a person on a VPN also comes from hosting providers);
	// machines don't travel.
	Machine bool

	pathBits uint64 // for Paths

	// Previous known location, for travel.
	PrevGeo          bool
	PrevLat, PrevLon float64
	GeoIdle          int64 // ns since that location was seen

	idx         [NumDims]int8 // slot of this event's value, -1 if new
	pathBit     uint64
	pathRestart bool
	p           *Profile // the profile observed, for Window
	window      uint32
	est         uint8
	nowSec      uint32
	bucket      int64
	closing     bool
	rate        ewma
	vol         ewma
}

// Observe measures ev against p without changing p. ev.Keys must be set
// (Keyer.Fill).
func (t *Tracker) Observe(p *Profile, ev *event.Event, o *Observation) {
	*o = Observation{}
	now := ev.Time
	o.Peer = nil
	if p.n > 0 && now < p.last {
		o.Skew = p.last - now
		now = p.last
	}
	o.Now = now
	o.nowSec = unixSec(now)
	o.Events = uint64(p.n)
	o.First = p.n == 0

	var dec float64
	if !o.First {
		o.Age = now - int64(p.first)*1e9
		o.Idle = now - p.last
		dec = math.Exp2(-float64(o.Idle) / t.halfLife)
	}
	payload := float64(ev.PayloadBytes)
	o.Reqs = float64(p.reqs)*dec + 1
	o.Fails = p.fails * dec
	if ev.IsAuthFailure() {
		o.Fails++
	}
	o.NotFound = float64(p.notFound) * dec
	if ev.Status == 404 {
		o.NotFound++
	}
	o.Bytes = p.bytes*dec + payload

	t.observeTables(p, &ev.Keys, o)
	o.SinceWake = -1
	switch {
	case !o.First && o.Idle >= t.dormancy:
		o.SinceWake = 0
	case p.woke != 0:
		o.SinceWake = max(0, now-int64(p.woke)*1e9)
	}
	o.Hosting, o.HostingKnown = ev.Keys.Hosting, p.usedHosting
	o.Machine = p.usedHosting && !p.usedOther && !p.usedBrowser

	// Rate buckets: a bucket that closes counts in the baseline the event
	// is compared with, unless it held untrusted traffic.
	o.bucket = floorDiv(now, t.bucket)
	o.rate, o.vol = p.rate, p.vol
	switch {
	case o.First:
		o.BucketReqs, o.BucketBytes = 1, payload
		o.closing = true
	case o.bucket != p.bucket:
		o.closing = true
		if p.bucketReqs > 0 && !p.bucketTainted {
			o.rate = o.rate.add(log1p(float64(p.bucketReqs)), t.learning)
			o.vol = o.vol.add(log1p(float64(p.bucketBytes)), t.learning)
		}
		o.BucketReqs, o.BucketBytes = 1, payload
	default:
		o.BucketReqs, o.BucketBytes = float64(p.bucketReqs)+1, float64(p.bucketBytes)+payload
	}
	o.Rate, o.Volume, o.Size = o.rate.baseline(), o.vol.baseline(), p.size.baseline()
	if ev.Has&event.HasPayloadBytes != 0 {
		o.HasSize, o.SizeBytes = true, payload
	}

	if p.geoAt != 0 {
		o.PrevGeo = true
		o.PrevLat, o.PrevLon = float64(p.lat), float64(p.lon)
		o.GeoIdle = max(0, now-int64(p.geoAt)*1e9)
	}

	// Distinct paths within the window, this one included.
	bits := p.pathBits
	if o.nowSec-p.pathWin > t.window || p.n == 0 {
		bits = 0
		o.pathRestart = true
	}
	if ev.Keys.PathBit != 0 {
		o.pathBit = 1 << (ev.Keys.PathBit - 1)
		bits |= o.pathBit
	}
	o.pathBits = bits
}

func (t *Tracker) observeTables(p *Profile, k *event.Keys, o *Observation) {
	o.p, o.window, o.est = p, t.window, t.establish
	for d := Dim(0); d < NumDims; d++ {
		o.idx[d] = -1
		key := k.V[d]
		if key == 0 {
			continue
		}
		o.Present[d] = true
		o.Keys[d] = key
		lo, hi := tableStart[d], tableStart[d+1]
		for i, k := range p.keys[lo:hi] {
			if k == key {
				o.idx[d] = int8(i)
				o.Seen[d] = true
				o.Known[d] = p.hits[lo+i] >= t.establish
				break
			}
		}
		occ := p.occ[d]
		if !o.Seen[d] && int(occ) < hi-lo {
			occ++
		}
		o.Distinct[d], o.Established[d] = occ, p.known[d]
	}
}

// EstablishedContext reports whether the request comes from a context the
// credential has established: a known network (its ASN when the event has
// one, else its /24 or /64), a known country if it has one, and a known
// user-agent family if it has one. The owner's everyday requests do; a
// thief's, from somewhere else or with another client, do not.
func (o *Observation) EstablishedContext() bool {
	net := DimASN
	if !o.Present[net] {
		net = DimNet
	}
	return o.Known[net] &&
		(o.Known[DimCountry] || !o.Present[DimCountry]) &&
		(o.Known[DimAgent] || !o.Present[DimAgent])
}

// Window counts the distinct values of d used within the window, this
// event's included, and how many of them are not established.
func (o *Observation) Window(d Dim) (distinct, unestablished int) {
	if !o.Present[d] {
		return 0, 0
	}
	var since uint32
	if o.nowSec > o.window {
		since = o.nowSec - o.window
	}
	lo, hi := tableStart[d], tableStart[d+1]
	p := o.p
	for i := lo; i < hi; i++ {
		if p.keys[i] == 0 || i-lo == int(o.idx[d]) || p.lasts[i] < since {
			continue
		}
		distinct++
		if p.hits[i] < o.est {
			unestablished++
		}
	}
	distinct++
	if !o.Known[d] {
		unestablished++
	}
	return distinct, unestablished
}

// Trust is what a decision says about an event's place in the credential's
// history.
type Trust uint8

const (
	// Untrusted events update counters, clocks and recency only.
	Untrusted Trust = iota
	// Allowed events were let through but scored too high to learn from
	// outright: each of their values gains one use towards being
	// established per calendar day (probation), so a network the owner
	// really uses every day, such as a VPN, becomes known in the end.
	Allowed
	// Trusted events establish values and teach baselines.
	Trusted
)

// Learn folds ev into p. o must come from Observe(p, ev) with no change to p
// in between; tr says how far the decision trusted the event.
func (t *Tracker) Learn(p *Profile, ev *event.Event, o *Observation, tr Trust) {
	trusted := tr == Trusted
	if o.First {
		p.first = o.nowSec
	}
	if o.SinceWake == 0 {
		p.woke = max(o.nowSec, 1)
	}
	p.last = o.Now
	if p.n < math.MaxUint32 {
		p.n++
	}
	if o.pathRestart {
		p.pathBits, p.pathWin = 0, o.nowSec
	}
	p.pathBits |= o.pathBit
	p.reqs, p.notFound = float32(o.Reqs), float32(o.NotFound)
	p.fails, p.bytes = o.Fails, o.Bytes

	for d := Dim(0); d < NumDims; d++ {
		if o.Present[d] {
			t.learnValue(p, d, o, tr)
		}
	}

	if o.closing {
		p.rate, p.vol = o.rate, o.vol
		p.bucket = o.bucket
		p.bucketTainted = false
	}
	p.bucketReqs, p.bucketBytes = float32(o.BucketReqs), float32(o.BucketBytes)
	if !trusted {
		p.bucketTainted = true
	}
	if trusted && ev.Keys.Browser {
		p.usedBrowser = true
	}
	// A network's class counts once the network is established: trusted
	// outright, or known after days of probation (a VPN's exit provider).
	if ev.Has&event.HasASN != 0 && (trusted || p.asnKnown(o, t.establish)) {
		if o.Hosting {
			p.usedHosting = true
		} else {
			p.usedOther = true
		}
	}
	if trusted && o.HasSize {
		p.size = p.size.add(log1p(o.SizeBytes), t.learning)
	}
	if ev.Has&event.HasGeo != 0 {
		p.lat, p.lon, p.geoAt = float32(ev.Lat), float32(ev.Lon), max(o.nowSec, 1)
	}
}

func (t *Tracker) learnValue(p *Profile, d Dim, o *Observation, tr Trust) {
	lo, hi := tableStart[d], tableStart[d+1]
	i := int(o.idx[d])
	if i < 0 {
		i = victim(p, lo, hi)
		if p.keys[lo+i] == 0 {
			p.occ[d]++
		} else if p.hits[lo+i] >= t.establish {
			p.known[d]--
		}
		p.keys[lo+i], p.hits[lo+i] = o.Keys[d], 0
	}
	i += lo
	prev := p.lasts[i]
	p.lasts[i] = o.nowSec
	countable := tr == Trusted || (tr == Allowed && (p.hits[i] == 0 || prev/86400 != o.nowSec/86400))
	if countable && p.hits[i] < math.MaxUint8 {
		p.hits[i]++
		if p.hits[i] == t.establish {
			p.known[d]++
		}
	}
}

// asnKnown reports whether the event's ASN is established in p after Learn
// counted this use.
func (p *Profile) asnKnown(o *Observation, establish uint8) bool {
	for i := tableStart[DimASN]; i < tableStart[DimASN+1]; i++ {
		if p.keys[i] == o.Keys[DimASN] {
			return p.hits[i] >= establish
		}
	}
	return false
}

// victim picks the slot of table [lo, hi) to reuse, relative to lo: an empty
// one, else the one with the lowest priority, where each trusted use is worth
// an hour of recency (up to 64), so established values outlive a stream of
// one-off values.
func victim(p *Profile, lo, hi int) int {
	best, bestPrio := 0, int64(math.MaxInt64)
	for i := lo; i < hi; i++ {
		if p.keys[i] == 0 {
			return i - lo
		}
		prio := int64(p.lasts[i]) + int64(min(p.hits[i], 64))*3600
		if prio < bestPrio {
			best, bestPrio = i-lo, prio
		}
	}
	return best
}

// Keyer computes event Keys. It caches user-agent families, the one costly
// key; it is not safe for concurrent use: give each goroutine its own.
type Keyer struct {
	agents [256]struct {
		ua  uint64
		fam uint32
	}
}

// Fill computes ev.Keys.
func (kr *Keyer) Fill(ev *event.Event) {
	k := &ev.Keys
	*k = event.Keys{Set: true}
	if a := ev.SourceIP; a.IsValid() {
		b := a.As16()
		hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		k.V[DimIP] = fold(mix(hi^0x9e3779b97f4a7c15) ^ mix(lo))
		if a.Is4() {
			k.V[DimNet] = fold(mix(4<<56 | lo&0xffffffff>>8))
		} else {
			k.V[DimNet] = fold(mix(hi ^ 6<<56))
		}
	}
	if ev.Has&event.HasASN != 0 {
		k.V[DimASN] = fold(mix(uint64(ev.ASN) | 1<<40))
		k.Hosting = IsHostingASN(ev.ASN)
	}
	if ev.Has&event.HasCountry != 0 && len(ev.Country) == 2 {
		k.V[DimCountry] = fold(mix(uint64(ev.Country[0])<<8 | uint64(ev.Country[1]) | 2<<40))
	}
	k.V[DimEndpoint] = fold(xxhash.Sum64String(ev.Endpoint))
	if ev.Has&event.HasPath != 0 {
		k.PathBit = 1 + uint8(xxhash.Sum64String(ev.Path)&63)
	}
	if ev.Has&event.HasUserAgent != 0 && ev.UserAgent != "" {
		k.Browser = strings.HasPrefix(ev.UserAgent, "Mozilla/")
		h := xxhash.Sum64String(ev.UserAgent)
		c := &kr.agents[h&255]
		if c.ua != h || c.fam == 0 {
			c.ua, c.fam = h, fold(xxhash.Sum64String(AgentFamily(ev.UserAgent)))
		}
		k.V[DimAgent] = c.fam
	}
}

// fold reduces a 64-bit hash to a non-zero 32-bit key.
func fold(k uint64) uint32 {
	k32 := uint32(k) ^ uint32(k>>32)
	if k32 == 0 {
		k32 = 1
	}
	return k32
}

// Paths estimates the distinct request paths (object ids) within the
// window, this one included; it saturates near 250.
func (o *Observation) Paths() float64 { return linearCount(o.pathBits) }

// linearCount estimates how many distinct hashes set the bits of a 64-bit
// bitmap (linear counting: n ≈ -m·ln(empty/m)).
func linearCount(bits uint64) float64 {
	empty := 64 - mbits.OnesCount64(bits)
	if empty == 0 {
		return 250
	}
	return -64 * math.Log(float64(empty)/64)
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// event.Keys holds exactly one key per dimension.
var _ = [1]struct{}{}[len(event.Keys{}.V)-int(NumDims)]

// Outcome is what became known of a request after it was judged: its final
// status and the size of its response. Inline enforcement judges a request
// before the upstream answers, then reports the outcome (Tracker.Complete).
type Outcome struct {
	Status        int
	ResponseBytes int64
	HasBytes      bool
}

// Complete folds a judged request's outcome into p: its bytes count towards
// the decayed volume and the current activity bucket, a 401 or 403 towards
// failures, a 404 towards not-founds. at is the time the request was judged
// (Unix ns); an outcome older than the profile's clock is decayed to it.
// Baselines learn the response size only from trusted requests (trusted).
func (t *Tracker) Complete(p *Profile, at int64, o Outcome, trusted bool) {
	if p.n == 0 {
		return
	}
	dec := 1.0
	if at < p.last {
		dec = math.Exp2(-float64(p.last-at) / t.halfLife)
	}
	switch {
	case o.Status == 401 || o.Status == 403:
		p.fails += dec
	case o.Status == 404:
		p.notFound += float32(dec)
	}
	if !o.HasBytes || o.ResponseBytes < 0 {
		return
	}
	b := float64(o.ResponseBytes)
	p.bytes += b * dec
	if floorDiv(at, t.bucket) == p.bucket {
		p.bucketBytes += float32(b)
	}
	if trusted {
		p.size = p.size.add(log1p(b), t.learning)
	}
}

// Summary is a read-only view of a profile for operators.
type Summary struct {
	Events              uint64
	FirstSeen, LastSeen time.Time
	// Established values per dimension and distinct values tracked.
	Established, Tracked [NumDims]int
	// Typical requests and response bytes per active bucket, and bytes per
	// response, as learned (zero until learned).
	TypicalRequests, TypicalBytes, TypicalSize float64
	Buckets                                    uint32 // active buckets learned
	UsedHosting, UsedBrowser                   bool
}

// Summarize returns p's summary.
func (p *Profile) Summarize() Summary {
	s := Summary{Events: uint64(p.n), UsedHosting: p.usedHosting, UsedBrowser: p.usedBrowser}
	if p.n > 0 {
		s.FirstSeen = time.Unix(int64(p.first), 0).UTC()
		s.LastSeen = time.Unix(0, p.last).UTC()
	}
	for d := Dim(0); d < NumDims; d++ {
		s.Established[d], s.Tracked[d] = int(p.known[d]), int(p.occ[d])
	}
	if p.rate.n > 0 {
		s.TypicalRequests = p.rate.baseline().Typical()
		s.TypicalBytes = p.vol.baseline().Typical()
		s.Buckets = p.rate.n
	}
	if p.size.n > 0 {
		s.TypicalSize = p.size.baseline().Typical()
	}
	return s
}
