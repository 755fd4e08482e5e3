package credential

import (
	"context"
	"errors"
	"fmt"
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
	// unknownKeyCooldown is the shortest interval between two reloads
	// caused by tokens naming an unknown key id: a new key is picked up by
	// the first request that uses it, and tokens with made-up key ids cost
	// the identity provider one fetch per cooldown at most.
	unknownKeyCooldown = 10 * time.Second
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
	cooldown time.Duration
	wait     time.Duration

	set    atomic.Pointer[keySet]
	loadMu sync.Mutex // one load at a time, so an older one never overwrites a newer one

	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	inFlight   *flight // the on-demand reload running, if any
	lastForced time.Time
}

// keySet is a loaded JWKS and the list of its key ids, to log changes.
type keySet struct {
	set  jwk.Set
	kids string
}

// flight is an on-demand reload that requests wait for.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

func newKeySource(ctx context.Context, o *JWTOptions, log *slog.Logger) (*keySource, error) {
	k := &keySource{
		log:      log,
		every:    o.Refresh,
		retry:    min(o.Refresh, maxRetry),
		cooldown: unknownKeyCooldown,
		wait:     unknownKeyWait,
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
	if err := k.reload(ctx); err != nil {
		return nil, fmt.Errorf("credential: loading the JWKS from %s: %w", k.name, err)
	}
	k.ctx, k.cancel = context.WithCancel(context.WithoutCancel(ctx))
	k.wg.Add(1)
	go k.run()
	return k, nil
}

// currentSet returns the JWKS in use.
func (k *keySource) currentSet() *keySet { return k.set.Load() }

// reload loads the JWKS and makes it current. A JWKS without keys is an
// error and leaves the current one in place.
func (k *keySource) reload(ctx context.Context) error {
	k.loadMu.Lock()
	defer k.loadMu.Unlock()
	set, err := k.load(ctx)
	if err != nil {
		return err
	}
	if set.Len() == 0 {
		return errors.New("the JWKS holds no keys")
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
	return nil
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
		if err := k.reload(k.ctx); err != nil {
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

// reloadForUnknownKey reloads the JWKS because a token named a key id it
// does not hold, unless one was reloaded for that reason less than
// k.cooldown ago. Concurrent callers share one reload; each waits for it at
// most k.wait. It reports whether a reload completed successfully, in which
// case the token is worth verifying again.
func (k *keySource) reloadForUnknownKey() bool {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return false
	}
	f := k.inFlight
	if f == nil {
		now := time.Now()
		if !k.lastForced.IsZero() && now.Sub(k.lastForced) < k.cooldown {
			k.mu.Unlock()
			return false
		}
		k.lastForced = now
		f = &flight{done: make(chan struct{})}
		k.inFlight = f
		k.wg.Add(1)
		go k.forcedReload(f)
	}
	k.mu.Unlock()
	t := time.NewTimer(k.wait)
	defer t.Stop()
	select {
	case <-f.done:
		return f.err == nil
	case <-t.C:
		return false
	}
}

func (k *keySource) forcedReload(f *flight) {
	defer k.wg.Done()
	k.log.Debug("reloading the JWKS: a token names a key id it does not hold", "jwks", k.name)
	f.err = k.reload(k.ctx)
	if f.err != nil && k.ctx.Err() == nil {
		k.log.Warn("JWKS reload for an unknown key id failed; keeping the keys loaded before",
			"jwks", k.name, "err", f.err)
	}
	k.mu.Lock()
	k.inFlight = nil
	k.mu.Unlock()
	close(f.done)
}

// close stops the reloads and waits for them.
func (k *keySource) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.cancel()
	k.wg.Wait()
}
