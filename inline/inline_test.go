package inline

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-sec/vigil/credential"
	"github.com/vigil-sec/vigil/decision"
	"github.com/vigil-sec/vigil/enforce"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/policy"
	"github.com/vigil-sec/vigil/profile"
	"github.com/vigil-sec/vigil/ratelimit"
	"github.com/vigil-sec/vigil/score"
	"github.com/vigil-sec/vigil/store"
)

type testOpts struct {
	shadow       bool
	shadowRoutes []string
	ladder       policy.Ladder
	// store, when set, replaces the in-memory store over the engine.
	store     func(eng *engine.Engine) store.Store
	metrics   *Metrics
	lifecycle Lifecycle
}

func newChecker(t testing.TB, o testOpts) *Checker {
	t.Helper()
	tr, err := profile.NewTracker(profile.Params{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := score.Vigil(score.VigilOptions{WarmupEvents: 10, WarmupAge: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if o.ladder.Throttle == 0 {
		o.ladder = policy.Ladder{Throttle: 2, StepUp: 3.5, Block: 4.5, Margin: 0.5}
	}
	eng, err := engine.New(engine.Options{Tracker: tr, Model: m, Ladder: o.ladder})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := event.NewFingerprinter([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := credential.New(context.Background(), credential.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(ratelimit.Options{MaxKeys: 1024})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := enforce.NewResponder(enforce.Options{UpstreamHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	if o.store != nil {
		st = o.store(eng)
	} else if st, err = store.NewLocal(eng, store.LocalOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Store: st, Model: m, Fingerprinter: fp, Extractor: x, Limiter: lim, Responder: resp,
		Shadow: o.shadow, ShadowRoutes: o.shadowRoutes, Throttle: Throttle{DefaultPerMinute: 6}, Metrics: o.metrics, Lifecycle: o.lifecycle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		x.Close()
	})
	return c
}

func request(at time.Duration, token, ip, ua, uri string) *gate.Request {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	h.Set("User-Agent", ua)
	return &gate.Request{Time: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(at), Method: "GET",
		URI: uri, ClientIP: netip.MustParseAddr(ip), Header: h}
}

func check(t *testing.T, c *Checker, r *gate.Request) *gate.Result {
	t.Helper()
	var res gate.Result
	if err := c.Check(context.Background(), r, &res); err != nil {
		t.Fatal(err)
	}
	return &res
}

// warm teaches the checker a credential's owner: 30 requests from home.
func warm(t *testing.T, c *Checker, token string) {
	for i := range 30 {
		if res := check(t, c, request(time.Duration(i)*time.Minute, token, "198.51.100.7", "okhttp/4.12.0", "/v1/orders")); res.Response.Status != 200 {
			t.Fatalf("owner request %d: %d", i, res.Response.Status)
		}
	}
}

func TestCheckLevels(t *testing.T) {
	c := newChecker(t, testOpts{})
	warm(t, c, "tok-owner-1")
	at := 31 * time.Minute
	thief := func(uri string) *gate.Result {
		at += time.Second
		return check(t, c, request(at, "tok-owner-1", "203.0.113.66", "curl/8.5.0", uri))
	}
	// New network and client: 2.25, throttle; the limiter lets one through
	// (6 a minute, burst 1), then 429s.
	r := thief("/v1/orders")
	if r.Verdict.Decided != policy.Throttle || r.Response.Status != 200 || r.Verdict.RateLimit.Limit != 1 {
		t.Fatalf("first thief request: %+v", r.Verdict)
	}
	r = thief("/v1/orders")
	if r.Response.Status != 429 || r.Response.Header.Get("Retry-After") == "" || !r.Verdict.Limited {
		t.Fatalf("second thief request: %d %+v", r.Response.Status, r.Verdict)
	}
	// Refusals reported back make the next unfamiliar endpoints a probe.
	c.Report(r.Ticket, gate.Outcome{Status: 403, ResponseBytes: 20})
	r = thief("/v1/admin/users")
	if r.Verdict.Decided < policy.StepUp || !hasReason(r, "scope_probe") {
		t.Fatalf("probe after a refusal: %+v", r.Verdict)
	}
	// The owner, at home, is not affected.
	if o := check(t, c, request(at+time.Second, "tok-owner-1", "198.51.100.7", "okhttp/4.12.0", "/v1/orders")); o.Response.Status != 200 || o.Verdict.Decided != policy.Allow {
		t.Fatalf("owner during the attack: %d %+v", o.Response.Status, o.Verdict)
	}
	snap, recent, ok, err := c.Inspect(context.Background(), r.Verdict.TokenID, 3)
	if err != nil || !ok || snap.Events != 34 || len(recent) != 3 || recent[0].Decided != policy.Allow || recent[1].Route != "/v1/admin/users" {
		t.Fatalf("inspect: %v %+v %+v", ok, snap, recent)
	}
}

func hasReason(r *gate.Result, signal string) bool {
	for _, x := range r.Verdict.Reasons {
		if x.Signal == signal {
			return true
		}
	}
	return false
}

func TestShadow(t *testing.T) {
	for _, o := range []testOpts{{shadow: true}, {shadowRoutes: []string{"/v1/"}}} {
		c := newChecker(t, o)
		warm(t, c, "tok-shadow")
		r := check(t, c, request(40*time.Minute, "tok-shadow", "203.0.113.66", "curl/8.5.0", "/v1/orders"))
		if r.Verdict.Decided == policy.Allow || r.Verdict.Level != policy.Allow || !r.Verdict.Shadow || r.Response.Status != 200 ||
			r.Response.Upstream.Get("X-Vigil-Shadow") != "1" {
			t.Errorf("%+v: %+v %d", o, r.Verdict, r.Response.Status)
		}
	}
}

func TestMalformedAndAnonymous(t *testing.T) {
	c := newChecker(t, testOpts{})
	r := check(t, c, request(0, "", "2001:db8::1", "curl/8", "/v1/orders"))
	if r.Verdict.Kind != gate.Anonymous || r.Verdict.TokenID != "ip:2001:db8::/64" || r.Response.Status != 200 {
		t.Errorf("anonymous: %+v", r.Verdict)
	}
	req := request(time.Second, "", "198.51.100.9", "curl/8", "/v1/orders")
	req.Header.(http.Header).Set("Authorization", "Bearer a b c")
	r = check(t, c, req)
	if r.Verdict.Problem == "" || r.Response.Allowed() || !strings.HasPrefix(r.Verdict.TokenID, "ip:") {
		t.Errorf("malformed: %d %+v", r.Response.Status, r.Verdict)
	}
}

func TestClosed(t *testing.T) {
	c := newChecker(t, testOpts{})
	c.Close()
	if err := c.Check(context.Background(), request(0, "t", "198.51.100.7", "x", "/"), new(gate.Result)); err != ErrClosed {
		t.Errorf("after Close: %v", err)
	}
	c.Report(gate.Ticket{TokenID: "tk_x"}, gate.Outcome{Status: 200})
}

func TestNewValidates(t *testing.T) {
	_, err := New(Options{ShadowRoutes: []string{"v1"}})
	for _, want := range []string{"no state store", "no scoring model", "no fingerprinter", "no credential extractor", "no rate limiter", "no responder", `shadow route 0 ("v1")`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// TestStepUpWithoutOAuth: an API key cannot answer an RFC 9470 challenge;
// its step-up is enforced as a refusal.
func TestStepUpWithoutOAuth(t *testing.T) {
	c := newChecker(t, testOpts{})
	key := func(at time.Duration, ip, ua, uri string) *gate.Request {
		r := request(at, "", ip, ua, uri)
		r.Header.(http.Header).Set("X-API-Key", "key-0123456789abcdef")
		return r
	}
	for i := range 30 {
		check(t, c, key(time.Duration(i)*time.Minute, "198.51.100.7", "okhttp/4.12.0", "/v1/orders"))
	}
	var last *gate.Result
	for i := range 6 {
		last = check(t, c, key(31*time.Minute+time.Duration(i)*time.Second, "203.0.113.66", "curl/8.5.0", fmt.Sprintf("/v1/admin/area-%d", i)))
		if last.Verdict.Decided == policy.StepUp {
			break
		}
	}
	if last.Verdict.Decided != policy.StepUp || last.Verdict.Level != policy.Block || last.Response.Status != 403 || last.Verdict.Kind != gate.APIKey {
		t.Fatalf("API key at step-up: decided %v, enforced %v, %d", last.Verdict.Decided, last.Verdict.Level, last.Response.Status)
	}
}

func TestRouteHasPrefix(t *testing.T) {
	for _, c := range []struct {
		uri, p string
		want   bool
	}{
		{"/beta", "/beta", true}, {"/beta/x", "/beta", true}, {"/beta?q=1", "/beta", true},
		{"/beta-admin", "/beta", false}, {"/bet", "/beta", false}, {"/v1/x", "/v1/", true},
	} {
		if got := routeHasPrefix(c.uri, c.p); got != c.want {
			t.Errorf("routeHasPrefix(%q, %q) = %v", c.uri, c.p, got)
		}
	}
}

func TestRecentKeepsBoundedStrings(t *testing.T) {
	r := newRecent(4)
	huge := strings.Repeat("é", 100_000)
	r.add(Record{TokenID: "tk_a", Method: huge, RequestID: huge, Route: huge,
		Reasons: []decision.Reason{{Signal: "x", Detail: huge}}})
	got := r.find("tk_a", 1)[0]
	if len(got.Method) > maxKeptMethod || len(got.RequestID) > maxKeptRequestID || len(got.Route) > maxKeptRoute ||
		len(got.Reasons[0].Detail) > maxKeptDetail || !utf8.ValidString(got.Route) {
		t.Errorf("kept %d/%d/%d/%d bytes", len(got.Method), len(got.RequestID), len(got.Route), len(got.Reasons[0].Detail))
	}
}
