// Package storetest is the conformance suite every store.Store passes:
// the in-memory and durable Local stores and the Redis store run the same
// tests, so that what vigil decides does not depend on where it keeps its
// state.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/score"
	"github.com/vigil-sec/vigil/simulate"
	"github.com/vigil-sec/vigil/store"
)

// Env is what a store under test is opened with.
type Env struct {
	// Name is unique to one test; opening again with the same Name opens
	// the same state (a durable store's directory, a Redis key prefix).
	Name string
	// Engine has the scoring options.
	Engine engine.Options
	// Now is the store's clock (denial expiry).
	Now func() time.Time
}

// Factory opens stores of one kind.
type Factory struct {
	// Open returns a store; the suite closes it.
	Open func(t *testing.T, env Env) store.Store
	// Persistent: a store opened again with the same Name finds what the
	// closed one held.
	Persistent bool
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	t.Run("VerdictsEqualEngine", func(t *testing.T) { verdictsEqualEngine(t, f) })
	t.Run("InspectAndComplete", func(t *testing.T) { inspectAndComplete(t, f) })
	t.Run("Denylist", func(t *testing.T) { denylist(t, f) })
	t.Run("Persistence", func(t *testing.T) { persistence(t, f) })
	t.Run("Concurrent", func(t *testing.T) { concurrent(t, f) })
	t.Run("Closed", func(t *testing.T) { closed(t, f) })
}

// EngineOptions are the scoring options the suite judges with: the vigil
// model and its default ladder.
func EngineOptions(tb testing.TB) engine.Options {
	tb.Helper()
	tr, err := profile.NewTracker(profile.Params{})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := score.Vigil(score.VigilOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return engine.Options{Tracker: tr, Model: m, Ladder: policy.Ladder{Throttle: 4, StepUp: 7, Block: 10, Margin: 1, Hold: 5 * time.Minute}}
}

// Traffic is a simulated day and a half of a small population with attacks
// (client_ids, so peer groups, included): verdicts of every level.
func Traffic(tb testing.TB) []event.Event {
	tb.Helper()
	tr, err := simulate.Generate(simulate.Options{
		Seed:        3,
		Duration:    40 * time.Hour,
		Credentials: map[string]int{"browser": 2, "mobile": 2, "etl": 1, "poller": 2},
		Attacks:     []string{"cloud_exfil", "proxy_replay", "scope_probe"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	evs := make([]event.Event, len(tr.Items))
	for i := range tr.Items {
		evs[i] = tr.Items[i].Event
	}
	return evs
}

// Synthetic returns n events over creds credentials of 20 clients, a
// millisecond apart from two days ago, for benchmarks: the credential of
// each drawn uniformly (every request a different credential, the worst
// case for a store), or with zipf from a Zipf distribution (s = 1.1: a
// few credentials send most requests, as API traffic goes).
func Synthetic(creds, n int, zipf bool) []event.Event {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, uint64(creds-1))
	ids := make([]string, creds)
	for i := range ids {
		ids[i] = fmt.Sprintf("tk_%022x", r.Uint64())
	}
	endpoints := []string{"/v1/accounts/{id}", "/v1/orders", "/v1/orders/{id}", "/v1/me", "/v1/search"}
	t0 := time.Now().Add(-48 * time.Hour).UnixNano()
	evs := make([]event.Event, n)
	for i := range evs {
		c := r.IntN(creds)
		if zipf {
			c = int(z.Uint64())
		}
		evs[i] = event.Event{Time: t0 + int64(i)*int64(time.Millisecond), TokenID: ids[c], ClientID: fmt.Sprintf("client-%d", c%20),
			SourceIP: netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)}), Endpoint: endpoints[(c+r.IntN(2))%len(endpoints)],
			Status: 200, UserAgent: "okhttp/4.12.0", Country: "US", ASN: 64512 + uint32(c%100), PayloadBytes: int64(500 + r.IntN(5000))}
	}
	return evs
}

// Preload judges evs in batches of 256, so that their credentials have
// records before a benchmark's timing starts.
func Preload(b *testing.B, s store.Store, evs []event.Event) {
	b.Helper()
	vs := make([]store.Verdict, 256)
	for off := 0; off < len(evs); off += 256 {
		end := min(off+256, len(evs))
		if err := s.Judge(b.Context(), evs[off:end], vs[:end-off]); err != nil {
			b.Fatal(err)
		}
	}
}

// Reference returns the verdicts of one in-memory engine judging evs in
// order: what every store must give.
func Reference(tb testing.TB, o engine.Options, evs []event.Event) []engine.Verdict {
	tb.Helper()
	e, err := engine.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	want := make([]engine.Verdict, len(evs))
	for i := range evs {
		ev := evs[i]
		e.Process(&ev, &want[i])
	}
	return want
}

// Equal returns the index of the first verdict of got that differs from
// want's, the reference's, and false; or -1, true. Verdicts are compared
// on what they mean: level, time, trust, risk and the reasons in use
// (a verdict's unused reason slots may hold anything).
func Equal(got []store.Verdict, want []engine.Verdict) (int, bool) {
	for i := range want {
		g, w := &got[i].Verdict, &want[i]
		if g.Level != w.Level || g.Now != w.Now || g.Trust != w.Trust || g.Risk != w.Risk || g.CredentialRisk != w.CredentialRisk ||
			g.N != w.N || !slices.Equal(g.Reasons[:g.N], w.Reasons[:w.N]) || got[i].Denial != nil || got[i].Fallback {
			return i, false
		}
	}
	return -1, true
}

func open(t *testing.T, f Factory, name string, now func() time.Time) store.Store {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	return f.Open(t, Env{Name: name, Engine: EngineOptions(t), Now: now})
}

func verdictsEqualEngine(t *testing.T, f Factory) {
	evs := Traffic(t)
	want := Reference(t, EngineOptions(t), evs)
	levels := map[policy.Level]int{}
	for _, v := range want {
		levels[v.Level]++
	}
	if len(levels) < 3 {
		t.Fatalf("reference verdicts %v: too uniform to prove anything", levels)
	}
	for _, size := range []int{1, 64, 1000} {
		s := open(t, f, t.Name()+"/"+strconv.Itoa(size), nil)
		got := make([]store.Verdict, len(evs))
		cp := append([]event.Event(nil), evs...)
		for off := 0; off < len(cp); off += size {
			end := min(off+size, len(cp))
			if err := s.Judge(t.Context(), cp[off:end], got[off:end]); err != nil {
				t.Fatalf("batch size %d at event %d: %v", size, off, err)
			}
		}
		if i, ok := Equal(got, want); !ok {
			t.Fatalf("batch size %d, event %d of %d (%s): store %+v, engine %+v", size, i, len(evs), evs[i].TokenID, got[i], want[i])
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d events, levels %v", len(evs), levels)
}

func inspectAndComplete(t *testing.T, f Factory) {
	ctx := t.Context()
	evs := Traffic(t)[:400]
	s := open(t, f, t.Name(), nil)
	defer s.Close()
	ref, err := engine.New(EngineOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if _, ok, err := s.Inspect(ctx, "never-seen"); ok || err != nil {
		t.Fatalf("Inspect of an unknown credential: %v, %v", ok, err)
	}
	if err := s.Complete(ctx, []store.Completion{{TokenID: "never-seen", At: evs[0].Time, Outcome: profile.Outcome{Status: 200}}}); err != nil {
		t.Fatalf("Complete of an unknown credential: %v", err)
	}
	if _, ok, _ := s.Inspect(ctx, "never-seen"); ok {
		t.Fatal("Complete created a credential")
	}
	vs := make([]store.Verdict, 1)
	var rv engine.Verdict
	for i := range evs {
		ev, rev := evs[i], evs[i]
		if err := s.Judge(ctx, []event.Event{ev}, vs); err != nil {
			t.Fatal(err)
		}
		ref.Process(&rev, &rv)
		c := store.Completion{TokenID: ev.TokenID, At: vs[0].Now, Outcome: profile.Outcome{Status: 200 + 300*(i%3/2), ResponseBytes: int64(100 * i), HasBytes: true}, Trust: vs[0].Trust}
		if err := s.Complete(ctx, []store.Completion{c}); err != nil {
			t.Fatal(err)
		}
		ref.Complete(c.TokenID, c.At, c.Outcome, c.Trust)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.TokenID] {
			continue
		}
		seen[ev.TokenID] = true
		got, ok, err := s.Inspect(ctx, ev.TokenID)
		want, _ := ref.Inspect(ev.TokenID)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Inspect(%s): %+v, %v, %v; engine %+v", ev.TokenID, got, ok, err, want)
		}
	}
}

func denylist(t *testing.T, f Factory) {
	ctx := t.Context()
	var mu sync.Mutex
	clock := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := open(t, f, t.Name(), now)
	defer s.Close()
	ev := event.Event{Time: clock.UnixNano(), TokenID: "tk_denied", Endpoint: "/v1/x", Status: 200}
	vs := make([]store.Verdict, 2)

	for _, bad := range []store.Denial{{}, {TokenID: "x", At: clock, Until: clock.Add(-time.Hour)}} {
		if err := s.Deny(ctx, bad); err == nil {
			t.Fatalf("Deny(%+v) accepted", bad)
		}
	}
	if err := s.Deny(ctx, store.Denial{TokenID: "tk_denied", Reason: "leaked in a public repo", By: "alice", Until: clock.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Deny(ctx, store.Denial{TokenID: "tk_other", Reason: "forever"}); err != nil {
		t.Fatal(err)
	}
	other := event.Event{Time: clock.UnixNano(), TokenID: "tk_fine", Endpoint: "/v1/x", Status: 200}
	if err := s.Judge(ctx, []event.Event{ev, other}, vs); err != nil {
		t.Fatal(err)
	}
	if vs[0].Level != policy.Block || vs[0].Denial == nil || vs[0].Denial.Reason != "leaked in a public repo" || vs[0].Denial.By != "alice" {
		t.Fatalf("denied credential: %+v", vs[0])
	}
	if vs[1].Denial != nil || vs[1].Level == policy.Block {
		t.Fatalf("credential not denied: %+v", vs[1])
	}
	if _, ok, _ := s.Inspect(ctx, "tk_denied"); ok {
		t.Fatal("a denied credential's request was learned")
	}
	ds, err := s.Denials(ctx, 0)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Denials: %+v, %v", ds, err)
	}
	if ds, _ := s.Denials(ctx, 1); len(ds) != 1 {
		t.Fatalf("Denials(max 1): %d", len(ds))
	}
	// Expiry.
	mu.Lock()
	clock = clock.Add(2 * time.Hour)
	mu.Unlock()
	ev.Time = clock.UnixNano()
	if err := s.Judge(ctx, []event.Event{ev}, vs); err != nil {
		t.Fatal(err)
	}
	if vs[0].Denial != nil {
		t.Fatalf("expired denial still applied: %+v", vs[0].Denial)
	}
	// Undeny.
	if ok, err := s.Undeny(ctx, "tk_other"); !ok || err != nil {
		t.Fatalf("Undeny: %v, %v", ok, err)
	}
	if ok, err := s.Undeny(ctx, "tk_other"); ok || err != nil {
		t.Fatalf("second Undeny: %v, %v", ok, err)
	}
	other.TokenID, other.Time = "tk_other", clock.UnixNano()
	if err := s.Judge(ctx, []event.Event{other}, vs); err != nil || vs[0].Denial != nil {
		t.Fatalf("undenied credential: %+v, %v", vs[0], err)
	}
	if ds, _ := s.Denials(ctx, 0); len(ds) != 0 {
		t.Fatalf("Denials after expiry and Undeny: %+v", ds)
	}
}

func persistence(t *testing.T, f Factory) {
	ctx := t.Context()
	evs := Traffic(t)
	half := len(evs) / 2
	want := Reference(t, EngineOptions(t), evs)
	s := open(t, f, t.Name(), nil)
	got := make([]store.Verdict, len(evs))
	if err := s.Judge(ctx, evs[:half], got[:half]); err != nil {
		t.Fatal(err)
	}
	if err := s.Deny(ctx, store.Denial{TokenID: "tk_revoked", Reason: "rotated"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, f, t.Name(), nil)
	defer s.Close()
	ds, err := s.Denials(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Judge(ctx, evs[half:], got[half:]); err != nil {
		t.Fatal(err)
	}
	_, same := Equal(got, want)
	if f.Persistent {
		if i, ok := Equal(got, want); !ok {
			t.Fatalf("after reopening, event %d: %+v, engine %+v", i, got[i], want[i])
		}
		if len(ds) != 1 || ds[0].TokenID != "tk_revoked" {
			t.Fatalf("denylist after reopening: %+v", ds)
		}
	} else if same || len(ds) != 0 {
		t.Fatalf("a store that is not persistent kept its state (verdicts the same: %v, denials %d)", same, len(ds))
	}
}

// concurrent judges from several goroutines at once (each its own
// credentials): under the race detector, this is the store's locking.
func concurrent(t *testing.T, f Factory) {
	ctx := t.Context()
	s := open(t, f, t.Name(), nil)
	defer s.Close()
	const workers, per = 4, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			vs := make([]store.Verdict, 1)
			t0 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()
			for i := range per {
				ev := event.Event{Time: t0 + int64(i)*int64(time.Second), TokenID: "tk_w" + string(rune('0'+w)), ClientID: "shared-client", Endpoint: "/v1/items", Status: 200}
				if err := s.Judge(ctx, []event.Event{ev}, vs); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					_ = s.Complete(ctx, []store.Completion{{TokenID: ev.TokenID, At: vs[0].Now, Outcome: profile.Outcome{Status: 200}, Trust: vs[0].Trust}})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		sn, ok, err := s.Inspect(ctx, "tk_w"+string(rune('0'+w)))
		if err != nil || !ok || sn.Events != per {
			t.Fatalf("worker %d's credential: %d events (want %d), %v, %v", w, sn.Events, per, ok, err)
		}
	}
}

func closed(t *testing.T, f Factory) {
	s := open(t, f, t.Name(), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.Judge(t.Context(), []event.Event{{TokenID: "x", Time: 1}}, make([]store.Verdict, 1))
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Judge after Close: %v, want store.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

var _ = context.Background
