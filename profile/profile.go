// Package profile keeps what vigil knows about one credential: a fixed-size,
// pointer-free record of time-decayed counters, small tables of recently seen
// values, and learned baselines of the credential's own behaviour.
//
// Two calls touch a profile per event. Observe measures the event against
// the profile as it was before the event (what is new, how far from the
// baseline) and changes nothing; Learn folds the event in. Between the two the
// scorer and the policy decide, and Learn is told whether the decision
// trusted the event, so a suspicious request cannot teach the profile that
// its network or its volume is normal.
//
// All time is event time. A profile's clock never moves backwards: an event
// older than the profile's last event is measured at the last event's time.
package profile

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// Dim names a dimension the profile keeps a table of recently seen values for.
type Dim uint8

const (
	DimIP       Dim = iota // source address
	DimNet                 // /24 for IPv4, /64 for IPv6
	DimASN                 // autonomous system number
	DimCountry             // ISO country
	DimEndpoint            // method + route template
	DimAgent               // user-agent family
	NumDims
)

var dimNames = [NumDims]string{"ip", "network", "asn", "country", "endpoint", "user_agent"}

func (d Dim) String() string { return dimNames[d] }

// Table sizes: how many values of each dimension a profile remembers. The
// seed profile's rules (≥4 addresses, ≥8 endpoints ever) need at least 4 and
// 8 here.
var tableSize = [NumDims]int{6, 8, 6, 4, 12, 4}

// tableStart is the offset of each dimension's table in Profile.slots.
var tableStart = func() (s [NumDims + 1]int) {
	for d := Dim(0); d < NumDims; d++ {
		s[d+1] = s[d] + tableSize[d]
	}
	return s
}()

const numSlots = 40

// TableSize returns how many values of d a profile remembers.
func TableSize(d Dim) int { return tableSize[d] }

// ewma is an exponentially weighted mean and variance, in float32: a
// baseline needs a few significant digits, not sixteen.
type ewma struct {
	mean, vari float32
	n          uint32
}

func (e ewma) add(x, minAlpha float64) ewma {
	a := max(1/float64(e.n+1), minAlpha)
	m, v := float64(e.mean), float64(e.vari)
	d := x - m
	m += a * d
	v = (1 - a) * (v + a*d*d)
	e.mean, e.vari = float32(m), float32(v)
	if e.n < math.MaxUint32 {
		e.n++
	}
	return e
}

// Profile is one credential's state. Its size is fixed (Size bytes) whatever the number of distinct values the credential has
// used. The zero value is the profile of a credential never seen.
//
// Each dimension keeps a small table of the values it has seen: a 32-bit
// hash, the last use (Unix seconds) and the count of trusted uses. Tables
// are laid out as parallel arrays so the lookup of a value reads only keys.
// A false match of two 32-bit hashes in one table is a chance of about one
// in 400 million per request; its only effect is one value taken as seen.
type Profile struct {
	last  int64  // Unix ns of the latest event time
	first uint32 // Unix seconds of the first event
	woke  uint32 // Unix seconds of the last first-request-after-dormancy; 0: never
	n     uint32 // events learned, saturating
	// Distinct request paths (object ids) within the window: a 64-bit
	// linear-counting bitmap of path hashes, restarted every window.
	pathWin  uint32 // Unix seconds the bitmap's window started
	pathBits uint64

	// Decayed counters as of last, half-life Params.HalfLife. Failures
	// and bytes stay float64: the seed profile compares them with fixed
	// thresholds and must match the article's arithmetic.
	fails, bytes    float64
	reqs, notFound  float32
	bucket          int64 // index of the current rate bucket
	bucketBytes     float32
	bucketReqs      float32
	rate, vol, size ewma // log1p of requests and bytes per active bucket; bytes per response
	lat, lon        float32
	geoAt           uint32         // Unix seconds; 0: no location yet
	occ, known      [NumDims]uint8 // occupied and established slots per table
	bucketTainted   bool           // the current bucket holds untrusted traffic
	usedHosting     bool           // a trusted request came from a hosting provider's ASN
	usedOther       bool           // a trusted request came from an ASN that is not a hosting provider's
	usedBrowser     bool           // a trusted request came with a browser's user agent

	keys  [numSlots]uint32
	lasts [numSlots]uint32
	hits  [numSlots]uint8
}

// Size is the in-memory size of a Profile in bytes.
const Size = int(unsafe.Sizeof(Profile{}))

// Params tune how profiles learn. The zero value of a field means its default.
type Params struct {
	// HalfLife of the decayed counters (requests, failures, 404s, bytes).
	HalfLife time.Duration
	// Window over which distinct values are counted.
	Window time.Duration
	// Bucket is the length of the activity bucket for rate baselines.
	Bucket time.Duration
	// Learning is the smallest weight a new sample gets in a baseline
	// (EWMA alpha); earlier samples weigh 1/n while n is small.
	Learning float64
	// Dormancy is the silence after which a request is a reactivation; the
	// profile remembers the last one (Observation.SinceWake).
	Dormancy time.Duration
	// Establish is how many trusted uses make a value known.
	Establish int
}

// Defaults.
const (
	DefaultHalfLife  = 30 * time.Minute
	DefaultWindow    = 20 * time.Minute
	DefaultBucket    = time.Minute
	DefaultLearning  = 0.05
	DefaultEstablish = 2
	DefaultDormancy  = 30 * 24 * time.Hour
)

// Tracker applies Params to profiles. It holds no per-credential state and
// is safe for concurrent use on distinct profiles.
type Tracker struct {
	dormancy  int64   // ns
	halfLife  float64 // ns
	window    uint32  // s
	bucket    int64   // ns
	learning  float64
	establish uint8
}

// NewTracker validates p and returns a Tracker.
func NewTracker(p Params) (*Tracker, error) {
	if p.HalfLife == 0 {
		p.HalfLife = DefaultHalfLife
	}
	if p.Window == 0 {
		p.Window = DefaultWindow
	}
	if p.Bucket == 0 {
		p.Bucket = DefaultBucket
	}
	if p.Learning == 0 {
		p.Learning = DefaultLearning
	}
	if p.Establish == 0 {
		p.Establish = DefaultEstablish
	}
	if p.Dormancy == 0 {
		p.Dormancy = DefaultDormancy
	}
	var errs []error
	if p.HalfLife < time.Second {
		errs = append(errs, fmt.Errorf("half_life %v: must be at least 1s", p.HalfLife))
	}
	if p.Window < time.Second || p.Window > 365*24*time.Hour {
		errs = append(errs, fmt.Errorf("window %v: must be between 1s and 8760h", p.Window))
	}
	if p.Bucket < time.Second {
		errs = append(errs, fmt.Errorf("bucket %v: must be at least 1s", p.Bucket))
	}
	if !(p.Learning > 0 && p.Learning <= 1) {
		errs = append(errs, fmt.Errorf("learning %v: must be in (0, 1]", p.Learning))
	}
	if p.Establish < 1 || p.Establish > 255 {
		errs = append(errs, fmt.Errorf("establish %d: must be between 1 and 255", p.Establish))
	}
	if p.Dormancy < time.Hour {
		errs = append(errs, fmt.Errorf("dormancy %v: must be at least 1h", p.Dormancy))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Tracker{
		dormancy:  int64(p.Dormancy),
		halfLife:  float64(p.HalfLife),
		window:    uint32(p.Window / time.Second),
		bucket:    int64(p.Bucket),
		learning:  p.Learning,
		establish: uint8(p.Establish),
	}, nil
}

// HalfLife returns the decayed counters' half-life.
func (t *Tracker) HalfLife() time.Duration { return time.Duration(t.halfLife) }

// Window returns the distinct-count window.
func (t *Tracker) Window() time.Duration { return time.Duration(t.window) * time.Second }

// Bucket returns the rate bucket length.
func (t *Tracker) Bucket() time.Duration { return time.Duration(t.bucket) }

// Events returns how many events the profile has learned.
func (p *Profile) Events() uint64 { return uint64(p.n) }

// FirstSeen and LastSeen return Unix ns times (0 for a new profile).
func (p *Profile) FirstSeen() int64 { return int64(p.first) * 1e9 }
func (p *Profile) LastSeen() int64  { return p.last }

func unixSec(ns int64) uint32 {
	s := ns / 1e9
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}
