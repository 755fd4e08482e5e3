package inline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/store"
)

// fakeStore is an in-memory store whose verdicts judge rewrites: a test
// plays a shared store's outage or answers with its own verdicts.
type fakeStore struct {
	store.Store
	judge func(ctx context.Context, evs []event.Event, vs []store.Verdict) error
	stats store.Stats
}

func (f *fakeStore) Judge(ctx context.Context, evs []event.Event, vs []store.Verdict) error {
	return f.judge(ctx, evs, vs)
}

func (f *fakeStore) Stats() store.Stats { return f.stats }

func newFake(t testing.TB, eng *engine.Engine, judge func(local store.Store, evs []event.Event, vs []store.Verdict) error) *fakeStore {
	t.Helper()
	l, err := store.NewLocal(eng, store.LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeStore{Store: l}
	f.judge = func(ctx context.Context, evs []event.Event, vs []store.Verdict) error { return judge(l, evs, vs) }
	return f
}

// gather returns the value of every unlabelled metric in reg.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 {
				out[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func reason(r *gate.Result, signal string) (decision.Reason, bool) {
	for _, x := range r.Verdict.Reasons {
		if x.Signal == signal {
			return x, true
		}
	}
	return decision.Reason{}, false
}

// TestDenylist: a denied credential is blocked whatever its profile says,
// in shadow mode too, with a reason that says who denied it and until
// when; its profile learns nothing meanwhile. Taken off the list, it is
// allowed again.
func TestDenylist(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, shadow := range []bool{false, true} {
		t.Run(fmt.Sprintf("shadow=%v", shadow), func(t *testing.T) {
			o := testOpts{shadow: shadow}
			if !shadow {
				o.metrics = m
			}
			c := newChecker(t, o)
			warm(t, c, "tok-denied-0123")
			home := func(at time.Duration) *gate.Result {
				return check(t, c, request(at, "tok-denied-0123", "198.51.100.7", "okhttp/4.12.0", "/v1/orders"))
			}
			id := home(30 * time.Minute).Verdict.TokenID
			until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			ctx := context.Background()
			if err := c.Store().Deny(ctx, store.Denial{TokenID: id, Reason: "leaked in a public repo", By: "alice", Until: until}); err != nil {
				t.Fatal(err)
			}
			r := home(31 * time.Minute)
			want := decision.Reason{Signal: SignalDenylisted,
				Detail: "credential denylisted: leaked in a public repo (by alice, until " + until.Format(time.RFC3339) + ")"}
			if r.Verdict.Decided != policy.Block || r.Verdict.Level != policy.Block || r.Verdict.Shadow || r.Response.Status != 403 ||
				len(r.Verdict.Reasons) != 1 || r.Verdict.Reasons[0] != want {
				t.Fatalf("denied: %d %+v", r.Response.Status, r.Verdict)
			}
			if r.Ticket.TokenID != "" {
				t.Errorf("a denied request has a ticket: %+v", r.Ticket)
			}
			if strings.Contains(fmt.Sprint(r), "tok-denied-0123") {
				t.Error("the raw credential is in the result")
			}
			snap, recent, ok, err := c.Inspect(ctx, id, 1)
			if err != nil || !ok || snap.Events != 31 || len(recent) != 1 || recent[0].Reasons[0] != want {
				t.Errorf("inspect while denied: %v %v %+v %+v", err, ok, snap, recent)
			}

			if ok, err := c.Store().Undeny(ctx, id); !ok || err != nil {
				t.Fatalf("undeny: %v %v", ok, err)
			}
			if r := home(32 * time.Minute); r.Verdict.Level != policy.Allow || r.Response.Status != 200 || len(r.Verdict.Reasons) != 0 {
				t.Errorf("after undeny: %d %+v", r.Response.Status, r.Verdict)
			}
			// Without who or until.
			if err := c.Store().Deny(ctx, store.Denial{TokenID: id}); err != nil {
				t.Fatal(err)
			}
			r = home(33 * time.Minute)
			if d, _ := reason(r, SignalDenylisted); d.Detail != "credential denylisted: no reason given (no expiry)" {
				t.Errorf("bare denial: %q", d.Detail)
			}
		})
	}
	if got := gather(t, reg)["vigil_denylisted_total"]; got != 2 {
		t.Errorf("vigil_denylisted_total %v, want 2", got)
	}
}

// TestStoreFallback: a shared store that cannot be reached says so in its
// verdicts; the Checker shows it as a reason and counts it.
func TestStoreFallback(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var fake *fakeStore
	open := testOpts{metrics: m, store: func(eng *engine.Engine) store.Store {
		fake = newFake(t, eng, func(l store.Store, evs []event.Event, vs []store.Verdict) error {
			err := l.Judge(context.Background(), evs, vs)
			for i := range vs {
				vs[i].Fallback = true
			}
			return err
		})
		fake.stats = store.Stats{Credentials: 3, Evictions: 4, Rejected: 5, Fallbacks: 6, Errors: 7, Conflicts: 8}
		return fake
	}}
	c := newChecker(t, open)
	r := check(t, c, request(0, "tok-fallback-1", "198.51.100.7", "okhttp/4.12.0", "/v1/orders"))
	want := decision.Reason{Signal: SignalStoreUnavailable, Detail: "shared state unreachable: judged on this replica's local profile"}
	if got, _ := reason(r, SignalStoreUnavailable); got != want || r.Verdict.Level != policy.Allow || r.Response.Status != 200 {
		t.Errorf("fail open: %d %+v", r.Response.Status, r.Verdict)
	}

	closed := func(eng *engine.Engine) store.Store {
		return newFake(t, eng, func(_ store.Store, evs []event.Event, vs []store.Verdict) error {
			for i := range evs {
				vs[i] = store.Verdict{Fallback: true, FailClosed: true}
				vs[i].Level, vs[i].Now = policy.Block, evs[i].Time
			}
			return nil
		})
	}
	c = newChecker(t, testOpts{store: closed})
	r = check(t, c, request(0, "tok-fallback-1", "198.51.100.7", "okhttp/4.12.0", "/v1/orders"))
	want.Detail = "shared state unreachable: fail_closed"
	if r.Verdict.Level != policy.Block || r.Response.Status != 403 || len(r.Verdict.Reasons) != 1 || r.Verdict.Reasons[0] != want {
		t.Errorf("fail closed: %d %+v", r.Response.Status, r.Verdict)
	}
	// Shadow mode enforces no outage either.
	c = newChecker(t, testOpts{store: closed, shadow: true})
	if r = check(t, c, request(0, "tok-fallback-1", "198.51.100.7", "okhttp/4.12.0", "/v1/orders")); r.Response.Status != 200 || !r.Verdict.Shadow {
		t.Errorf("fail closed in shadow mode: %d %+v", r.Response.Status, r.Verdict)
	}

	got := gather(t, reg)
	for name, want := range map[string]float64{"vigil_store_fallback_decisions_total": 1, "vigil_active_profiles": 3,
		"vigil_profile_evictions_total": 4, "vigil_profile_admissions_refused_total": 5, "vigil_store_fallbacks_total": 6,
		"vigil_store_errors_total": 7, "vigil_store_conflicts_total": 8} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (exported: %v), want %v", name, v, ok, want)
		}
	}
	if v, ok := got["vigil_store_available"]; !ok || v != 0 {
		t.Errorf("vigil_store_available = %v (exported: %v), want 0", v, ok)
	}
	fake.stats.Available = true
	if v := gather(t, reg)["vigil_store_available"]; v != 1 {
		t.Errorf("vigil_store_available = %v, want 1", v)
	}
}

// TestStoreError: a store that gives no verdict makes Check fail; the
// adapters answer 503 or let the request through (serve.fail_open).
func TestStoreError(t *testing.T) {
	boom := errors.New("boom")
	c := newChecker(t, testOpts{store: func(eng *engine.Engine) store.Store {
		return newFake(t, eng, func(store.Store, []event.Event, []store.Verdict) error { return boom })
	}})
	err := c.Check(context.Background(), request(0, "tok-err-1", "198.51.100.7", "x", "/"), new(gate.Result))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "state store") {
		t.Errorf("Check: %v", err)
	}
}

// TestThrottleFollowsVerdict: a throttled credential's limit is its own
// typical rate as the store reported it with the verdict.
func TestThrottleFollowsVerdict(t *testing.T) {
	var typical float64
	var buckets uint32
	c := newChecker(t, testOpts{store: func(eng *engine.Engine) store.Store {
		return newFake(t, eng, func(_ store.Store, evs []event.Event, vs []store.Verdict) error {
			for i := range evs {
				vs[i] = store.Verdict{TypicalRequests: typical, Buckets: buckets}
				vs[i].Level, vs[i].Now, vs[i].Risk = policy.Throttle, evs[i].Time, 2.5
			}
			return nil
		})
	}})
	for i, tc := range []struct {
		typical float64
		buckets uint32
		burst   int
	}{
		{30, 10, 5}, // 30 a minute: 5 in ten seconds
		{30, 2, 1},  // no baseline yet: the default, 6 a minute
		{0.5, 10, 1},
	} {
		typical, buckets = tc.typical, tc.buckets
		r := check(t, c, request(time.Duration(i)*time.Hour, fmt.Sprintf("tok-throttle-%d", i), "198.51.100.7", "x", "/"))
		if r.Verdict.Decided != policy.Throttle || r.Verdict.RateLimit.Limit != tc.burst {
			t.Errorf("%+v: %+v", tc, r.Verdict)
		}
	}
}

// TestCheckAllocations: judging through the store adds no allocation to
// Check's; what remains is the decision record kept for the read API and
// the reasons' strings.
func TestCheckAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops sync.Pool items")
	}
	c := newChecker(t, testOpts{})
	warm(t, c, "tok-alloc-0123")
	var res gate.Result
	r := request(31*time.Minute, "tok-alloc-0123", "198.51.100.7", "okhttp/4.12.0", "/v1/orders")
	n := testing.AllocsPerRun(200, func() {
		r.Time = r.Time.Add(time.Second)
		if err := c.Check(context.Background(), r, &res); err != nil {
			t.Fatal(err)
		}
	})
	if res.Verdict.Level != policy.Allow || n > 7 {
		t.Errorf("%v allocations per allowed Check, want at most 7 (%+v)", n, res.Verdict)
	}
}
