package action

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// IntrospectorOptions configure an Introspector; zero values mean defaults.
type IntrospectorOptions struct {
	Client *OAuth // required, with an IntrospectionURL
	// TTL bounds how long an active answer is kept (default 60s); it is
	// never kept past the token's exp.
	TTL time.Duration
	// NegativeTTL is how long an inactive answer is kept (default 10s).
	NegativeTTL time.Duration
	// MaxEntries bounds the cache (default 100,000).
	MaxEntries int
	Now        func() time.Time
}

func (o *IntrospectorOptions) validate() error {
	switch {
	case o.Client == nil:
		return errors.New("action: introspector: client is nil")
	case o.Client.o.IntrospectionURL == "":
		return errors.New("action: introspector: client has no introspection_url")
	case o.TTL < 0 || o.NegativeTTL < 0:
		return errors.New("action: introspector: negative ttl")
	case o.MaxEntries < 0:
		return errors.New("action: introspector: negative max_entries")
	}
	return nil
}

// Introspector caches introspection answers for the request path, keyed
// by token id (the raw token is never kept). Concurrent lookups of one
// token id share one call. It is safe for concurrent use.
//
// Answers are shared between callers: their Scope and Audience slices
// must not be modified.
type Introspector struct {
	o IntrospectorOptions

	mu      sync.Mutex
	cache   map[string]cached
	flights map[string]*flight

	hits, misses, calls, errs atomic.Uint64
}

type cached struct {
	in    Introspection
	until time.Time
}

type flight struct {
	done    chan struct{}
	in      Introspection
	err     error
	waiters int // lookups sharing the call beyond the first (tests)
}

// IntrospectorStats are an Introspector's counters.
type IntrospectorStats struct {
	Hits, Misses, Calls, Errors uint64
	Entries                     int
}

// NewIntrospector validates o and returns an Introspector.
func NewIntrospector(o IntrospectorOptions) (*Introspector, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.TTL == 0 {
		o.TTL = 60 * time.Second
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = 10 * time.Second
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Introspector{o: o, cache: make(map[string]cached), flights: make(map[string]*flight)}, nil
}

// Lookup returns token's introspection, from the cache when fresh.
// tokenID is token's fingerprint; token is read only by the call, which
// copies it (the caller may reuse or wipe it when Lookup returns). A call
// in flight is not cancelled by one caller's ctx ending, since other
// lookups may share it; it is bounded by the client's Timeout. Errors are
// not cached.
func (i *Introspector) Lookup(ctx context.Context, tokenID string, token []byte) (Introspection, error) {
	if tokenID == "" {
		return Introspection{}, errors.New("action: introspector: empty token id")
	}
	now := i.o.Now()
	i.mu.Lock()
	if c, ok := i.cache[tokenID]; ok {
		if now.Before(c.until) {
			i.mu.Unlock()
			i.hits.Add(1)
			return c.in, nil
		}
		delete(i.cache, tokenID)
	}
	i.misses.Add(1)
	f, ok := i.flights[tokenID]
	if ok {
		f.waiters++
	} else {
		if len(token) == 0 {
			i.mu.Unlock()
			return Introspection{}, errors.New("action: introspector: empty token")
		}
		f = &flight{done: make(chan struct{})}
		i.flights[tokenID] = f
		tok := secret(append([]byte(nil), token...))
		go i.fetch(context.WithoutCancel(ctx), tokenID, tok, f)
	}
	i.mu.Unlock()
	select {
	case <-f.done:
		return f.in, f.err
	case <-ctx.Done():
		return Introspection{}, ctx.Err()
	}
}

func (i *Introspector) fetch(ctx context.Context, tokenID string, tok secret, f *flight) {
	i.calls.Add(1)
	in, err := i.o.Client.Introspect(ctx, tok)
	tok.wipe()
	if err != nil {
		i.errs.Add(1)
	}
	now := i.o.Now()
	i.mu.Lock()
	delete(i.flights, tokenID)
	if err == nil {
		until := now.Add(i.o.NegativeTTL)
		if in.Active {
			until = now.Add(i.o.TTL)
			if !in.Expiry.IsZero() && in.Expiry.Before(until) {
				until = in.Expiry
			}
		}
		if until.After(now) {
			i.evictFor(now)
			i.cache[tokenID] = cached{in: in, until: until}
		}
	}
	i.mu.Unlock()
	f.in, f.err = in, err
	close(f.done)
}

// evictFor makes room for one entry: of a few entries sampled (map order
// is random), an expired one, else the one expiring first.
func (i *Introspector) evictFor(now time.Time) {
	if len(i.cache) < i.o.MaxEntries {
		return
	}
	var victim string
	var first time.Time
	n := 0
	for id, c := range i.cache {
		if !now.Before(c.until) {
			victim = id
			break
		}
		if n == 0 || c.until.Before(first) {
			victim, first = id, c.until
		}
		if n++; n == 8 {
			break
		}
	}
	delete(i.cache, victim)
}

// Forget drops tokenID's cached answer, after it was revoked.
func (i *Introspector) Forget(tokenID string) {
	i.mu.Lock()
	delete(i.cache, tokenID)
	i.mu.Unlock()
}

// Stats reports the Introspector's counters.
func (i *Introspector) Stats() IntrospectorStats {
	i.mu.Lock()
	n := len(i.cache)
	i.mu.Unlock()
	return IntrospectorStats{Hits: i.hits.Load(), Misses: i.misses.Load(), Calls: i.calls.Load(), Errors: i.errs.Load(), Entries: n}
}
