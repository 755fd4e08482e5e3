package action

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestIntrospectorSharesOneCall(t *testing.T) {
	const tok = "tok-shared-0123456789"
	s := newOAuthServer(t, tok)
	block := make(chan struct{})
	s.set(func(s *oauthServer) { s.block = block })
	in, err := NewIntrospector(IntrospectorOptions{Client: s.client(t, "")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			r, err := in.Lookup(context.Background(), "tk_shared", []byte(tok))
			if err == nil && !r.Active {
				err = fmt.Errorf("inactive")
			}
			errs <- err
		})
	}
	// Hold the server until every lookup shares the call in flight.
	waitFor(t, "lookups to share the call", func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		f := in.flights["tk_shared"]
		return f != nil && f.waiters == n-1
	})
	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, calls := s.counts(); calls != 1 {
		t.Fatalf("%d introspection calls, want 1", calls)
	}
	// Cached now, by token id: no call even without the token.
	if r, err := in.Lookup(context.Background(), "tk_shared", nil); err != nil || !r.Active {
		t.Fatalf("cached: %+v, %v", r, err)
	}
	if st := in.Stats(); st.Calls != 1 || st.Hits != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIntrospectorCallerCancel(t *testing.T) {
	const tok = "tok-cancel-0123456789"
	s := newOAuthServer(t, tok)
	block := make(chan struct{})
	s.set(func(s *oauthServer) { s.block = block })
	in, _ := NewIntrospector(IntrospectorOptions{Client: s.client(t, "")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := in.Lookup(ctx, "tk_c", []byte(tok)); done <- err }()
	waitFor(t, "the call", func() bool { _, n := s.counts(); return n == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("cancelled lookup: %v", err)
	}
	// The call goes on for others.
	close(block)
	waitFor(t, "the answer cached", func() bool { return in.Stats().Entries == 1 })
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestIntrospectorExpiry(t *testing.T) {
	const tok = "tok-expiry-0123456789"
	s := newOAuthServer(t, tok)
	clock := &fakeClock{t: time.Now()}
	in, _ := NewIntrospector(IntrospectorOptions{Client: s.client(t, ""), TTL: 2 * time.Hour, NegativeTTL: 10 * time.Second, Now: clock.Now})
	look := func(id, tok string) Introspection {
		t.Helper()
		r, err := in.Lookup(context.Background(), id, []byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	look("tk_a", tok) // exp is in an hour: kept until then, not the 2h TTL
	clock.Add(59 * time.Minute)
	look("tk_a", tok)
	if _, n := s.counts(); n != 1 {
		t.Fatalf("%d calls before exp", n)
	}
	clock.Add(2 * time.Minute)
	look("tk_a", tok)
	if _, n := s.counts(); n != 2 {
		t.Fatalf("%d calls after exp, want 2", n)
	}
	// Negative answers, for NegativeTTL.
	if look("tk_u", "unknown").Active {
		t.Fatal("unknown token active")
	}
	clock.Add(9 * time.Second)
	look("tk_u", "unknown")
	clock.Add(2 * time.Second)
	look("tk_u", "unknown")
	if _, n := s.counts(); n != 4 {
		t.Fatalf("%d calls, want 4", n)
	}
	in.Forget("tk_a")
	look("tk_a", tok)
	if _, n := s.counts(); n != 5 {
		t.Fatalf("%d calls after Forget, want 5", n)
	}
}

func TestIntrospectorBounded(t *testing.T) {
	s := newOAuthServer(t)
	in, _ := NewIntrospector(IntrospectorOptions{Client: s.client(t, ""), MaxEntries: 10})
	for i := range 50 {
		if _, err := in.Lookup(context.Background(), fmt.Sprint("tk_", i), []byte(fmt.Sprint("t", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := in.Stats().Entries; n != 10 {
		t.Fatalf("%d entries, want 10", n)
	}
	if _, err := NewIntrospector(IntrospectorOptions{}); err == nil {
		t.Fatal("no client accepted")
	}
	if _, err := in.Lookup(context.Background(), "", []byte("t")); err == nil {
		t.Fatal("empty token id accepted")
	}
}
