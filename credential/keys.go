package credential

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Timings of the JWKS reloads that are not options.
const (
	// defaultFetchTimeout bounds one fetch of a JWKS URL when
	// JWTOptions.HTTPClient is nil.
	defaultFetchTimeout = 10 * time.Second
	// maxRetry is the longest wait before retrying a failed background
	// reload (Refresh when shorter).
	maxRetry = time.Minute
	// unknownKeyInterval is the shortest interval between two reloads
	// caused by tokens naming a key id the JWKS does not hold, whatever
	// the key ids: a flood of made-up ones costs the identity provider one
	// fetch per interval at most.
	unknownKeyInterval = time.Second
	// unknownKeyCooldown is how long a key id still missing after such a
	// reload causes no other: a made-up key id sent again and again costs
	// one fetch per cooldown, and does not hold back the reload that a
	// newly rotated key id needs (which only the interval delays).
	unknownKeyCooldown = 10 * time.Second
	// unknownKeyMax is how many missing key ids are remembered; past it the
	// oldest are forgotten first (and cost a reload again, still at most
	// one per interval).
	unknownKeyMax = 1024
	// unknownKeyWait is how long a request waits for such a reload before
	// it is answered without it (the reload goes on).
	unknownKeyWait = 2 * time.Second
)

// keySource holds the current JWKS and reloads it: every Refresh in the
// background, and on demand when a token names a key id it does not hold.
//
// It fetches with jwk.Fetch or jwk.ReadFile on its own timer rather than
// through jwk.Cache (httprc): one mechanism serves URLs and files alike,
// the first load reports its cause synchronously (jwk.Cache's Register
// waits for a first success, however long), the interval is exactly
// Refresh (httprc clamps it to at least 15 minutes by default and follows
// Cache-Control), and one timer goroutine replaces a controller and a
// worker pool.
type keySource struct {
	log      *slog.Logger
	name     string // the URL or the file, for messages
	load     func(context.Context) (jwk.Set, error)
	every    time.Duration
	retry    time.Duration
	interval time.Duration // unknownKeyInterval
	cooldown time.Duration // unknownKeyCooldown
	wait     time.Duration // unknownKeyWait

	set    atomic.Pointer[keySet]
	loadMu sync.Mutex // one load at a time, so an older one never overwrites a newer one

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	inFlight  *flight   // the on-demand reload scheduled or running, if any
	lastStart time.Time // when the last on-demand reload was to start
	missing   missingKids
}

// keySet is a loaded JWKS and the list of its key ids, to log changes.
type keySet struct {
	set  jwk.Set
	kids string
}

// has reports whether the set holds a key with id kid.
func (s *keySet) has(kid string) bool {
	_, ok := s.set.LookupKeyID(kid)
	return ok
}

// flight is an on-demand reload that requests wait for.
type flight struct {
	start time.Time // when the fetch starts, not before
	done  chan struct{}
	// kids are the key ids asked for by the requests that came in before
	// start; those the reload does not find are remembered as missing,
	// before done is closed.
	kids []string
}

func newKeySource(ctx context.Context, o *JWTOptions, log *slog.Logger) (*keySource, error) {
	k := &keySource{
		log:      log,
		every:    o.Refresh,
		retry:    min(o.Refresh, maxRetry),
		interval: unknownKeyInterval,
		cooldown: unknownKeyCooldown,
		wait:     unknownKeyWait,
		missing:  missingKids{seed: maphash.MakeSeed()},
	}
	if u := o.JWKSURL; u != "" {
		client := o.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: defaultFetchTimeout}
		}
		// Keep the caller's settings, add jwx's redirect policy (no https
		// to http downgrade, at most 5 redirects).
		opt := jwk.WithHTTPClient(jwk.WrapHTTPClientDefaults(client))
		k.name = u
		k.load = func(ctx context.Context) (jwk.Set, error) { return jwk.Fetch(ctx, u, opt) }
	} else {
		path := o.JWKSFile
		k.name = path
		k.load = func(context.Context) (jwk.Set, error) { return jwk.ReadFile(path) }
	}
	if _, err := k.reload(ctx); err != nil {
		return nil, fmt.Errorf("credential: loading the JWKS from %s: %w", k.name, err)
	}
	k.ctx, k.cancel = context.WithCancel(context.WithoutCancel(ctx))
	k.wg.Add(1)
	go k.run()
	return k, nil
}

// currentSet returns the JWKS in use.
func (k *keySource) currentSet() *keySet { return k.set.Load() }

// reload loads the JWKS, makes it current and returns it. A JWKS without
// keys is an error and leaves the current one in place.
func (k *keySource) reload(ctx context.Context) (*keySet, error) {
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	set, err := k.load(ctx)
	if err != nil {
		return nil, err
	}
	if set.Len() == 0 {
		return nil, errors.New("the JWKS holds no keys")
	}
	next := &keySet{set: set, kids: kidsOf(set)}
	switch prev := k.set.Swap(next); {
	case prev == nil:
		k.log.Info("JWKS loaded", "jwks", k.name, "keys", set.Len(), "kids", next.kids)
	case prev.kids != next.kids:
		k.log.Info("JWKS changed", "jwks", k.name, "keys", set.Len(), "kids", next.kids, "previous_kids", prev.kids)
	default:
		k.log.Debug("JWKS reloaded, unchanged", "jwks", k.name)
	}
	return next, nil
}

// kidsOf lists the key ids of set, sorted and comma-separated. Key ids are
// public: they are in the JWKS for anyone to read.
func kidsOf(set jwk.Set) string {
	kids := make([]string, 0, set.Len())
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid, _ := key.KeyID()
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return strings.Join(kids, ",")
}

// run reloads the JWKS every k.every, and k.retry after a failure.
func (k *keySource) run() {
	defer k.wg.Done()
	t := time.NewTimer(k.every)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
		}
		next := k.every
		if _, err := k.reload(k.ctx); err != nil {
			if k.ctx.Err() != nil {
				return
			}
			k.log.Warn("JWKS reload failed; keeping the keys loaded before",
				"jwks", k.name, "err", err, "retry_in", k.retry)
			next = k.retry
		}
		t.Reset(next)
	}
}

// awaitKey is called when a token names a key id, kid, that the JWKS seen
// does not hold. It returns a newer JWKS holding kid, loading it if need
// be, or nil when none is to be had within k.wait.
//
// A request that names a kid is answered "no such key" only once a JWKS
// fetched after it came in (a reload that starts after it asks, or one it
// asked for) lacks kid; the kid is then remembered as missing for
// k.cooldown, during which its tokens cause no reload. Reloads start at
// least k.interval apart, for all kids together: one scheduled reload is
// shared by all the requests waiting for it. So a token with a made-up
// kid sent again and again costs one fetch per cooldown, a flood of
// made-up kids one fetch per interval, and neither keeps a rotated key
// from being picked up within about an interval.
func (k *keySource) awaitKey(kid string, seen *keySet) *keySet {
	asked := time.Now()
	deadline := asked.Add(k.wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		if k.closed {
			return nil
		}
		if cur := k.currentSet(); cur != seen {
			if cur.has(kid) {
				return cur
			}
			seen = cur
		}
		if k.missing.contains(kid, asked) {
			return nil
		}
		f := k.inFlight
		if f == nil {
			start := time.Now()
			if !k.lastStart.IsZero() {
				start = later(start, k.lastStart.Add(k.interval))
			}
			if start.After(deadline) {
				return nil
			}
			f = &flight{start: start, done: make(chan struct{})}
			k.inFlight, k.lastStart = f, start
			k.wg.Add(1)
			go k.forcedReload(f)
		}
		if !asked.After(f.start) {
			f.kids = append(f.kids, kid)
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		k.mu.Unlock()
		select {
		case <-f.done:
		case <-timer.C:
			k.mu.Lock()
			return nil
		}
		k.mu.Lock()
		// Now f (or a later reload) holds kid, or kid is remembered as
		// missing, or f started before this request asked: another round.
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// forcedReload waits for f.start, reloads the JWKS and ends f.
func (k *keySource) forcedReload(f *flight) {
	defer k.wg.Done()
	var set *keySet
	var err error
	if d := time.Until(f.start); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-k.ctx.Done():
		}
		t.Stop()
	}
	if err = k.ctx.Err(); err == nil {
		k.log.Debug("reloading the JWKS: a token names a key id it does not hold", "jwks", k.name)
		set, err = k.reload(k.ctx)
		if err != nil && k.ctx.Err() == nil {
			k.log.Warn("JWKS reload for an unknown key id failed; keeping the keys loaded before",
				"jwks", k.name, "err", err)
		}
	}
	k.mu.Lock()
	until := time.Now().Add(k.cooldown)
	for _, kid := range f.kids {
		// Asked for before the fetch, and not found (or the fetch failed).
		if set == nil || !set.has(kid) {
			k.missing.add(kid, until)
		}
	}
	f.kids = nil
	k.inFlight = nil
	k.mu.Unlock()
	close(f.done)
}

// missingKids remembers key ids that a JWKS reload did not find, until
// they expire, max unknownKeyMax of them. It keeps a hash of each (with a
// seed of its own, so that no one can make two ids collide on purpose),
// never the id, so a long made-up id costs no more than a short one.
// Entries are added with times that do not decrease (under keySource.mu,
// now plus a fixed cooldown), so the oldest is the first to expire: a ring
// in the order of addition is also the order of expiry.
type missingKids struct {
	seed  maphash.Seed
	until map[uint64]time.Time
	ring  []missingKid // len unknownKeyMax once used
	head  int          // index of the oldest entry in ring
	n     int          // entries in ring
}

type missingKid struct {
	hash  uint64
	until time.Time
}

// contains reports whether kid is remembered as missing at now.
func (m *missingKids) contains(kid string, now time.Time) bool {
	if m.n == 0 {
		return false
	}
	until, ok := m.until[maphash.String(m.seed, kid)]
	return ok && now.Before(until)
}

// add remembers kid as missing until until, unless it already is,
// forgetting the entries that have expired and, when full, the oldest.
func (m *missingKids) add(kid string, until time.Time) {
	now := time.Now()
	if m.contains(kid, now) {
		return // many requests with one kid waited for the same reload
	}
	if m.ring == nil {
		m.ring = make([]missingKid, unknownKeyMax)
		m.until = make(map[uint64]time.Time, unknownKeyMax)
	}
	for m.n > 0 && (m.n == len(m.ring) || !now.Before(m.ring[m.head].until)) {
		old := m.ring[m.head]
		if m.until[old.hash].Equal(old.until) { // not added again since
			delete(m.until, old.hash)
		}
		m.ring[m.head] = missingKid{}
		m.head = (m.head + 1) % len(m.ring)
		m.n--
	}
	h := maphash.String(m.seed, kid)
	m.ring[(m.head+m.n)%len(m.ring)] = missingKid{hash: h, until: until}
	m.n++
	m.until[h] = until
}

// close stops the reloads and waits for them.
func (k *keySource) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
}
