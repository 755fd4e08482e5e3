package middleware_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/credential"
	"github.com/vigil-sec/vigil/enforce"
	"github.com/vigil-sec/vigil/engine"
	"github.com/vigil-sec/vigil/event"
	"github.com/vigil-sec/vigil/gate"
	"github.com/vigil-sec/vigil/inline"
	"github.com/vigil-sec/vigil/middleware"
	"github.com/vigil-sec/vigil/ratelimit"
	"github.com/vigil-sec/vigil/store"
	"github.com/vigil-sec/vigil/store/storetest"
)

// newChecker is vigil's real inline Checker with the default model.
func newChecker(tb testing.TB) *inline.Checker {
	tb.Helper()
	o := storetest.EngineOptions(tb)
	eng, err := engine.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	fp, _ := event.NewFingerprinter([]byte("0123456789abcdef0123456789abcdef"))
	x, err := credential.New(context.Background(), credential.Options{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	lim, _ := ratelimit.New(ratelimit.Options{})
	resp, _ := enforce.NewResponder(enforce.Options{UpstreamHeaders: true})
	st, err := store.NewLocal(eng, store.LocalOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := inline.New(inline.Options{Store: st, Model: o.Model, Fingerprinter: fp, Extractor: x, Limiter: lim, Responder: resp})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(); x.Close() })
	return c
}

// fixed is a Checker that always answers res, to test the middleware's own
// handling of each answer.
type fixed struct {
	res      gate.Result
	err      error
	reported []gate.Outcome
}

func (f *fixed) Check(_ context.Context, _ *gate.Request, res *gate.Result) error {
	if f.err != nil {
		return f.err
	}
	*res = f.res
	return nil
}
func (f *fixed) Report(_ gate.Ticket, o gate.Outcome) { f.reported = append(f.reported, o) }

func TestMiddleware(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Values("X-Vigil-Decision"); len(v) != 1 || v[0] != "allow" {
			t.Errorf("handler saw X-Vigil-Decision %q", v)
		}
		w.WriteHeader(201)
		io.WriteString(w, "hello")
	})
	allow := &fixed{res: gate.Result{Response: gate.Response{Status: 200, Upstream: http.Header{"X-Vigil-Decision": {"allow"}}, Header: http.Header{"Ratelimit": {`"vigil";r=1;t=5`}}}}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/x", nil)
	req.Header.Set("X-Vigil-Decision", "forged")
	req.Header.Set("x-vigil-risk", "0")
	middleware.New(allow, middleware.Options{})(handler).ServeHTTP(rec, req)
	if rec.Code != 201 || rec.Body.String() != "hello" || rec.Header().Get("RateLimit") == "" {
		t.Errorf("allow: %d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if len(allow.reported) != 1 || allow.reported[0] != (gate.Outcome{Status: 201, ResponseBytes: 5}) {
		t.Errorf("reported %+v", allow.reported)
	}

	deny := &fixed{res: gate.Result{Response: gate.Response{Status: 429, Header: http.Header{"Retry-After": {"3"}}, Body: []byte(`{"status":429}`)}}}
	rec = httptest.NewRecorder()
	middleware.New(deny, middleware.Options{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("handler called for a denial")
	})).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "3" || rec.Body.String() != `{"status":429}` || len(deny.reported) != 0 {
		t.Errorf("deny: %d %v %q %v", rec.Code, rec.Header(), rec.Body, deny.reported)
	}

	broken := &fixed{err: fmt.Errorf("engine closed")}
	for _, open := range []bool{false, true} {
		rec = httptest.NewRecorder()
		called := false
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Vigil-Decision", "allow")
		middleware.New(broken, middleware.Options{FailOpen: open})(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			called = true
			if r.Header.Get("X-Vigil-Decision") != "" {
				t.Error("a forged X-Vigil-Decision reached the handler on fail-open")
			}
		})).ServeHTTP(rec, req)
		if called != open || (!open && rec.Code != 503) {
			t.Errorf("fail open %v: called %v, %d", open, called, rec.Code)
		}
	}
}

// TestMiddlewareClientAddress: X-Forwarded-For is believed only from a
// trusted proxy.
func TestMiddlewareClientAddress(t *testing.T) {
	var got []netip.Addr
	rec := &recorder{fixed: fixed{res: gate.Result{Response: gate.Response{Status: 200}}}, seen: &got}
	h := middleware.New(rec, middleware.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})(http.NotFoundHandler())
	for _, peer := range []string{"10.1.2.3:4000", "203.0.113.9:4000"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", "198.51.100.7")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	want := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")}
	if !slices.Equal(got, want) {
		t.Errorf("client addresses %v, want %v", got, want)
	}
}

type recorder struct {
	fixed
	seen *[]netip.Addr
}

func (r *recorder) Check(ctx context.Context, req *gate.Request, res *gate.Result) error {
	*r.seen = append(*r.seen, req.ClientIP)
	return r.fixed.Check(ctx, req, res)
}

// TestMiddlewareWithVigil: the real Checker behind the middleware; the
// handler's answer feeds the credential's profile.
func TestMiddlewareWithVigil(t *testing.T) {
	c := newChecker(t)
	h := middleware.New(c, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 2048))
	}))
	var id string
	for range 3 {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/v1/orders/17", nil)
		r.Header.Set("Authorization", "Bearer mw-test-token")
		h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			t.Fatalf("%d", rec.Code)
		}
		id = r.Header.Get("X-Vigil-Token-Id")
	}
	snap, recent, ok, err := c.Inspect(context.Background(), id, 5)
	if err != nil || !ok || snap.Events != 3 || len(recent) != 3 || recent[0].Route != "/v1/orders/{id}" {
		t.Errorf("%v %+v %+v", ok, snap, recent)
	}
}

// BenchmarkMiddleware measures what the middleware adds to a request: the
// same handler with and without it, over 1,000 credentials, with vigil's
// real Checker. It reports the median and 99th percentile of the added
// time per request (added-p50-ns, added-p99-ns): the bare handler's
// percentile is subtracted from the wrapped one's.
func BenchmarkMiddleware(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) })
	reqs := make([]*http.Request, 1000)
	for i := range reqs {
		r := httptest.NewRequest("GET", fmt.Sprintf("/v1/accounts/%d", i*7), nil)
		r.Header.Set("Authorization", fmt.Sprintf("Bearer bench-token-%04d-aaaaaaaaaaaaaaaa", i))
		r.Header.Set("User-Agent", "bench-client/1.0")
		r.RemoteAddr = fmt.Sprintf("198.51.100.%d:5000", i%250+1)
		reqs[i] = r
	}
	w := &nopWriter{h: http.Header{}}
	measure := func(b *testing.B, h http.Handler) []time.Duration {
		lat := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			r := reqs[i%len(reqs)]
			clear(w.h)
			t0 := time.Now()
			h.ServeHTTP(w, r)
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		return lat
	}
	pct := func(l []time.Duration, p float64) float64 { return float64(l[int(float64(len(l)-1)*p)]) }
	var bare []time.Duration
	b.Run("bare", func(b *testing.B) { bare = measure(b, handler) })
	b.Run("vigil", func(b *testing.B) {
		c := newChecker(b)
		wrapped := middleware.New(c, middleware.Options{})(handler)
		for _, r := range reqs { // every credential seen once
			wrapped.ServeHTTP(w, r)
		}
		l := measure(b, wrapped)
		if bare != nil {
			b.ReportMetric(pct(l, 0.5)-pct(bare, 0.5), "added-p50-ns")
			b.ReportMetric(pct(l, 0.99)-pct(bare, 0.99), "added-p99-ns")
		}
	})
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}
