package investigate

import (
	"hash/maphash"

	"github.com/vigil-sec/vigil/policy"
)

// tally counts the events per value of one dimension (an address, an ASN,
// a country, an endpoint id) up to a bound on the values it keeps. Most
// credentials use few values, so it is a slice searched from the last hit
// rather than a map: smaller, and as fast at these sizes.
//
// Values beyond the bound are counted in other. A tally of the history
// before a deviation also remembers them in a small hashed bitmap (a Bloom
// filter with one hash), so that a later value can still be called new
// with certainty: a clear bit means never seen.
type tally[K comparable] struct {
	items []tallyItem[K]
	last  int   // index of the last hit
	other int64 // events whose value was beyond the bound
	seen  *bitmap
}

type tallyItem[K comparable] struct {
	key K
	n   int64
	// fresh: the value was not seen before the deviation (tallies of
	// suspicious events only).
	fresh bool
	// first is the time (Unix ns) of the value's first event counted.
	first int64
}

// bitmap is a 1024-bit set of hashed values.
type bitmap [16]uint64

func (b *bitmap) set(h uint64)      { b[h>>6&15] |= 1 << (h & 63) }
func (b *bitmap) has(h uint64) bool { return b[h>>6&15]&(1<<(h&63)) != 0 }

// find returns the index of k, or -1.
func (t *tally[K]) find(k K) int {
	if t.last < len(t.items) && t.items[t.last].key == k {
		return t.last
	}
	for i := range t.items {
		if t.items[i].key == k {
			t.last = i
			return i
		}
	}
	return -1
}

// count adds one event of value k at time at. A value beyond limit is counted in
// other and, with remember, noted in the bitmap (hashed with seed).
func (t *tally[K]) count(k K, at int64, limit int, remember bool, seed maphash.Seed) {
	if i := t.find(k); i >= 0 {
		t.items[i].n++
		t.items[i].first = min(t.items[i].first, at)
		return
	}
	if len(t.items) < limit {
		if t.items == nil {
			t.items = make([]tallyItem[K], 0, 2)
		}
		t.last = len(t.items)
		t.items = append(t.items, tallyItem[K]{key: k, n: 1, first: at})
		return
	}
	t.other++
	if remember {
		if t.seen == nil {
			t.seen = new(bitmap)
		}
		t.seen.set(maphash.Comparable(seed, k))
	}
}

// unseen reports whether k was certainly never counted.
func (t *tally[K]) unseen(k K, seed maphash.Seed) bool {
	if t.find(k) >= 0 {
		return false
	}
	return t.seen == nil || !t.seen.has(maphash.Comparable(seed, k))
}

// countNew adds one event of value k to a tally of suspicious events,
// marking a value it adds as fresh when before never saw it.
func (t *tally[K]) countNew(k K, limit int, before *tally[K], seed maphash.Seed) {
	if i := t.find(k); i >= 0 {
		t.items[i].n++
		return
	}
	if len(t.items) >= limit {
		t.other++
		return
	}
	t.last = len(t.items)
	t.items = append(t.items, tallyItem[K]{key: k, n: 1, fresh: before.unseen(k, seed)})
}

// sample is one point of a risk series.
type sample struct {
	t     int64 // Unix ns
	risk  float32
	level policy.Level
}

// heavier reports whether a outranks b in a downsampled series: more
// risk, then a higher level, then the earlier.
func heavier(a, b sample) bool {
	if a.risk != b.risk {
		return a.risk > b.risk
	}
	return a.level > b.level
}

// series is a risk series downsampled to at most its capacity. Every point
// stands for stride consecutive events (the last for lastN of them) and is
// the riskiest of them. When it is full, neighbouring points are merged
// pairwise, keeping the riskier, and the stride doubles: O(1) amortized
// per event, a fixed footprint, and a spike is never averaged away.
type series struct {
	pts    []sample
	stride int64
	lastN  int64
	limit  int // even, ≥ 2
}

func (s *series) add(p sample) {
	if n := len(s.pts); n > 0 && s.lastN < s.stride {
		s.lastN++
		if heavier(p, s.pts[n-1]) {
			s.pts[n-1] = p
		}
		return
	}
	if s.stride == 0 {
		s.stride = 1
	}
	if len(s.pts) >= s.limit {
		half := len(s.pts) / 2
		for i := range half {
			a, b := s.pts[2*i], s.pts[2*i+1]
			if heavier(b, a) {
				a = b
			}
			s.pts[i] = a
		}
		s.pts = s.pts[:half]
		s.stride *= 2
	}
	if s.pts == nil {
		s.pts = make([]sample, 0, min(4, s.limit))
	}
	s.pts = append(s.pts, p)
	s.lastN = 1
}

// events returns how many events point i stands for.
func (s *series) events(i int) int64 {
	if i == len(s.pts)-1 {
		return s.lastN
	}
	return s.stride
}
