package score

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/profile"
)

// VigilOptions tune vigil's own scoring profile. Zero values mean defaults.
type VigilOptions struct {
	// Window, HalfLife and Bucket are the profile tracker's, used in
	// explanations.
	Window, HalfLife, Bucket time.Duration
	// A credential's own history is trusted for novelty once it has
	// WarmupEvents events over at least WarmupAge.
	WarmupEvents int
	WarmupAge    time.Duration
	// Dormancy is the silence after which a first request is suspicious.
	Dormancy time.Duration
}

// Defaults of VigilOptions.
const (
	DefaultWarmupEvents = 20
	DefaultWarmupAge    = time.Hour
	DefaultDormancy     = 30 * 24 * time.Hour
)

func (o *VigilOptions) setDefaults() error {
	if o.Window == 0 {
		o.Window = profile.DefaultWindow
	}
	if o.HalfLife == 0 {
		o.HalfLife = profile.DefaultHalfLife
	}
	if o.Bucket == 0 {
		o.Bucket = profile.DefaultBucket
	}
	if o.WarmupEvents == 0 {
		o.WarmupEvents = DefaultWarmupEvents
	}
	if o.WarmupAge == 0 {
		o.WarmupAge = DefaultWarmupAge
	}
	if o.Dormancy == 0 {
		o.Dormancy = DefaultDormancy
	}
	var errs []error
	if o.WarmupEvents < 1 {
		errs = append(errs, fmt.Errorf("warmup_events %d: must be at least 1", o.WarmupEvents))
	}
	if o.WarmupAge < 0 {
		errs = append(errs, fmt.Errorf("warmup_age %v: must not be negative", o.WarmupAge))
	}
	if o.Dormancy < time.Hour {
		errs = append(errs, fmt.Errorf("dormancy %v: must be at least 1h", o.Dormancy))
	}
	return errors.Join(errs...)
}

// Vigil returns vigil's own scoring profile: every signal compares the
// request with the credential's own history.
func Vigil(opts VigilOptions) (*Model, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	w := warmup{events: uint64(opts.WarmupEvents), age: int64(opts.WarmupAge)}
	m, err := NewModel("vigil",
		rateSignal{bucket: opts.Bucket},
		volumeSignal{bucket: opts.Bucket},
		failureSignal{halfLife: opts.HalfLife},
		churnSignal{window: opts.Window, warmup: w},
		novelNetworkSignal{w},
		novelEndpointSignal{warmup: w, window: opts.Window},
		agentSignal{w},
		dormancySignal{after: int64(opts.Dormancy)},
		travelSignal{warmup: w},
		peerNetworkSignal{own: w, peer: warmup{events: 5 * w.events, age: w.age}},
		scopeProbeSignal{warmup: w, window: opts.Window},
		enumerationSignal{window: opts.Window},
	)
	if err != nil {
		return nil, err
	}
	m.Contextual = true
	return m, nil
}

// warmup says when a credential's history is long enough to call a value new.
type warmup struct {
	events uint64
	age    int64
}

func (w warmup) done(o *profile.Observation) bool { return o.Events >= w.events && o.Age >= w.age }

// unfamiliar reports whether the request's value of d is one the warmed-up
// credential has not established, while it has established others.
func (w warmup) unfamiliar(o *profile.Observation, d profile.Dim) bool {
	return w.done(o) && o.Present[d] && !o.Known[d] && o.Established[d] > 0
}

// Minimums below which deviations are noise, whatever the baseline says.
const (
	minBaselineBuckets = 5   // active buckets learned before rate and volume are judged
	minBaselineSizes   = 10  // responses learned before sizes are judged
	minRateBurst       = 20  // requests in a bucket
	minBucketBytes     = 1e6 // response bytes in a bucket
	minResponseBytes   = 1e5 // bytes of one response
	sdFloorLog         = 0.35
	zStart, zFull      = 3.0, 7.0
)

// rateSignal: requests in the current bucket against the credential's
// learned requests per active bucket.
type rateSignal struct{ bucket time.Duration }

func (rateSignal) Name() string { return "rate" }
func (rateSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	if o.Rate.N < minBaselineBuckets || o.BucketReqs < minRateBurst {
		return 0
	}
	z := o.Rate.Z(o.BucketReqs, sdFloorLog)
	if z < zStart {
		return 0
	}
	a.set(o.BucketReqs, o.Rate.Typical(), float64(o.Rate.N))
	return 1 + 3*ramp(z, zStart, zFull)
}
func (s rateSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendPlural(dst, a.f(0), "request")
	dst = append(dst, " in "...)
	dst = appendDuration(dst, s.bucket)
	dst = append(dst, ", "...)
	dst = appendFactor(dst, (a.f(0)+1)/(a.f(1)+1))
	dst = append(dst, " this credential's usual "...)
	dst = appendNum(dst, math.Round(a.f(1)*10)/10)
	dst = append(dst, " (learned over "...)
	dst = appendPlural(dst, a.f(2), "active interval")
	return append(dst, ')')
}

// volumeSignal: response bytes per request and per bucket against the
// credential's learned sizes.
type volumeSignal struct{ bucket time.Duration }

func (volumeSignal) Name() string { return "volume" }
func (volumeSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	z, which := math.Inf(-1), 0.0
	if o.HasSize && o.Size.N >= minBaselineSizes && o.SizeBytes >= minResponseBytes {
		z = o.Size.Z(o.SizeBytes, sdFloorLog)
		a.set(0, o.SizeBytes, o.Size.Typical(), float64(o.Size.N))
	}
	if o.Volume.N >= minBaselineBuckets && o.BucketBytes >= minBucketBytes {
		if zb := o.Volume.Z(o.BucketBytes, sdFloorLog); zb > z {
			z, which = zb, 1
			a.set(which, o.BucketBytes, o.Volume.Typical(), float64(o.Volume.N))
		}
	}
	if z < zStart {
		return 0
	}
	return 1 + 3*ramp(z, zStart, zFull)
}
func (s volumeSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendBytes(dst, a.f(1))
	if a[0] == 0 {
		dst = append(dst, " in one response, "...)
	} else {
		dst = append(dst, " returned in "...)
		dst = appendDuration(dst, s.bucket)
		dst = append(dst, ", "...)
	}
	dst = appendFactor(dst, (a.f(1)+1)/(a.f(2)+1))
	dst = append(dst, " this credential's usual "...)
	dst = appendBytes(dst, a.f(2))
	dst = append(dst, " (learned over "...)
	if a[0] == 0 {
		dst = appendPlural(dst, a.f(3), "response")
	} else {
		dst = appendPlural(dst, a.f(3), "active interval")
	}
	return append(dst, ')')
}

// failureSignal: 401/403 answers, decayed, when they are a large share of
// the credential's recent requests.
type failureSignal struct{ halfLife time.Duration }

func (failureSignal) Name() string { return "auth_failures" }
func (failureSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	share := o.Fails / o.Reqs
	if o.Fails < 3 || share < 0.2 {
		return 0
	}
	a.set(o.Fails, share)
	return min(4, 1+0.5*(o.Fails-3)*share/0.5)
}
func (s failureSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendNum(dst, math.Round(a.f(0)*10)/10)
	dst = append(dst, " authorization failures (401/403) recently, "...)
	dst = strconv.AppendInt(dst, int64(math.Round(a.f(1)*100)), 10)
	dst = append(dst, "% of its requests (decayed, half-life "...)
	dst = appendDuration(dst, s.halfLife)
	return append(dst, ')')
}

// churnSignal: many networks within the window, most of them new for the
// credential: the shape of one token replayed from several places. A
// credential still warming up has established nothing yet, so every
// network it uses is "new": churn is judged once its warm-up is done, or
// a service that starts out from several regions would never be trusted
// enough to establish them. (A brand-new credential of a known client is
// judged against its client's networks: peer_network.)
type churnSignal struct {
	window time.Duration
	warmup warmup
}

func (churnSignal) Name() string { return "network_churn" }
func (s churnSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	if !s.warmup.done(o) {
		return 0
	}
	d := profile.DimASN
	if !o.Present[d] {
		d = profile.DimNet
	}
	ni, nwi := o.Window(d)
	n, nw := float64(ni), float64(nwi)
	if n < 3 || nw < 2 {
		return 0
	}
	a.set(n, nw, float64(d))
	return min(5, 1.5*(nw-1))
}
func (s churnSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = appendNum(dst, a.f(0))
	if profile.Dim(a.f(2)) == profile.DimASN {
		dst = append(dst, " networks (ASNs) in "...)
	} else {
		dst = append(dst, " networks (address prefixes) in "...)
	}
	dst = appendDuration(dst, s.window)
	dst = append(dst, ", "...)
	dst = appendNum(dst, a.f(1))
	return append(dst, " never seen for this credential"...)
}

// novelNetworkSignal: a country, ASN or prefix the established credential
// has not used; a new prefix inside a known ASN (a mobile carrier's next
// address) costs little.
type novelNetworkSignal struct{ warmup warmup }

func (novelNetworkSignal) Scope() Scope { return ScopeRequest }
func (novelNetworkSignal) Name() string { return "new_network" }
func (s novelNetworkSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	if !s.warmup.done(o) {
		return 0
	}
	c := networkNovelty(o, &ownNetwork, a)
	if a[0] == 1 {
		a[3] = float32(o.Established[profile.DimCountry])
	}
	return c
}

// networkWeights price what is new about a request's network.
type networkWeights struct {
	country, asn float64
	// hosting: the new ASN is a hosting provider's and the profile never
	// used one (where stolen tokens are replayed from); machine: a new
	// ASN for a profile whose trusted traffic only ever came from hosting
	// providers, never a browser (a service changing provider).
	hosting, machine float64
	// A new prefix alone, inside a known ASN (a mobile carrier's next
	// address) and without ASN data; 0 does not score it.
	netInKnownASN, netNoASN float64
}

var (
	ownNetwork  = networkWeights{country: 2, asn: 1.5, hosting: 1.5, machine: machineMoved, netInKnownASN: 0.25, netNoASN: 0.75}
	peerNetwork = networkWeights{country: 2.5, asn: 2, hosting: 1.5, machine: peerMachineMoved, netNoASN: 0.75}
)

// networkNovelty scores the country, ASN and prefix of the request that o
// (a credential's or its client's observation) has not established, and
// records in a[0] a new country, in a[1] a new ASN (2: a hosting provider's),
// in a[2] a new prefix alone (1) or a machine's move (2).
func networkNovelty(o *profile.Observation, w *networkWeights, a *Args) float64 {
	novel := func(d profile.Dim) bool { return o.Present[d] && !o.Known[d] && o.Established[d] > 0 }
	var c float64
	if novel(profile.DimCountry) {
		c += w.country
		a[0] = 1
	}
	if novel(profile.DimASN) {
		c += w.asn
		a[1] = 1
		if o.Hosting && !o.HostingKnown {
			c += w.hosting
			a[1] = 2
		}
	}
	switch {
	case c == 0 && novel(profile.DimNet):
		c = w.netNoASN
		if o.Present[profile.DimASN] {
			c = w.netInKnownASN
		}
		if c > 0 {
			a[2] = 1
		}
	case a[1] >= 1 && o.Machine: // a new provider, not a new region of the same cloud
		c += w.machine
		a[2] = 2
	}
	return c
}

// machineMoved is added to network novelty for a credential whose trusted
// traffic only ever came from hosting providers: a service moves between
// data centres rarely, and a stolen service token is used from elsewhere.
const machineMoved = 1.5

func (novelNetworkSignal) Explain(dst []byte, ev *event.Event, a *Args) []byte {
	sep := false
	if a[0] == 1 {
		dst = append(dst, "country "...)
		dst = append(dst, ev.Country...)
		dst = append(dst, " never seen for this credential (it has used "...)
		dst = appendPlural(dst, a.f(3), "other")
		dst = append(dst, ')')
		sep = true
	}
	if a[1] >= 1 {
		if sep {
			dst = append(dst, "; "...)
		}
		dst = append(dst, "AS"...)
		dst = strconv.AppendUint(dst, uint64(ev.ASN), 10)
		dst = append(dst, " never seen for this credential"...)
		if a[1] == 2 {
			dst = append(dst, ", a hosting provider's network; the credential never used one"...)
		}
		sep = true
	}
	if a[2] == 1 {
		bits := 64
		if ev.SourceIP.Is4() {
			bits = 24
		}
		if p, err := ev.SourceIP.Prefix(bits); err == nil {
			dst = append(dst, "network "...)
			dst = p.AppendTo(dst)
			dst = append(dst, " new for this credential"...)
			if ev.Has&event.HasASN != 0 {
				dst = append(dst, ", inside a known ASN"...)
			}
		}
	}
	if a[2] == 2 {
		dst = append(dst, "; its trusted traffic only ever came from hosting providers: a service, and services don't move"...)
	}
	return dst
}

// novelEndpointSignal: endpoints the established credential never used,
// more when several appear within the window.
type novelEndpointSignal struct {
	warmup warmup
	window time.Duration
}

func (novelEndpointSignal) Scope() Scope { return ScopeRequest }
func (novelEndpointSignal) Name() string { return "new_endpoint" }
func (s novelEndpointSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	d := profile.DimEndpoint
	if !s.warmup.unfamiliar(o, d) {
		return 0
	}
	_, nwi := o.Window(d)
	nw := float64(nwi)
	a.set(nw)
	return 0.5 + 0.5*min(nw-1, 5)
}
func (s novelEndpointSignal) Explain(dst []byte, ev *event.Event, a *Args) []byte {
	dst = append(dst, "endpoint "...)
	dst = append(dst, ev.Endpoint...)
	dst = append(dst, " never used by this credential"...)
	if a.f(0) > 1 {
		dst = append(dst, "; "...)
		dst = appendNum(dst, a.f(0))
		dst = append(dst, " new endpoints in "...)
		dst = appendDuration(dst, s.window)
	}
	return dst
}

// agentSignal: a user-agent family the established credential never used.
type agentSignal struct{ warmup warmup }

func (agentSignal) Scope() Scope { return ScopeRequest }
func (agentSignal) Name() string { return "user_agent" }
func (s agentSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	d := profile.DimAgent
	if !s.warmup.unfamiliar(o, d) {
		return 0
	}
	a.set(float64(o.Established[d]))
	return 1.5
}
func (agentSignal) Explain(dst []byte, ev *event.Event, a *Args) []byte {
	dst = append(dst, "user-agent family "...)
	dst = append(dst, profile.AgentFamily(ev.UserAgent)...)
	dst = append(dst, " never seen for this credential (it uses "...)
	dst = appendPlural(dst, a.f(0), "other")
	return append(dst, ')')
}

// dormancySignal: the first request after a long silence, and for a day
// after it, requests from outside the credential's established context —
// a forgotten token picked up by someone else (the one of 5,000 that
// Cloudflare did not rotate).
type dormancySignal struct{ after int64 }

const wakeWindow = 24 * time.Hour

func (dormancySignal) Scope() Scope { return ScopeRequest }
func (dormancySignal) Name() string { return "dormancy" }
func (s dormancySignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	switch {
	case !o.First && o.Idle >= s.after:
		a.set(float64(o.Idle), 0)
		return 2
	case o.SinceWake > 0 && o.SinceWake < int64(wakeWindow) && !o.EstablishedContext():
		a.set(float64(o.SinceWake), 1)
		return 2
	}
	return 0
}
func (dormancySignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	if a.f(1) == 1 {
		dst = append(dst, "from outside its usual context "...)
		dst = appendDuration(dst, time.Duration(a.f(0)))
		return append(dst, " after the credential woke from a long silence"...)
	}
	dst = append(dst, "first request after "...)
	dst = appendDuration(dst, time.Duration(a.f(0)))
	return append(dst, " of silence"...)
}

// Travel thresholds. GeoIP places an address within tens to a few hundred
// kilometres, so each location is allowed travelErrorKM of error before
// speed is judged; airliners cruise below 1,000 km/h.
const (
	travelMinKM      = 500
	travelErrorKM    = 100
	travelMaxKMH     = 1000
	concurrentWithin = 5 * time.Minute
)

// travelSignal: a request from farther away than anyone could have travelled
// since the previous request — one token in two places. It looks only at
// requests from outside the credential's established context: the owner's
// next request from home is not the suspicious one. Nor does it judge a
// multi-region service (see Eval).
type travelSignal struct{ warmup warmup }

func (travelSignal) Scope() Scope { return ScopeRequest }
func (travelSignal) Name() string { return "travel" }
func (s travelSignal) Eval(o *profile.Observation, ev *event.Event, a *Args) float64 {
	if ev.Has&event.HasGeo == 0 || !o.PrevGeo || !s.warmup.done(o) || o.EstablishedContext() {
		return 0
	}
	// A service that already runs in several countries at once (trusted
	// traffic only from hosting providers, two or more countries
	// established) is in distant places at once by design; a new place is
	// new_network's to judge.
	if o.Machine && o.Established[profile.DimCountry] >= 2 {
		return 0
	}
	km := greatCircleKM(o.PrevLat, o.PrevLon, ev.Lat, ev.Lon)
	if km < travelMinKM {
		return 0
	}
	hours := max(float64(o.GeoIdle)/float64(time.Hour), 1.0/60)
	kmh := (km - 2*travelErrorKM) / hours
	if kmh <= travelMaxKMH {
		return 0
	}
	a.set(km, float64(o.GeoIdle), kmh)
	if o.GeoIdle <= int64(concurrentWithin) {
		return 3
	}
	return 2.5
}
func (travelSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = strconv.AppendInt(dst, int64(math.Round(a.f(0))), 10)
	dst = append(dst, " km from the previous request, "...)
	dst = appendDuration(dst, time.Duration(a.f(1)))
	dst = append(dst, " earlier ("...)
	dst = strconv.AppendInt(dst, int64(math.Round(a.f(2))), 10)
	if time.Duration(a.f(1)) <= concurrentWithin {
		return append(dst, " km/h): used in two distant places at once"...)
	}
	return append(dst, " km/h, faster than a flight)"...)
}

// greatCircleKM is the haversine distance between two points on a sphere
// of the Earth's mean radius.
func greatCircleKM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}

// peerNetworkSignal: a credential too new to have a history of its own,
// used from a network its client's other credentials never used — a
// freshly minted token of a known integration, first used from somewhere
// else (the Gainsight refresh-token theft). The client's profile must
// itself be established (five times the credential warm-up).
type peerNetworkSignal struct{ own, peer warmup }

func (peerNetworkSignal) Scope() Scope { return ScopeRequest }
func (peerNetworkSignal) Name() string { return "peer_network" }
func (s peerNetworkSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	p := o.Peer
	if p == nil || s.own.done(o) || !s.peer.done(p) {
		return 0
	}
	c := networkNovelty(p, &peerNetwork, a)
	novel := func(d profile.Dim) bool { return p.Present[d] && !p.Known[d] && p.Established[d] > 0 }
	var flags float32
	if novel(profile.DimAgent) {
		c += 1.5
		flags += 1
	}
	// A client whose credentials already come from many networks (a
	// consumer app: every user's home) makes one more network less
	// telling than an integration that runs in one place.
	if p.Established[profile.DimASN] >= 4 {
		c *= 0.5
		flags += 2
	}
	// People's credentials (a web or mobile app's users) come from homes,
	// phones, hotels and VPNs: on its own, a new user's new network is
	// worth a look, not a throttle. An integration's new token used from
	// where the integration never runs is.
	if !p.Machine && c > peerHumanCap {
		c = peerHumanCap
		flags += 4
	}
	a[3] = flags
	return c
}

// Peer weights: how much more a machine client's move counts, and the most
// a human-facing client's new credential can score from peer evidence.
const (
	peerMachineMoved = 2.0
	peerHumanCap     = 3.5
)

func (peerNetworkSignal) Explain(dst []byte, ev *event.Event, a *Args) []byte {
	dst = append(dst, "new credential of client "...)
	dst = append(dst, ev.ClientID...)
	dst = append(dst, " used "...)
	parts := 0
	sep := func() {
		if parts > 0 {
			dst = append(dst, ", "...)
		}
		parts++
	}
	if a[0] == 1 {
		sep()
		dst = append(dst, "from country "...)
		dst = append(dst, ev.Country...)
	}
	if a[1] >= 1 {
		sep()
		dst = append(dst, "from AS"...)
		dst = strconv.AppendUint(dst, uint64(ev.ASN), 10)
		if a[1] == 2 {
			dst = append(dst, " (a hosting provider)"...)
		}
	}
	if a[2] == 1 {
		sep()
		dst = append(dst, "from a new network"...)
	}
	flags := int(a[3])
	if flags&1 != 0 {
		sep()
		dst = append(dst, "with user-agent family "...)
		dst = append(dst, profile.AgentFamily(ev.UserAgent)...)
	}
	dst = append(dst, ", which none of the client's credentials did"...)
	if a[2] == 2 {
		dst = append(dst, "; the client's traffic only ever came from hosting providers"...)
	}
	if flags&2 != 0 {
		dst = append(dst, " (halved: the client's credentials use many networks)"...)
	}
	if flags&4 != 0 {
		dst = append(dst, " (capped: the client's credentials are people's, not a service's)"...)
	}
	return dst
}

// scopeProbeSignal: an authorization failure on an endpoint the established
// credential never used — a thief trying what else the token can do.
type scopeProbeSignal struct {
	warmup warmup
	window time.Duration
}

func (scopeProbeSignal) Scope() Scope { return ScopeRequest }
func (scopeProbeSignal) Name() string { return "scope_probe" }
func (s scopeProbeSignal) Eval(o *profile.Observation, ev *event.Event, a *Args) float64 {
	d := profile.DimEndpoint
	if !s.warmup.unfamiliar(o, d) {
		return 0
	}
	switch {
	case ev.IsAuthFailure():
	case ev.Status == 0 && o.Fails >= inlineProbeFails:
		// Judged inline, before the upstream answers (status 0): an
		// unfamiliar endpoint right after refusals is the same probe, seen
		// one request late. The refusals were reported back (Complete).
	default:
		return 0
	}
	_, nw := o.Window(d)
	a.set(float64(ev.Status), float64(nw), o.Fails)
	return 1.5 + min(2.5, 0.5*float64(nw-1))
}

// inlineProbeFails is the decayed count of recent authorization failures
// after which an unfamiliar endpoint counts as a probe when the request's
// own status is not known yet.
const inlineProbeFails = 0.9

func (s scopeProbeSignal) Explain(dst []byte, ev *event.Event, a *Args) []byte {
	if a.f(0) == 0 {
		dst = append(dst, "request to "...)
		dst = append(dst, ev.Endpoint...)
		dst = append(dst, ", an endpoint this credential never used, after "...)
		dst = appendNum(dst, math.Round(a.f(2)*10)/10)
		dst = append(dst, " recent authorization failures"...)
	} else {
		dst = strconv.AppendInt(dst, int64(a.f(0)), 10)
		dst = append(dst, " on "...)
		dst = append(dst, ev.Endpoint...)
		dst = append(dst, ", an endpoint this credential never used"...)
	}
	if a.f(1) > 1 {
		dst = append(dst, "; "...)
		dst = appendNum(dst, a.f(1))
		dst = append(dst, " unfamiliar endpoints in "...)
		dst = appendDuration(dst, s.window)
	}
	return dst
}

// Enumeration thresholds: distinct object paths in the window, and the
// share of recent requests refused or not found.
const (
	enumMinPaths = 20
	enumMinShare = 0.3
	enumMinFails = 8
)

// enumerationSignal: many distinct object ids within the window, most of
// them refused or missing — walking ids to find objects the token can reach
// (broken object-level authorization, BOLA).
type enumerationSignal struct{ window time.Duration }

func (enumerationSignal) Name() string { return "enumeration" }
func (enumerationSignal) Eval(o *profile.Observation, _ *event.Event, a *Args) float64 {
	bad := o.NotFound + o.Fails
	if bad < enumMinFails || bad < enumMinShare*o.Reqs {
		return 0
	}
	paths := o.Paths()
	if paths < enumMinPaths {
		return 0
	}
	a.set(paths, bad/o.Reqs)
	return 1 + 3*ramp(paths, enumMinPaths, 100)
}
func (s enumerationSignal) Explain(dst []byte, _ *event.Event, a *Args) []byte {
	dst = append(dst, "about "...)
	dst = strconv.AppendInt(dst, int64(math.Round(a.f(0))), 10)
	dst = append(dst, " distinct object paths in "...)
	dst = appendDuration(dst, s.window)
	dst = append(dst, ", "...)
	dst = strconv.AppendInt(dst, int64(math.Round(a.f(1)*100)), 10)
	return append(dst, "% of recent requests refused or not found (403/401/404)"...)
}
