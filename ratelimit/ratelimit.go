// Package ratelimit is vigil's per-key rate limiter: the generic cell rate
// algorithm (GCRA) over a bounded, sharded table of keys.
//
// vigil throttles a credential whose risk reached the throttle level: its
// requests are admitted at a rate derived from the credential's own
// baseline. The caller computes the rate and the burst and passes them on
// every call; the limiter keeps only one number per key, the theoretical
// arrival time (TAT): the instant at which the key's bucket would be full
// again if no more requests were admitted.
//
// # The algorithm
//
// With the emission interval T = 1/rate and the burst B, a request arriving
// at now is admitted when max(TAT, now) + T − B·T ≤ now, and then TAT
// becomes max(TAT, now) + T. A fresh key admits B requests at once and then
// one every T. Because only the TAT is stored, a change of rate or burst
// between calls takes effect at once and the key's debt (TAT − now, a
// time) carries over: the key is admitted again as soon as that debt fits
// the new tolerance, (B−1)·T. Raising the rate therefore does not forgive a
// debt run up at a lower rate; a larger burst admits the key sooner. All
// arithmetic is in integer nanoseconds, so results at fixed times are exact.
//
// # Memory
//
// A key whose TAT is not after now is in the same state as an absent key
// (a full bucket), so it may be forgotten. Each shard keeps its keys in a
// map and a binary min-heap ordered by TAT; inserting a new key first drops
// up to two keys that expired, and a shard that holds its share of MaxKeys
// evicts the key with the oldest TAT, which is an expired key if there is
// one. Every operation is O(log n) in the shard's size; nothing scans a
// shard.
//
// Fairness of eviction: the key with the oldest TAT is the one closest to a
// full bucket, so forgetting it hands out the least credit a forced
// eviction can: when that key comes back it gets a full burst, TAT − now
// earlier than it would have. A flood of new keys (many client addresses
// under ip:<addr> keys, say) can push throttled credentials out of a full
// limiter, oldest first, and each gains at most that credit. Keep MaxKeys
// above the number of keys throttled at the same time (each costs about
// 130 bytes: TestMemoryPerKey) and this never happens.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"time"
	"unsafe"
)

const (
	// DefaultMaxKeys is the number of keys a Limiter holds when
	// Options.MaxKeys is 0.
	DefaultMaxKeys = 1 << 20
	// DefaultShards is the number of shards when Options.Shards is 0 (fewer
	// if MaxKeys is smaller).
	DefaultShards = 64

	maxKeys   = 1 << 30
	maxShards = 1 << 16
	// maxSpan bounds the emission interval and the burst's span (B·T) to
	// about 36 years, so that now + span + T never overflows int64 for any
	// time before the year 2200.
	maxSpan = int64(1) << 60
)

// Options configures a Limiter. The zero value means the defaults.
type Options struct {
	// MaxKeys bounds the number of keys held; 0 means DefaultMaxKeys. Each
	// shard holds at most its share (MaxKeys/Shards), so the Limiter holds
	// at most MaxKeys keys and evicts in a shard that is full even when
	// others are not.
	MaxKeys int
	// Shards is the number of independently locked partitions of the key
	// space, a power of two no larger than MaxKeys; 0 means DefaultShards,
	// or the largest power of two not above MaxKeys if that is smaller.
	Shards int
}

func (o Options) withDefaults() Options {
	if o.MaxKeys == 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
		for o.Shards > 1 && o.Shards > o.MaxKeys {
			o.Shards /= 2
		}
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.MaxKeys < 1 || o.MaxKeys > maxKeys {
		errs = append(errs, fmt.Errorf("MaxKeys %d: must be between 1 and %d", o.MaxKeys, maxKeys))
	}
	if o.Shards < 1 || o.Shards > maxShards || o.Shards&(o.Shards-1) != 0 {
		errs = append(errs, fmt.Errorf("Shards %d: must be a power of two between 1 and %d", o.Shards, maxShards))
	} else if o.MaxKeys >= 1 && o.Shards > o.MaxKeys {
		errs = append(errs, fmt.Errorf("Shards %d: must not exceed MaxKeys (%d)", o.Shards, o.MaxKeys))
	}
	return errors.Join(errs...)
}

// ErrOptions is wrapped by the error New returns for invalid Options.
var ErrOptions = errors.New("ratelimit: invalid options")

// Limiter is a per-key GCRA rate limiter with a bounded number of keys. It
// is safe for concurrent use.
type Limiter struct {
	seed   maphash.Seed
	mask   uint64
	shards []paddedShard
}

// New returns a Limiter configured by o.
func New(o Options) (*Limiter, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	l := &Limiter{
		seed:   maphash.MakeSeed(),
		mask:   uint64(o.Shards - 1),
		shards: make([]paddedShard, o.Shards),
	}
	per, extra := o.MaxKeys/o.Shards, o.MaxKeys%o.Shards
	for i := range l.shards {
		s := &l.shards[i].shard
		s.capacity = per
		if i < extra {
			s.capacity++
		}
		s.index = make(map[string]int32)
	}
	return l, nil
}

// Result is the outcome of one Allow call.
type Result struct {
	// Allowed reports whether the request is admitted (and counted).
	Allowed bool
	// Limit is the burst: how many requests a full bucket admits at once.
	Limit int
	// Remaining is how many more requests would be admitted right now, at
	// the same rate and burst.
	Remaining int
	// RetryAfter is how long until one request would be admitted; 0 when
	// Allowed.
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again (Limit requests
	// available) if no more requests are admitted meanwhile.
	Reset time.Duration
	// Window is the time a whole burst takes to refill: Limit requests per
	// Window is the sustained rate (the w of a RateLimit-Policy field).
	Window time.Duration
}

// Allow decides whether a request for key arriving at now is admitted at
// rate requests per second with bursts of up to burst requests, and counts
// it if it is. Rejected requests change nothing.
//
// rate must be positive and burst at least 1. A rate that is not positive
// (or NaN) is taken as the lowest rate the limiter represents, one request
// per 2^60 ns (about 36 years); a burst below 1 as 1; the emission
// interval is at least 1 ns; and the burst is capped so that its span
// (burst/rate) stays within 2^60 ns, in which case Limit reports the burst
// applied.
//
// now is the request's time, between the years 1678 and 2200 (its
// UnixNano, plus a span, must fit an int64); calls for a key need not be in
// order (an earlier now only finds the bucket emptier). Allow allocates only when it
// stores a new key.
func (l *Limiter) Allow(key string, now time.Time, rate float64, burst int) Result {
	t := now.UnixNano()
	interval, span, burst := params(rate, burst)
	s := &l.shards[maphash.String(l.seed, key)&l.mask].shard

	s.mu.Lock()
	id, ok := s.index[key]
	tat := t
	if ok {
		if stored := s.heap[s.slots[id].pos].tat; stored > t {
			tat = stored
		}
	}
	next := tat + interval
	allowAt := next - span
	if t < allowAt {
		s.mu.Unlock()
		return Result{
			Limit:      burst,
			RetryAfter: time.Duration(allowAt - t),
			Reset:      time.Duration(tat - t),
			Window:     time.Duration(span),
		}
	}
	if ok {
		s.raise(int(s.slots[id].pos), next)
	} else {
		s.insert(key, next, t)
	}
	s.mu.Unlock()
	return Result{
		Allowed:   true,
		Limit:     burst,
		Remaining: int((t - allowAt) / interval),
		Reset:     time.Duration(next - t),
		Window:    time.Duration(span),
	}
}

// Len returns the number of keys held, expired ones included.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i].shard
		s.mu.Lock()
		n += len(s.heap)
		s.mu.Unlock()
	}
	return n
}

// params returns the emission interval and the burst's span in
// nanoseconds, and the burst applied (see Allow).
func params(rate float64, burst int) (interval, span int64, b int) {
	interval = maxSpan
	if rate > 0 {
		if f := math.Round(1e9 / rate); f < float64(maxSpan) {
			interval = max(int64(f), 1)
		}
	}
	b = max(burst, 1)
	if limit := maxSpan / interval; int64(b) > limit {
		b = int(limit)
	}
	return interval, int64(b) * interval, b
}

// shard is one lock's worth of keys: a map from key to a slot, and a
// binary min-heap of (TAT, slot) so that the key with the oldest TAT is at
// the root. Slots do not move; each records its heap position.
type shard struct {
	mu       sync.Mutex
	capacity int
	index    map[string]int32
	slots    []slot
	heap     []item
	free     []int32
}

// paddedShard keeps shards on separate cache lines (two lines: adjacent
// line prefetch pairs them), so that locking one does not slow its
// neighbours.
type paddedShard struct {
	shard
	_ [128 - unsafe.Sizeof(shard{})%128]byte
}

type slot struct {
	key string
	pos int32 // index in heap
}

type item struct {
	tat  int64
	slot int32
}

// raise sets the TAT of the item at heap position i to tat, which is later
// than its current TAT.
func (s *shard) raise(i int, tat int64) {
	s.heap[i].tat = tat
	s.down(i)
}

// insert stores a key that is not in the shard.
func (s *shard) insert(key string, tat, now int64) {
	// Forget a couple of expired keys on the way, so they do not wait for
	// the shard to fill up, then make room if the shard is full.
	for n := 0; n < 2 && len(s.heap) > 0 && s.heap[0].tat <= now; n++ {
		s.evictRoot()
	}
	if len(s.heap) >= s.capacity {
		s.evictRoot()
	}
	var id int32
	if n := len(s.free); n > 0 {
		id, s.free = s.free[n-1], s.free[:n-1]
	} else {
		id = int32(len(s.slots))
		s.slots = append(s.slots, slot{})
	}
	// Clone: the caller's string may share a large buffer or be reused.
	key = strings.Clone(key)
	s.slots[id] = slot{key: key, pos: int32(len(s.heap))}
	s.heap = append(s.heap, item{tat: tat, slot: id})
	s.index[key] = id
	s.up(len(s.heap) - 1)
}

// evictRoot forgets the key with the oldest TAT.
func (s *shard) evictRoot() {
	root := s.heap[0]
	sl := &s.slots[root.slot]
	delete(s.index, sl.key)
	*sl = slot{}
	s.free = append(s.free, root.slot)
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap = s.heap[:last]
	if last > 0 {
		s.slots[s.heap[0].slot].pos = 0
		s.down(0)
	}
}

func (s *shard) up(i int) {
	h := s.heap
	x := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p].tat <= x.tat {
			break
		}
		h[i] = h[p]
		s.slots[h[i].slot].pos = int32(i)
		i = p
	}
	h[i] = x
	s.slots[x.slot].pos = int32(i)
}

func (s *shard) down(i int) {
	h := s.heap
	n := len(h)
	x := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].tat < h[c].tat {
			c = r
		}
		if h[c].tat >= x.tat {
			break
		}
		h[i] = h[c]
		s.slots[h[i].slot].pos = int32(i)
		i = c
	}
	h[i] = x
	s.slots[x.slot].pos = int32(i)
}
